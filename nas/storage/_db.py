"""Engine and session handling: every storage function is a short block inside ``session_scope``."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import TypeVar

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import DeclarativeBase, Session

_T = TypeVar("_T")


class Base(DeclarativeBase):
    pass


@lru_cache(maxsize=16)
def engine_for(url: str) -> Engine:
    """One engine per URL per process; SQLite gets WAL and a busy timeout so workers can share it."""
    engine = _create(url)
    _engines_seen.append(engine)
    return engine


def _create(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _pragmas(conn, _record):  # type: ignore[no-untyped-def]
            cur = conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    # At most 10 connections per process (SQLAlchemy's default is 15): API processes, workers and the
    # dashboard must all fit in PostgreSQL's default 100 connections; the API's 40 threads queue on the
    # pool rather than fail with "too many clients".
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)


def _forget_engines_after_fork() -> None:
    """A forked child (Celery prefork, multiprocessing) must not reuse its parent's pooled connections:
    two processes on one PostgreSQL connection corrupt each other's state."""
    for engine in _engines_seen:
        engine.dispose(close=False)
    engine_for.cache_clear()
    _reading_engine.cache_clear()
    for forget in _forgetters:
        forget()


def forget_after_fork(engine: Engine, forget: Callable[[], None]) -> None:
    """Treat an engine made elsewhere (Optuna's storage) like ours in a forked child: its connections are
    left to the parent, and ``forget`` drops the cache that holds it."""
    _engines_seen.append(engine)
    _forgetters.append(forget)


_engines_seen: list[Engine] = []
_forgetters: list[Callable[[], None]] = []
os.register_at_fork(after_in_child=_forget_engines_after_fork)


def create_tables(url: str) -> None:
    with schema_lock(url):
        Base.metadata.create_all(engine_for(url))


_SCHEMA_LOCK_KEY = 0x6E6173  # "nas": one advisory lock for every schema this project creates lazily


@contextmanager
def schema_lock(url: str) -> Iterator[None]:
    """Creating tables is not atomic: processes that first use a fresh database at the same moment (two
    searches starting on a new deployment, each creating Optuna's tables) failed all but one with
    "duplicate key value violates unique constraint pg_type_typname_nsp_index". So lazy schema creation
    runs one process at a time: a PostgreSQL advisory lock, or a file lock beside a SQLite file."""
    if url.startswith("postgresql"):
        with engine_for(url).connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _SCHEMA_LOCK_KEY})
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _SCHEMA_LOCK_KEY})
        return
    path = make_url(url).database if url.startswith("sqlite") else None
    if not path or path == ":memory:":
        yield
        return
    import fcntl

    with open(f"{path}.schema-lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@lru_cache(maxsize=16)
def _reading_engine(url: str) -> Engine:
    """Autocommit and no pre-ping, for one-statement reads such as the API's token check: a read needs no
    BEGIN, no COMMIT and no ping, three of the four round trips (and a share of PostgreSQL's CPU) it
    would otherwise cost. Without the ping a pooled connection can be dead (PostgreSQL restarted):
    ``read`` then runs the block once more on a fresh connection, which a read can afford."""
    if url.startswith("sqlite"):
        return engine_for(url).execution_options(isolation_level="AUTOCOMMIT")
    engine = create_engine(url, pool_pre_ping=False, pool_size=3, max_overflow=3, isolation_level="AUTOCOMMIT")
    _engines_seen.append(engine)
    return engine


def read(url: str, block: Callable[[Session], _T]) -> _T:
    """``block(session)`` on the reading engine (see ``session_scope(readonly=True)``); run once more when
    the pooled connection turned out to be dead (SQLAlchemy then invalidates the pool's older connections)."""
    for attempt in (1, 2):
        try:
            with session_scope(url, readonly=True) as session:
                return block(session)
        except DBAPIError as exc:
            if attempt == 2 or not exc.connection_invalidated:
                raise
    raise AssertionError("unreachable")


@contextmanager
def session_scope(url: str, *, readonly: bool = False) -> Iterator[Session]:
    """Commit on success, roll back on error, always close. ``readonly``: each statement runs on its own
    (autocommit) on a connection that is not pinged first, so use it only for blocks that write nothing and
    need no consistent snapshot across statements, and prefer ``read``, which survives a dead connection."""
    engine = _reading_engine(url) if readonly else engine_for(url)
    session = Session(engine, expire_on_commit=False)  # not sessionmaker(): it defines a class per call
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
