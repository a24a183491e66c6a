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

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.api_support import (
    PG_SERVER,
    REDIS_URL,
    Service,
    pg_unreachable,
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
    reason = pg_unreachable()
    if reason:
        pytest.skip(reason)
    import psycopg
    from sqlalchemy.engine import make_url

    name = f"nas_test_{uuid.uuid4().hex[:12]}"
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
        remove_messages(redis_client, svc.submitted)
