"""ORM rows of the service: searches, API tokens, device (latency worker) registrations, artifacts, supernets,
trainings.

They live on their own declarative base, not on ``nas.storage.Base``: the latency cache creates its
tables with ``Base.metadata.create_all``, and if these rows shared that metadata, any process that
imported both would create our tables behind Alembic's back and the first ``nas db upgrade`` would
then fail on "table exists". Our schema changes only through the migrations in ``migrations/``.
All table names carry the ``nas_`` prefix so they never collide with Optuna's tables in the same database.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    false,
    select,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column


def utcnow() -> datetime:
    return datetime.now(UTC)


class ServiceBase(DeclarativeBase):
    pass


class LeasedJob:
    """Columns of a job a worker runs under a lease (searches, supernets): who holds it, how often it was
    claimed (the fencing token), whether a cancel was asked for, and when it moved."""

    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    worker: Mapped[str | None] = mapped_column(String(255), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class SearchRow(LeasedJob, ServiceBase):
    __tablename__ = "nas_searches"
    __table_args__ = (Index("ix_nas_searches_owner_created", "owner_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    owner_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    name: Mapped[str] = mapped_column(String(100))
    study_name: Mapped[str] = mapped_column(String(64), unique=True)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), index=True)
    finished: Mapped[int] = mapped_column(Integer, default=0)
    budget_trials: Mapped[int | None] = mapped_column(Integer, nullable=True)
    running: Mapped[int] = mapped_column(Integer, default=0)
    elapsed_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    best_value: Mapped[float | None] = mapped_column(Float, nullable=True)
    best_trial: Mapped[int | None] = mapped_column(Integer, nullable=True)
    message: Mapped[str] = mapped_column(Text, default="")
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)

    @classmethod
    def find(cls, s: Session, search_id: str, *, lock: bool = False) -> SearchRow | None:
        """``lock``: SELECT ... FOR UPDATE on PostgreSQL, so state changes by the API and a worker serialise."""
        q = select(cls).where(cls.id == search_id)
        return s.scalars(q.with_for_update() if lock else q).first()


class TokenRow(ServiceBase):
    """Only the sha256 of a token is stored; ``prefix`` (first characters) lets people tell tokens apart."""

    __tablename__ = "nas_tokens"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    admin: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    """May open the dashboard, which shows every user's searches (``nas token create NAME --admin``)."""
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    @classmethod
    def by_name(cls, s: Session, name: str) -> TokenRow | None:
        return s.scalars(select(cls).where(cls.name == name)).first()


class DeviceRow(ServiceBase):
    """One latency worker host serving one device profile; ``last_seen`` is its heartbeat."""

    __tablename__ = "nas_devices"
    __table_args__ = (UniqueConstraint("profile", "hostname", name="uq_nas_devices_profile_host"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    profile: Mapped[str] = mapped_column(String(64))
    hostname: Mapped[str] = mapped_column(String(255))
    fingerprint: Mapped[str] = mapped_column(String(64))
    info: Mapped[dict[str, Any]] = mapped_column(JSON)
    first_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)

    @classmethod
    def find(cls, s: Session, profile: str, hostname: str) -> DeviceRow | None:
        return s.scalars(select(cls).where(cls.profile == profile, cls.hostname == hostname)).first()


class ArtifactRow(ServiceBase):
    """A file a search produced (trained weights, ONNX), scoped by its Optuna study: in the database, so every
    machine of a deployment reads what any worker wrote. Read and written only by ``nas.service.artifacts``."""

    __tablename__ = "nas_artifacts"
    __table_args__ = (UniqueConstraint("study_name", "name", name="uq_nas_artifacts_study_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    study_name: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(255))
    media_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    content: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class SpecJob(LeasedJob):
    """Columns of a leased job submitted as a spec document (supernets, trainings): addressed by id or name,
    with the spec, its fingerprint (what a checkpoint must match to be resumed), progress and summary."""

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    owner_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    name: Mapped[str] = mapped_column(String(100))
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    fingerprint: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    progress: Mapped[dict[str, Any]] = mapped_column(JSON)
    message: Mapped[str] = mapped_column(Text, default="")
    summary: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)

    @classmethod
    def find(cls, s: Session, key: str, *, lock: bool = False, owner_id: str | None = None) -> Any:
        """By id, else by name (ids are 32 hex digits; a name that looks like one is found by id first; of
        several rows with one name, the owner's newest)."""
        for column in (cls.id, cls.name):
            q = select(cls).where(column == key).order_by(cls.created_at.desc())
            if owner_id is not None and column is cls.name:
                q = q.where(cls.owner_id == owner_id)
            row = s.scalars(q.with_for_update() if lock else q).first()
            if row is not None:
                return row
        return None


class SupernetRow(SpecJob, ServiceBase):
    """A supernet trained by the service (``POST /supernets``); read and written only by ``nas.service.supernets``."""

    __tablename__ = "nas_supernets"
    __table_args__ = (UniqueConstraint("name", name="uq_nas_supernets_name"),
                      Index("ix_nas_supernets_owner_created", "owner_id", "created_at"))


class TrainingRow(SpecJob, ServiceBase):
    """A network trained to convergence by the service (``POST /trainings``, what ``nas train`` does); read and
    written only by ``nas.service.trainings``. Names are labels, not unique."""

    __tablename__ = "nas_trainings"
    __table_args__ = (Index("ix_nas_trainings_owner_created", "owner_id", "created_at"),)
