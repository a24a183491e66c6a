"""PostgreSQL on the event loop (asyncpg), for the API's per-request statements.

Why: under 50 back-to-back clients the API spent about 3 ms of CPU per request, most of it in SQLAlchemy,
psycopg and the hop to a worker thread for each blocking read. asyncpg runs a prepared statement
without a thread, an ORM or a transaction, and a slow database then delays only the requests that
wait for it, not the event loop. SQLite (the embedded default) has no such driver: callers keep their
synchronous path for it (``is_postgresql``).

One pool per database URL, per process and per event loop, of at most ``NAS_API_DB_CONNECTIONS``
connections, opened on demand and closed after 5 idle minutes (under 50 back-to-back clients a pool of
8 queued requests behind one another: p99 70-110 ms, against 25-70 ms with 16). Connections that
PostgreSQL dropped are replaced, a statement that meets one is run once more, and an unreachable server
raises ``DatabaseUnavailableError`` (the API answers 503 with Retry-After).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from functools import lru_cache
from typing import Any, TypeVar

from sqlalchemy.engine import make_url

from nas.errors import DatabaseUnavailableError
from nas.settings import get_settings
from nas.storage.per_loop import PerLoop

log = logging.getLogger(__name__)

_T = TypeVar("_T")

CONNECT_TIMEOUT = 5.0

# url -> the task creating the pool, per event loop; requests that arrive while it is created all wait for it.
_pools: PerLoop[asyncio.Task[Any]] = PerLoop()


@lru_cache(maxsize=16)
def is_postgresql(url: str) -> bool:
    """Cached: asked on every request, and parsing a URL is not free."""
    return make_url(url).get_backend_name() == "postgresql"


def _dsn(url: str) -> str:
    """``postgresql+psycopg://...`` (SQLAlchemy's spelling) as a libpq URL asyncpg reads."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _keep_session(connection: Any) -> None:
    """The pool's reset on release, replaced: asyncpg's default sends ``RESET ALL``, ``UNLISTEN *`` and
    more, a round trip per statement. Ours set no session state (no SET, LISTEN or advisory lock) and
    run outside transactions, so there is nothing to reset."""


async def _init_connection(connection: Any) -> None:
    """JSON columns (SQLAlchemy's ``JSON``, PostgreSQL's ``json``) as Python values both ways, as the
    synchronous path sees them."""
    await connection.set_type_codec("json", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def _pool(url: str) -> Any:
    import asyncpg

    async def create() -> Any:
        # min_size 0: creating the pool connects to nothing, so it does not fail; the first statement may.
        return await asyncpg.create_pool(_dsn(url), min_size=0, max_size=get_settings().api_db_connections,
                                         timeout=CONNECT_TIMEOUT, init=_init_connection, reset=_keep_session)

    return await _pools.get(url, lambda loop: loop.create_task(create()))


def _dropped(exc: BaseException) -> bool:
    """A pooled connection that died under us (PostgreSQL restarted, the backend was terminated)."""
    import asyncpg

    return isinstance(exc, asyncpg.ConnectionDoesNotExistError | asyncpg.AdminShutdownError
                      | asyncpg.InterfaceError | ConnectionError)


def _unavailable(exc: BaseException) -> bool:
    import asyncpg

    return isinstance(exc, OSError | TimeoutError | asyncpg.PostgresConnectionError | asyncpg.InterfaceError
                      | asyncpg.CannotConnectNowError | asyncpg.AdminShutdownError
                      | asyncpg.TooManyConnectionsError)


async def run(url: str, statement: Callable[[Any], Awaitable[_T]]) -> _T:
    """``statement(connection)`` on a pooled connection. Run once more when the connection turns out to
    be dead, so keep it idempotent (a read, or an insert that ignores a row already there)."""
    pool = await _pool(url)
    for attempt in (1, 2):
        try:
            async with pool.acquire() as connection:
                return await statement(connection)
        except Exception as exc:
            if attempt == 1 and _dropped(exc):
                log.info("a pooled PostgreSQL connection was dropped (%s); running the statement again",
                         type(exc).__name__)
                continue
            if _unavailable(exc):
                reason = str(exc).strip().splitlines()
                raise DatabaseUnavailableError(f"{type(exc).__name__}: {reason[0] if reason else ''}") from exc
            raise
    raise AssertionError("unreachable")
