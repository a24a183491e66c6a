"""Alembic migrations of the service tables (run by ``nas db upgrade`` and on API start)."""
