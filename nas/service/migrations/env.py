"""Alembic environment for the service tables only.

Optuna keeps its own Alembic history in the same database under the default ``alembic_version``
table; ours is ``nas_alembic_version`` and autogenerate only looks at ``nas_*`` tables, so neither
history ever sees the other's tables. Concurrent upgrades (several API replicas starting at once)
serialise on a PostgreSQL advisory lock taken inside the migration transaction.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import text

from nas.service._models import ServiceBase
from nas.storage import engine_for

VERSION_TABLE = "nas_alembic_version"
_PG_LOCK_KEY = 0x6E61735F6D6967  # "nas_mig": any constant shared by every process migrating this schema


def _ours(name: str | None, type_: str, parent_names: object) -> bool:
    return type_ != "table" or (name is not None and name.startswith("nas_") and name != VERSION_TABLE)


def _url() -> str:
    config = context.config
    url = config.attributes.get("url") or config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no database URL given to the migration environment")
    return str(url)


def run_offline() -> None:
    context.configure(url=_url(), target_metadata=ServiceBase.metadata, version_table=VERSION_TABLE,
                      include_name=_ours, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    with engine_for(_url()).connect() as connection:
        context.configure(connection=connection, target_metadata=ServiceBase.metadata, version_table=VERSION_TABLE,
                          include_name=_ours, render_as_batch=connection.dialect.name == "sqlite")
        with context.begin_transaction():
            if connection.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
            context.run_migrations()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
