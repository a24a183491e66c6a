"""Spaces, devices, health and the OpenAPI document on a live server; the API process stays torch-free
and reports a dead broker instead of hanging or losing a submitted search."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from nas.service import register_device
from nas.service._models import DeviceRow, utcnow
from nas.storage import session_scope

from .api_support import REPO, SPEC, Service, server_env

pytest_plugins = ["tests.service_fixtures"]  # database_url, redis_client, service


def test_spaces(service: Service) -> None:
    with service.client(service.token()) as c:
        body = c.get("/spaces").json()
    names = [s["name"] for s in body["data"]]
    assert body["count"] == len(names) and "mobilenetv3-small" in names and "shufflenet" in names
    small = body["data"][names.index("mobilenetv3-small")]
    assert small["stages"] >= 1 and small["dimensions"] > 10 and 224 in small["resolution"]


def test_devices_lists_only_live_workers(service: Service) -> None:
    url = service.database_url
    register_device(url, "cpu-ort-1t", "fp-live", "live-host", {"cpu": "test"})
    register_device(url, "cpu-torch-1t", "fp-stale", "stale-host", {})
    with session_scope(url) as s:
        s.execute(update(DeviceRow).where(DeviceRow.hostname == "stale-host")
                  .values(last_seen=utcnow() - timedelta(seconds=120)))  # the server's NAS_DEVICE_TTL is 60
    with service.client(service.token()) as c:
        body = c.get("/devices").json()
    hosts = {d["hostname"]: d for d in body["data"]}
    assert "live-host" in hosts and "stale-host" not in hosts and body["count"] == len(body["data"])
    assert hosts["live-host"]["profile"] == "cpu-ort-1t" and hosts["live-host"]["info"] == {"cpu": "test"}


def test_health(service: Service) -> None:
    with service.client() as c:
        body = c.get("/health").json()
    assert body["status"] == "ok" and body["database"] == "ok" and body["redis"] == "ok"
    assert body["schema_revision"] == "nas0004"


def test_openapi_documents_every_endpoint_and_the_spec(service: Service) -> None:
    with service.client() as c:
        doc = c.get("/openapi.json").json()
        assert "swagger-ui" in c.get("/docs").text
    paths = {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops}
    assert {("POST", "/searches"), ("GET", "/searches"), ("GET", "/searches/{search_id}"),
            ("GET", "/searches/{search_id}/trials"), ("GET", "/searches/{search_id}/best"),
            ("GET", "/searches/{search_id}/pareto"), ("POST", "/searches/{search_id}/cancel"),
            ("GET", "/spaces"), ("GET", "/devices"), ("GET", "/health")} <= paths
    body = doc["paths"]["/searches"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body["$ref"] == "#/components/schemas/SearchSpec"
    schemas = doc["components"]["schemas"]
    assert "latency" in schemas["SearchSpec"]["properties"] and "LatencySpec" in schemas
    assert "HTTPBearer" in doc["components"]["securitySchemes"]


PROBE = """
import json, sys
from fastapi.testclient import TestClient
from api.main import app
from nas.service import create_token
from nas.settings import get_settings

url = get_settings().resolved_database_url()
spec = json.loads(sys.argv[1])
with TestClient(app) as client:
    token = create_token(url, "probe")[1]
    headers = {"Authorization": f"Bearer {token}"}
    health = client.get("/health")
    submitted = client.post("/searches", json=spec, headers=headers)
    listed = client.get("/searches", headers=headers).json()
    client.get("/spaces", headers=headers)
    client.get("/searches/0123456789abcdef0123456789abcdef/trials", headers=headers)
print(json.dumps({"torch": "torch" in sys.modules, "health": [health.status_code, health.json()],
                  "submit": [submitted.status_code, submitted.json()], "stored": listed["count"]}))
"""


def test_api_is_torch_free_and_survives_a_dead_broker(tmp_path: Path) -> None:
    """In a fresh interpreter (the test process has torch loaded): start the app, exercise it, and check
    torch never got imported. Redis points at a closed port, so /health is 503 and a submission is
    answered 503 at once, storing nothing (rather than a queued search nobody will run)."""
    env = server_env(f"sqlite:///{tmp_path / 'nas.db'}", tmp_path, NAS_REDIS_URL="redis://127.0.0.1:1/0")
    out = subprocess.run([sys.executable, "-c", PROBE, json.dumps(SPEC)], cwd=REPO, env=env, capture_output=True,
                         text=True, timeout=240)
    assert out.returncode == 0, out.stderr[-3000:]
    report: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["torch"] is False
    status, health = report["health"]
    assert status == 503 and health["database"] == "ok" and health["redis"].startswith("error")
    status, body = report["submit"]
    assert status == 503 and "queue is unreachable" in body["detail"]
    assert report["stored"] == 0


@pytest.mark.filterwarnings("ignore:Using .httpx.")
def test_a_publish_failure_marks_the_search_failed(tmp_path: Path, monkeypatch: Any) -> None:
    """The broker answered the ping but the publish failed: the stored search must not stay queued."""
    from fastapi.testclient import TestClient

    import api.routes.searches as routes
    from api.deps import database_url as database_url_dep
    from api.main import app
    from nas.service import create_token, get_search, upgrade

    url = f"sqlite:///{tmp_path / 'nas.db'}"
    upgrade(url)

    async def broken(search_id: str, broker: Any) -> None:
        raise ConnectionError("broker went away")

    monkeypatch.setattr(routes, "submit_search_async", broken)
    async def reachable(_url: str) -> str:
        return "ok"

    monkeypatch.setattr(routes, "check_redis_async", reachable)
    monkeypatch.setitem(app.dependency_overrides, database_url_dep, lambda: url)
    headers = {"Authorization": f"Bearer {create_token(url, 'p')[1]}"}
    client = TestClient(app)  # no lifespan: it would migrate the default database, not ours
    response = client.post("/searches", json=SPEC, headers=headers)
    assert response.status_code == 503 and "marked failed" in response.json()["detail"]
    listed = client.get("/searches", headers=headers).json()
    stored = get_search(url, listed["data"][0]["id"])
    assert stored.status == "failed" and "broker went away" in (stored.error or "")
