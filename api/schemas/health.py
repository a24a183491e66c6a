"""What ``GET /health`` reports."""

from __future__ import annotations

from pydantic import BaseModel


class HealthPublic(BaseModel):
    status: str
    database: str
    redis: str
    schema_revision: str | None
