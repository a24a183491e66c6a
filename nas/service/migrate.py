"""Programmatic Alembic for the service tables: ``nas db upgrade``, API start, and first use by a worker.

The scripts ship inside the package (``nas/service/migrations``), so an installed service can migrate
its database without an ``alembic.ini`` or a source checkout.
"""

from __future__ import annotations

import fcntl
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import make_url

from nas.storage import engine_for

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
VERSION_TABLE = "nas_alembic_version"


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["url"] = url  # not via sqlalchemy.url: ConfigParser would choke on '%' in passwords
    return cfg


@contextmanager
def _sqlite_file_lock(url: str) -> Iterator[None]:
    """SQLite has no advisory locks; processes on one machine serialise on a lock file next to the
    database, so two first-time starters do not both try to create the tables."""
    database = make_url(url).database if url.startswith("sqlite") else None
    if not database or database == ":memory:":
        yield
        return
    lock_path = Path(database).with_name(Path(database).name + ".migrate.lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@contextmanager
def _postgres_advisory_lock(url: str) -> Iterator[None]:
    """PostgreSQL: processes anywhere serialise on an advisory lock (two workers starting on a fresh
    database would otherwise race on CREATE TYPE / CREATE TABLE)."""
    if not url.startswith("postgresql"):
        yield
        return
    with engine_for(url).connect() as conn:
        conn.exec_driver_sql("SELECT pg_advisory_lock(727274)")
        try:
            yield
        finally:
            conn.exec_driver_sql("SELECT pg_advisory_unlock(727274)")
            conn.commit()


def upgrade(url: str, revision: str = "head") -> str | None:
    """Migrate the service tables to ``revision`` and create Optuna's tables in the same database (so
    the first searches do not race to create them); returns the service schema's revision afterwards."""
    with _sqlite_file_lock(url), _postgres_advisory_lock(url):
        command.upgrade(alembic_config(url), revision)
        from nas.search._study import rdb_storage

        rdb_storage(url)  # Optuna creates or checks its own schema (its own alembic_version table)
    now = current_revision(url)
    log.info("service schema at %s", now)
    return now


def current_revision(url: str) -> str | None:
    with engine_for(url).connect() as conn:
        return MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE}).get_current_revision()


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


@lru_cache(maxsize=16)
def ensure_schema(url: str) -> str:
    """Upgrade once per process and URL, so store functions work on a fresh database (tests, a worker
    started before anyone ran ``nas db upgrade``) without a migration check on every call."""
    if current_revision(url) != head_revision():
        upgrade(url)
    return url
