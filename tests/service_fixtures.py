"""Fixtures of the service tests, loaded with ``pytest_plugins = ["tests.service_fixtures"]`` so that each
is built once per session however many test modules use it.

- ``database_url``: parametrized over a SQLite file and a fresh PostgreSQL database
  (``CREATE DATABASE nas_test_<random>``, dropped at the end), so the shared ``test`` database of the
  other test files is never touched. PostgreSQL tests skip only if the server is unreachable.
- ``redis_client``: Redis DB 14 (``NAS_TEST_REDIS_URL``), so queue checks do not disturb anyone's
  DB 0; only the messages these tests queued are removed afterwards.
- ``service``: ``uvicorn api.main:app`` in a subprocess on a free port of 127.0.0.1.

Both backends' databases and servers are made once per session and kept (``_backends``) until it ends.
pytest tears a session fixture down whenever its parameter changes, and with ``--dist loadfile`` it
changed at nearly every file of a worker: a server start and a database made and dropped each time.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
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


class _Backends:
    """The session's database per backend and the server on each, made on first use."""

    def __init__(self, stack: ExitStack, tmp_path_factory: pytest.TempPathFactory) -> None:
        self.stack, self.tmp = stack, tmp_path_factory
        self.urls: dict[str, str] = {}
        self.services: dict[str, Service] = {}

    def database_url(self, backend: str) -> str:
        if backend not in self.urls:
            if backend == "sqlite":
                self.urls[backend] = f"sqlite:///{self.tmp.mktemp('service-db') / 'nas.db'}"
            else:
                self.urls[backend] = self.stack.enter_context(fresh_pg_database("nas_test"))
        return self.urls[backend]

    def service(self, database_url: str) -> Service:
        if database_url not in self.services:
            home = self.tmp.mktemp("service-home")
            proc, base = start_server(server_env(database_url, home), home / "server.log")
            self.stack.callback(stop_server, proc)  # stopped before its database is dropped (LIFO)
            self.services[database_url] = Service(base, database_url, home)
        return self.services[database_url]


@pytest.fixture(scope="session")
def _backends(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Backends]:
    with ExitStack() as stack:
        yield _Backends(stack, tmp_path_factory)


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, _backends: _Backends) -> str:
    return _backends.database_url(request.param)


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
def service(database_url: str, redis_client: Any, _backends: _Backends) -> Iterator[Service]:
    svc = _backends.service(database_url)
    yield svc
    remove_messages(redis_client, svc.submitted, frozenset(svc.train_tasks))  # what these tests queued
    svc.submitted.clear()
    svc.train_tasks.clear()
