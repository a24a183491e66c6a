"""docker-compose.yml validates with Debian's docker-compose, and every long-running service has a health
check and the role the README describes. ``config`` needs no Docker daemon."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
COMPOSE = shutil.which("docker-compose")
pytestmark = pytest.mark.skipif(COMPOSE is None, reason="docker-compose binary not installed "
                                "(apt-get install docker-compose)")


def _config(*args: str) -> subprocess.CompletedProcess[str]:
    assert COMPOSE is not None
    return subprocess.run([COMPOSE, "-f", "docker-compose.yml", "config", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=120)


def test_compose_config_validates() -> None:
    result = _config("-q")
    assert result.returncode == 0, result.stderr


def test_every_service_has_a_health_check_and_its_role() -> None:
    result = _config()
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    assert set(services) == {"redis", "postgres", "api", "search-worker", "train-worker", "latency-cpu-ort-1t",
                             "dashboard"}
    assert all("healthcheck" in s for s in services.values())
    commands = {name: " ".join(s.get("command", [])) for name, s in services.items()}
    assert commands["api"].startswith("nas serve")
    assert commands["search-worker"].startswith("nas worker --queues search")
    assert commands["latency-cpu-ort-1t"].startswith("nas worker --device cpu-ort-1t --queues latency.cpu-ort-1t")
    assert commands["dashboard"].startswith("nas dashboard")
    for name in ("api", "search-worker", "train-worker", "latency-cpu-ort-1t", "dashboard"):
        env = services[name]["environment"]
        assert env["NAS_DATABASE_URL"].startswith("postgresql+psycopg://") and env["NAS_REDIS_URL"].startswith(
            "redis://redis:")
    assert services["search-worker"]["depends_on"]["api"]["condition"] == "service_healthy"


def test_dockerfile_installs_cpu_torch_before_the_project() -> None:
    text = (REPO / "Dockerfile").read_text()
    assert text.startswith("#") and "FROM python:3.11-slim" in text
    assert text.index("RUN pip install torch==2.13.0") < text.index("RUN pip install .")
    assert "download.pytorch.org/whl/cpu" in text
