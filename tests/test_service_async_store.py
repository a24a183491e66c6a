"""The API's per-request statements as coroutines (asyncpg on PostgreSQL, a worker thread on SQLite): they
must read and write exactly what the synchronous store does, and fail the same ways."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from nas.errors import DatabaseUnavailableError, NotFoundError
from nas.search import parse_spec
from nas.service import SearchStatus, authenticate, create_token, get_search, mark_finished, mark_running
from nas.service.async_store import authenticate_async, create_search_async, get_search_async

from .api_support import SPEC, free_port
from .skips import NOT_APPLICABLE

pytest_plugins = ["tests.service_fixtures"]  # database_url

spec = parse_spec(SPEC)


def test_a_search_stored_by_the_async_path_reads_the_same_both_ways(database_url: str) -> None:
    token, secret = create_token(database_url, f"async-{uuid.uuid4().hex[:8]}")

    async def scenario() -> None:
        assert await authenticate_async(database_url, secret) == authenticate(database_url, secret) == token
        assert await authenticate_async(database_url, secret + "x") is None
        assert await authenticate_async(database_url, "not-a-token") is None
        created = await create_search_async(database_url, spec, token.id)
        assert created.status is SearchStatus.queued and created.spec == spec.model_dump(mode="json")
        assert get_search(database_url, created.id) == created  # stored what it returned
        assert await get_search_async(database_url, created.id, token.id) == created
        with pytest.raises(NotFoundError, match="search"):
            await get_search_async(database_url, created.id, uuid.uuid4().hex)  # another owner's: not found
        with pytest.raises(NotFoundError):
            await get_search_async(database_url, "0" * 32)

    asyncio.run(scenario())


def test_json_timestamps_and_nulls_of_a_finished_search_read_as_in_the_synchronous_store(database_url: str) -> None:
    token, _ = create_token(database_url, f"async-{uuid.uuid4().hex[:8]}")
    created = asyncio.run(create_search_async(database_url, spec, token.id))
    mark_running(database_url, created.id, "host")
    mark_finished(database_url, created.id, SearchStatus.succeeded,
                  result={"best": {"trial": 3, "reward": float("nan")}, "pareto": [1.5, None]})
    read = asyncio.run(get_search_async(database_url, created.id))
    assert read == get_search(database_url, created.id)
    assert read.result == {"best": {"trial": 3, "reward": None}, "pareto": [1.5, None]}
    assert read.finished_at is not None and read.finished_at.tzinfo is not None


def test_async_reads_survive_their_pooled_connections_being_killed(database_url: str) -> None:
    """No ping before a statement: a connection PostgreSQL dropped costs one retry, not an error."""
    if not database_url.startswith("postgresql"):
        pytest.skip(f"{NOT_APPLICABLE} SQLite has no server connections to kill")
    import psycopg
    from sqlalchemy.engine import make_url

    token, secret = create_token(database_url, f"async-{uuid.uuid4().hex[:8]}")
    dsn = make_url(database_url).set(drivername="postgresql").render_as_string(False)

    async def scenario() -> None:
        created = await create_search_async(database_url, spec, token.id)  # pools a connection
        with psycopg.connect(dsn, autocommit=True) as admin:  # blocks the loop: the pool cannot notice
            killed = admin.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                   "WHERE datname = current_database() AND pid <> pg_backend_pid()").fetchone()
        assert killed is not None and killed[0] >= 1
        assert await authenticate_async(database_url, secret) == token
        assert (await get_search_async(database_url, created.id, token.id)).id == created.id

    asyncio.run(scenario())


def test_an_unreachable_postgresql_is_a_database_unavailable_error_at_once() -> None:
    url = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/test"  # nothing listens there

    async def scenario() -> None:
        start = time.monotonic()
        with pytest.raises(DatabaseUnavailableError, match="Connect|connect|refused"):
            await authenticate_async(url, "nas_" + "x" * 43)
        assert time.monotonic() - start < 5

    asyncio.run(scenario())
