"""The ORM row of a supernet trained by the service (migration nas0003); read and written only by
``nas.service.supernets``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Index, Integer, String, Text, UniqueConstraint, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from nas.service._models import ServiceBase, utcnow


class SupernetRow(ServiceBase):
    __tablename__ = "nas_supernets"
    __table_args__ = (UniqueConstraint("name", name="uq_nas_supernets_name"),
                      Index("ix_nas_supernets_owner_created", "owner_id", "created_at"))

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    owner_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    name: Mapped[str] = mapped_column(String(100))
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    fingerprint: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    progress: Mapped[dict[str, Any]] = mapped_column(JSON)
    message: Mapped[str] = mapped_column(Text, default="")
    summary: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    worker: Mapped[str | None] = mapped_column(String(255), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    @classmethod
    def find(cls, s: Session, key: str, *, lock: bool = False) -> SupernetRow | None:
        """By id, else by name (ids are 32 hex digits; a name that looks like one is found by id first)."""
        for column in (cls.id, cls.name):
            q = select(cls).where(column == key)
            row = s.scalars(q.with_for_update() if lock else q).first()
            if row is not None:
                return row
        return None
