"""docker-compose.yml validates with Debian's docker-compose, and every long-running service has a health
check and the role the README describes; docker-compose.offline.yml only swaps images and build arguments.
``config`` needs no Docker daemon. deploy/compose-test runs the deployment for real (in CI, after the suite)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
COMPOSE = shutil.which("docker-compose")
pytestmark = pytest.mark.skipif(COMPOSE is None, reason="docker-compose binary not installed "
                                "(apt-get install docker-compose)")


OFFLINE = ("-f", "docker-compose.yml", "-f", "docker-compose.offline.yml")
NAS_SERVICES = ("api", "search-worker", "train-worker", "latency-cpu-ort-1t", "dashboard")


def _config(*args: str, files: tuple[str, ...] = ("-f", "docker-compose.yml")) -> subprocess.CompletedProcess[str]:
    assert COMPOSE is not None
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NAS_", "POSTGRES_"))}
    return subprocess.run([COMPOSE, *files, "config", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=120, env=env)


def _services(files: tuple[str, ...] = ("-f", "docker-compose.yml")) -> dict[str, Any]:
    result = _config(files=files)
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)["services"]  # type: ignore[no-any-return]


def test_compose_config_validates() -> None:
    result = _config("-q")
    assert result.returncode == 0, result.stderr


def test_every_service_has_a_health_check_and_its_role() -> None:
    services = _services()
    assert set(services) == {"redis", "postgres", "api", "search-worker", "train-worker", "latency-cpu-ort-1t",
                             "dashboard"}
    assert all("healthcheck" in s for s in services.values())
    commands = {name: " ".join(s.get("command", [])) for name, s in services.items()}
    assert commands["api"].startswith("nas serve")
    assert commands["search-worker"].startswith("nas worker --queues search")
    assert commands["latency-cpu-ort-1t"].startswith("nas worker --device cpu-ort-1t --queues latency.cpu-ort-1t")
    assert commands["dashboard"].startswith("nas dashboard")
    for name in NAS_SERVICES:
        env = services[name]["environment"]
        assert env["NAS_DATABASE_URL"].startswith("postgresql+psycopg://") and env["NAS_REDIS_URL"].startswith(
            "redis://redis:")
    assert services["search-worker"]["depends_on"]["api"]["condition"] == "service_healthy"


def test_published_ports_are_on_loopback_unless_configured() -> None:
    ports = {name: s["ports"] for name, s in _services().items() if "ports" in s}
    assert ports == {"api": ["127.0.0.1:8000:8000/tcp"], "dashboard": ["127.0.0.1:8080:8080/tcp"]}
    env = {k: v for k, v in os.environ.items() if not k.startswith("NAS_")}
    env.update({"NAS_API_PORT": "18000", "NAS_DASHBOARD_PORT": "18080"})
    assert COMPOSE is not None
    result = subprocess.run([COMPOSE, "-f", "docker-compose.yml", "config"], cwd=REPO, capture_output=True, text=True,
                            timeout=120, env=env)
    services = yaml.safe_load(result.stdout)["services"]
    assert services["api"]["ports"] == ["127.0.0.1:18000:8000/tcp"]
    assert services["dashboard"]["ports"] == ["127.0.0.1:18080:8080/tcp"]


def test_the_offline_override_swaps_only_images_and_build_arguments() -> None:
    online, offline = _services(), _services(OFFLINE)
    assert offline["redis"]["image"] == "platform-nas-redis:bookworm"
    assert offline["postgres"]["image"] == "platform-nas-postgres:bookworm"
    assert offline["redis"]["build"]["context"] == str(REPO / "deploy" / "redis")
    assert "--protected-mode" in offline["redis"]["command"], "Debian's Redis refuses other containers without it"
    for name in NAS_SERVICES:
        assert offline[name]["build"]["args"] == {"BASE_IMAGE": "platform-nas-base:bookworm", "OFFLINE": "1"}
        assert offline[name]["image"] == online[name]["image"] == "platform-nas:latest"
        same = {k: v for k, v in offline[name].items() if k != "build"}
        assert same == {k: v for k, v in online[name].items() if k != "build"}
    for name in ("redis", "postgres"):
        assert offline[name]["healthcheck"] == online[name]["healthcheck"]
        assert offline[name]["volumes"] == online[name]["volumes"]


def test_dockerfile_installs_cpu_torch_before_the_project_online_and_offline() -> None:
    text = (REPO / "Dockerfile").read_text()
    assert text.startswith("#") and "ARG BASE_IMAGE=python:3.11-slim" in text
    build, final = text.split("\nFROM ${BASE_IMAGE} AS build\n")[1].split("\nFROM ${BASE_IMAGE}\n")
    offline_project = "pip install --no-index --find-links /wheelhouse ."
    assert build.index("torch==2.13.0") < build.index(offline_project)
    assert build.index("download.pytorch.org/whl/cpu") < build.index("pip install . ;")
    assert "pip install --no-index --find-links /wheelhouse torch==2.13.0" in build
    assert "wheelhouse" not in final and "COPY --from=build /opt/nas /opt/nas" in final
