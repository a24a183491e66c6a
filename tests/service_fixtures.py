"""Fixtures of the service tests, loaded with ``pytest_plugins = ["tests.service_fixtures"]`` so that each
is built once per session however many test modules use it.

- ``database_url``: parametrized over a SQLite file and a fresh PostgreSQL database
  (``CREATE DATABASE nas_test_<random>``, dropped at the end), so the shared ``test`` database of the
  other test files is never touched. PostgreSQL tests skip only if the server is unreachable.
- ``redis_client``: Redis DB 14 (``NAS_TEST_REDIS_URL``), so queue checks do not disturb anyone's
  DB 0; only the messages these tests queued are removed afterwards.
- ``service``: ``uvicorn api.main:app`` in a subprocess on a free port of 127.0.0.1.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.api_support import (
    REDIS_URL,
    Service,
    fresh_pg_database,
    remove_messages,
    server_env,
    start_server,
    stop_server,
)


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('service-db') / 'nas.db'}"
        return
    with fresh_pg_database("nas_test") as url:
        yield url


@pytest.fixture(scope="session")
def redis_client() -> Any:
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3)
    try:
        client.ping()
    except Exception as exc:
        pytest.skip(f"Redis not reachable at {REDIS_URL}: {exc}")
    return client


@pytest.fixture(scope="session")
def service(database_url: str, redis_client: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    home = tmp_path_factory.mktemp("service-home")
    proc, base = start_server(server_env(database_url, home), home / "server.log")
    svc = Service(base, database_url, home)
    try:
        yield svc
    finally:
        stop_server(proc)
        remove_messages(redis_client, svc.submitted, frozenset(svc.supernets))
