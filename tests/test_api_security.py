"""Security properties of the running service:

- no secrets in logs: the API started the way it is deployed (``nas serve``), logging at DEBUG, on a
  PostgreSQL URL carrying a password, serves good and bad tokens, and neither the token nor the password
  appears anywhere in what it logged;
- tokens at rest: after that traffic no table of the database (the service's or Optuna's) holds a raw
  token, and tokens are compared in constant time;
- CORS is off by default (no ``Access-Control-Allow-Origin`` for any origin) and, when
  ``NAS_CORS_ORIGINS`` is set, allows exactly those origins;
- request size limits: ``NAS_MAX_BODY_BYTES`` is honoured, and an oversized body is refused before
  authentication (a client without a token cannot make the server buffer it).

The configured server queues on Redis DB 11 (private to this file) and uses a fresh PostgreSQL database.
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from .api_support import (
    PG_SERVER,
    REPO,
    SPEC,
    Service,
    free_port,
    pg_unreachable,
    remove_messages,
    server_env,
    stop_server,
)

pytest_plugins = ["tests.service_fixtures"]  # database_url, redis_client, service

REDIS_DB11 = "redis://127.0.0.1:6379/11"
ALLOWED_ORIGIN = "http://dashboard.example"
MAX_BODY = 4096


@dataclass
class Configured:
    """A ``nas serve`` process with a password in its database URL, DEBUG logging, CORS for one origin
    and a small body limit."""

    base_url: str
    database_url: str
    password: str
    log: Path
    token: str

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=30)


@pytest.fixture(scope="module")
def configured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Configured]:
    reason = pg_unreachable()
    if reason:
        pytest.skip(reason)
    import psycopg
    import redis
    from sqlalchemy.engine import make_url

    from nas.service import create_token

    name, password = f"nas_test_{uuid.uuid4().hex[:12]}", f"pw-{uuid.uuid4().hex}"
    with psycopg.connect(PG_SERVER, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = (make_url(PG_SERVER).set(drivername="postgresql+psycopg", database=name, password=password)
           .render_as_string(hide_password=False))
    home = tmp_path_factory.mktemp("secure-home")
    env = server_env(url, home, NAS_LOG_LEVEL="DEBUG", NAS_REDIS_URL=REDIS_DB11, NAS_CORS_ORIGINS=ALLOWED_ORIGIN,
                     NAS_MAX_BODY_BYTES=str(MAX_BODY))
    port, log = free_port(), home / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "nas", "serve", "--host", "127.0.0.1", "--port", str(port)],
                                cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    server = Configured(f"http://127.0.0.1:{port}", url, password, log, "")
    submitted: set[str] = set()
    try:
        _wait_until_up(server.base_url, proc, log)
        server.token = create_token(url, "security-test")[1]
        with server.client(server.token) as c:
            submitted.add(c.post("/searches", json=SPEC).json()["id"])  # traffic for the log and table checks
        yield server
    finally:
        stop_server(proc)
        remove_messages(redis.Redis.from_url(REDIS_DB11), submitted)
        from nas.storage import engine_for

        engine_for(url).dispose()
        with psycopg.connect(PG_SERVER, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _wait_until_up(base: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"nas serve exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{base}/health", timeout=2).status_code in (200, 503):
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"nas serve did not answer within 90 s:\n{log.read_text()[-3000:]}")


# -- secrets ---------------------------------------------------------------------------------------------
def test_neither_tokens_nor_the_database_password_are_logged(configured: Configured) -> None:
    wrong = "nas_" + uuid.uuid4().hex  # a mistyped token is as secret as the real one
    with configured.client(configured.token) as good, configured.client(wrong) as bad:
        assert good.get("/searches").status_code == 200
        assert good.post("/searches", json={**SPEC, "device": "abacus"}).status_code == 422
        assert good.get(f"/searches/{uuid.uuid4().hex}").status_code == 404
        assert bad.get("/searches").status_code == 401
        assert bad.post("/searches", json=SPEC).status_code == 401
        assert bad.get("/health").status_code == 200
    time.sleep(0.5)
    log = configured.log.read_text()
    assert '"GET /searches HTTP/1.1" 401' in log and '"POST /searches HTTP/1.1" 202' in log  # DEBUG logging was on
    for secret in (configured.token, wrong, configured.password):
        assert secret not in log
    assert configured.token[8:20] not in log and configured.password[3:15] not in log  # nor a fragment


def test_no_table_holds_a_raw_token(configured: Configured) -> None:
    """Only the sha256 is stored, and nothing else (searches, Optuna's tables) copies the token."""
    from sqlalchemy import MetaData, select

    from nas.storage import engine_for

    engine = engine_for(configured.database_url)
    metadata = MetaData()
    metadata.reflect(engine)
    assert "nas_tokens" in metadata.tables and "nas_searches" in metadata.tables
    seen = 0
    with engine.connect() as conn:
        for table in metadata.tables.values():
            for row in conn.execute(select(table)):
                seen += 1
                assert configured.token not in repr(tuple(row)), table.name
                assert configured.token[8:] not in repr(tuple(row)), table.name
    assert seen > 0


def test_the_database_is_asked_for_a_tokens_sha256_never_the_token(tmp_path: Path) -> None:
    """Timing safety of the token check: the lookup compares the sha256 of the presented token, which the
    caller cannot steer, so the time it takes says nothing about how much of a real token was guessed. A
    lookup by the token itself (or a prefix of it) would leak exactly that."""
    import hashlib

    from sqlalchemy import event

    from nas.service import authenticate, create_token
    from nas.service.migrate import ensure_schema
    from nas.storage import engine_for

    url = f"sqlite:///{tmp_path / 'tokens.db'}"
    record, token = create_token(url, "timing")
    wrong = token[:-1] + ("A" if token[-1] != "A" else "B")
    sent: list[str] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        sent.append(f"{statement} {parameters!r}")

    engine = engine_for(ensure_schema(url))
    event.listen(engine, "before_cursor_execute", capture)
    try:
        assert authenticate(url, token) == record
        assert authenticate(url, wrong) is None
        assert authenticate(url, hashlib.sha256(token.encode()).hexdigest()) is None  # the stored value is no key
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    asked = " ".join(sent)
    assert hashlib.sha256(token.encode()).hexdigest() in asked and hashlib.sha256(wrong.encode()).hexdigest() in asked
    for secret in (token, wrong, token[:8]):  # not even the prefix shown in `nas token list`
        assert secret not in asked


# -- CORS ------------------------------------------------------------------------------------------------
PREFLIGHT = {"Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "authorization"}


def test_cors_is_off_by_default(service: Service) -> None:
    with service.client(service.token()) as c:
        for origin in (ALLOWED_ORIGIN, "http://evil.example"):
            preflight = c.options("/searches", headers={"Origin": origin, **PREFLIGHT})
            simple = c.get("/searches", headers={"Origin": origin})
            assert simple.status_code == 200
            for response in (preflight, simple):
                assert not any(h.lower().startswith("access-control-") for h in response.headers), response.headers


def test_cors_allows_exactly_the_configured_origins(configured: Configured) -> None:
    with configured.client(configured.token) as c:
        allowed = c.options("/searches", headers={"Origin": ALLOWED_ORIGIN, **PREFLIGHT})
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
        assert "authorization" in allowed.headers["access-control-allow-headers"].lower()
        assert c.get("/searches", headers={"Origin": ALLOWED_ORIGIN}).headers["access-control-allow-origin"] \
            == ALLOWED_ORIGIN
        other = c.options("/searches", headers={"Origin": "http://evil.example", **PREFLIGHT})
        assert "access-control-allow-origin" not in other.headers
        assert "access-control-allow-origin" not in c.get("/searches", headers={"Origin": "http://evil.example"}).headers


# -- request size ----------------------------------------------------------------------------------------
def test_the_configured_body_limit_applies_before_authentication(configured: Configured) -> None:
    padded = {**SPEC, "strategy": {"name": "tpe", "options": {"padding": "x" * MAX_BODY}}}
    with configured.client() as anonymous, configured.client(configured.token) as c:
        assert anonymous.post("/searches", json=padded).status_code == 413
        assert anonymous.post("/searches", json=SPEC).status_code == 401
        assert c.post("/searches", json=padded).status_code == 413
        assert c.post("/searches", json={**SPEC, "device": "abacus"}).status_code == 422  # small bodies get through
