"""Engine and session handling: every storage function is a short block inside ``session_scope``."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker


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
    return create_engine(url, pool_pre_ping=True)


def _forget_engines_after_fork() -> None:
    """A forked child (Celery prefork, multiprocessing) must not reuse its parent's pooled connections:
    two processes on one PostgreSQL connection corrupt each other's state."""
    for engine in _engines_seen:
        engine.dispose(close=False)
    engine_for.cache_clear()


_engines_seen: list[Engine] = []
os.register_at_fork(after_in_child=_forget_engines_after_fork)


def create_tables(url: str) -> None:
    Base.metadata.create_all(engine_for(url))


@contextmanager
def session_scope(url: str) -> Iterator[Session]:
    """Commit on success, roll back on error, always close."""
    session = sessionmaker(engine_for(url), expire_on_commit=False)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
