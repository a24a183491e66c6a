"""SQL storage shared with Optuna's RDB storage: one database, SQLite by default, PostgreSQL by URL."""

from __future__ import annotations

from nas.storage._db import Base, create_tables, engine_for, forget_after_fork, read, schema_lock, session_scope

__all__ = ["Base", "create_tables", "engine_for", "forget_after_fork", "read", "schema_lock", "session_scope"]
