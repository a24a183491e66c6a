"""Helpers for the service tests: a valid spec, the API server subprocess, Optuna studies shaped like the
driver's, the Redis ``search`` queue. The fixtures using them are in ``service_fixtures.py``."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
PG_SERVER = os.environ.get("NAS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
# DB 14; the second worker of `pytest -n 2` uses DB 15, so that neither sees the other's queued messages.
REDIS_URL = os.environ.get("NAS_TEST_REDIS_URL", "redis://127.0.0.1:6379/{}".format(
    {"gw1": 15}.get(os.environ.get("PYTEST_XDIST_WORKER", ""), 14)))
SPEC: dict[str, Any] = {"name": "api-test", "space": "mobilenetv3-small", "device": "cpu-ort-1t",
                        "latency": {"target_ms": 10.0}, "budget": {"trials": 4}}

def pg_unreachable() -> str | None:
    import psycopg

    try:
        with psycopg.connect(PG_SERVER, connect_timeout=3):
            return None
    except Exception as exc:
        return f"PostgreSQL not reachable at {PG_SERVER}: {str(exc).strip().splitlines()[0]}"


@contextmanager
def fresh_pg_database(prefix: str) -> Iterator[str]:
    """A new, empty PostgreSQL database for the caller's tests (``prefix_<random>``), dropped afterwards;
    skips the test when the server is unreachable (a failure in CI: ``tests/skips.py``)."""
    import pytest

    reason = pg_unreachable()
    if reason:
        pytest.skip(reason)
    import psycopg
    from sqlalchemy.engine import make_url

    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_SERVER, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_url(PG_SERVER).set(drivername="postgresql+psycopg", database=name).render_as_string(False)
    try:
        yield url
    finally:
        from nas.storage import engine_for

        engine_for(url).dispose()
        with psycopg.connect(PG_SERVER, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def queued_messages(redis_client: Any) -> list[dict[str, Any]]:
    """The Celery messages waiting on the ``search`` queue (kombu keeps a queue as a Redis list)."""
    return [json.loads(raw) for raw in redis_client.lrange("search", 0, -1)]


def remove_messages(redis_client: Any, search_ids: set[str], train_tasks: frozenset[str] = frozenset()) -> None:
    """Only the messages of these searches (``search`` queue) and train-queue tasks (``supernet-<id>``,
    ``training-<id>``)."""
    for queue, ids in (("search", {f"search-{i}" for i in search_ids}), ("train", set(train_tasks))):
        for raw in redis_client.lrange(queue, 0, -1):
            if json.loads(raw)["headers"].get("id") in ids:
                redis_client.lrem(queue, 1, raw)


@dataclass
class Service:
    base_url: str
    database_url: str
    home: Path
    submitted: set[str] = field(default_factory=set)
    train_tasks: set[str] = field(default_factory=set)  # supernet-<id>, training-<id>: queued by a test

    def token(self, name: str | None = None) -> str:
        from nas.service import create_token

        return create_token(self.database_url, name or f"user-{uuid.uuid4().hex[:10]}")[1]

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=30)

    def submit(self, client: httpx.Client, **changes: Any) -> dict[str, Any]:
        """POST a valid spec (with ``changes``); remembers the id so its queue message is cleaned up."""
        response = client.post("/searches", json={**SPEC, **changes})
        assert response.status_code == 202, response.text
        self.submitted.add(response.json()["id"])
        return dict(response.json())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(env: dict[str, str], log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "api.main:app", "--host", "127.0.0.1",
                                 "--port", str(port), "--log-level", "warning"],
                                cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"API server exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{base}/health", timeout=2).status_code in (200, 503):
                return proc, base
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    proc.kill()
    raise RuntimeError(f"API server did not answer within 90 s:\n{log.read_text()[-3000:]}")


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def server_env(database_url: str, home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NAS_")}
    env.update({"NAS_DATABASE_URL": database_url, "NAS_REDIS_URL": REDIS_URL, "NAS_HOME": str(home),
                "NAS_DEVICE_TTL": "60", "NAS_LOG_LEVEL": "WARNING", "PYTHONPATH": str(REPO), **extra})
    return env


def architecture(i: int) -> dict[str, Any]:
    """A stand-in architecture document: the API returns what the trial stored, it does not rebuild it."""
    return {"schema_version": 1, "name": f"candidate-{i}", "resolution": 224, "stages": [[{"kernel": 3 + 2 * (i % 3)}]]}


def seed_study(database_url: str, study_name: str, points: list[tuple[float, float]], *, pareto: bool = False,
               target_ms: float = 10.0, failed: int = 0) -> None:
    """An Optuna study shaped like the driver's: (accuracy, latency_ms) per completed trial, then failures."""
    import optuna
    from optuna.trial import TrialState, create_trial

    from nas.search._study import rdb_storage

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name=study_name, storage=rdb_storage(database_url),
                                directions=["maximize", "minimize"] if pareto else ["maximize"])
    study.set_user_attr("target_ms", target_ms)
    for i, (acc, lat) in enumerate(points):
        reward = acc * (lat / target_ms) ** -0.07
        attrs = {"architecture": architecture(i), "arch_hash": f"hash{i}", "arch_string": f"arch-{i}",
                 "accuracy": acc, "latency_ms": lat, "latency_source": "measured", "params": 1000 + i,
                 "macs": (i + 1) * 10**6, "strategy": "random", "epochs_run": 2}
        if not pareto:
            attrs["reward"] = reward
        study.add_trial(create_trial(values=[acc, lat] if pareto else [reward], user_attrs=attrs))
    for _ in range(failed):
        study.add_trial(create_trial(state=TrialState.FAIL, user_attrs={"error": "training diverged"}))
