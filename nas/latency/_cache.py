"""Latency storage: measured networks, lookup-table entries and calibrations, in the shared database.

Every key includes the hardware fingerprint (CPU, cores, library versions, profile settings, timing
method), so a number measured on one machine or build is never served for another. Each function is one
short block inside ``session_scope``, which owns commit and rollback. These tables are caches of
re-measurable timings: a schema change gets new table names (the ``_v{SCHEMA}`` suffix) instead of a
migration, so an older database is never altered and never read with the wrong columns.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import JSON, DateTime, Float, Integer, String, Text, UniqueConstraint, inspect, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Mapped, Session, mapped_column

from nas.latency._timing import LatencyStats
from nas.storage import Base, create_tables, engine_for, session_scope

SCHEMA = 2


def _now() -> datetime:
    return datetime.now(UTC)


class _Stats:
    median_ms: Mapped[float] = mapped_column(Float)
    p10_ms: Mapped[float] = mapped_column(Float)
    p90_ms: Mapped[float] = mapped_column(Float)
    mean_ms: Mapped[float] = mapped_column(Float)
    min_ms: Mapped[float] = mapped_column(Float)
    runs: Mapped[int] = mapped_column(Integer)
    ci_rel: Mapped[float] = mapped_column(Float)
    windows: Mapped[int] = mapped_column(Integer, default=1)
    disturbed: Mapped[float] = mapped_column(Float, default=0.0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)

    def stats(self) -> LatencyStats:
        return LatencyStats(self.median_ms, self.p10_ms, self.p90_ms, self.mean_ms, self.min_ms, self.runs,
                            self.ci_rel, self.windows, self.disturbed)

    def set_stats(self, stats: LatencyStats) -> None:
        for name in LatencyStats.__dataclass_fields__:
            if name in _Stats.__annotations__:  # the columns; all_median_ms, quiet_median_ms are not stored
                setattr(self, name, getattr(stats, name))
        self.created_at = _now()


class LatencyMeasurementRow(_Stats, Base):
    """One end-to-end measurement of a network at a resolution on a profile."""

    __tablename__ = f"latency_measurements_v{SCHEMA}"
    __table_args__ = (UniqueConstraint("arch_hash", "resolution", "profile", "fingerprint",
                                       name=f"uq_latency_measurement_v{SCHEMA}"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    arch_hash: Mapped[str] = mapped_column(String(32), index=True)
    resolution: Mapped[int] = mapped_column(Integer)
    profile: Mapped[str] = mapped_column(String(64))
    fingerprint: Mapped[str] = mapped_column(String(32))
    architecture: Mapped[str] = mapped_column(Text)
    hardware: Mapped[dict[str, Any]] = mapped_column(JSON)
    conditions: Mapped[dict[str, Any]] = mapped_column(JSON)

    @classmethod
    def find(cls, session: Session, arch_hash: str, resolution: int, profile: str, fingerprint: str
             ) -> LatencyMeasurementRow | None:
        return session.scalars(select(cls).filter_by(arch_hash=arch_hash, resolution=resolution,
                                                     profile=profile, fingerprint=fingerprint)).first()


class LatencyTableEntryRow(_Stats, Base):
    """One lookup-table entry: a part (block, stem, head, identity) timed alone on a profile."""

    __tablename__ = f"latency_table_entries_v{SCHEMA}"
    __table_args__ = (UniqueConstraint("profile", "fingerprint", "key", name=f"uq_latency_table_entry_v{SCHEMA}"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    profile: Mapped[str] = mapped_column(String(64))
    fingerprint: Mapped[str] = mapped_column(String(32))
    key: Mapped[str] = mapped_column(String(200))
    params: Mapped[int | None] = mapped_column(Integer, nullable=True)


class LatencyCalibrationRow(Base):
    """``measured ~ (slope + slope_per_mparam * weights_m) * table_sum + ms_per_mparam * weights_m + intercept``
    fitted on a few measured networks of one space (``scope``) or of every space (``scope == "*"``) at one
    resolution (``nas.latency._calibration``)."""

    __tablename__ = f"latency_calibrations_v{SCHEMA}"
    __table_args__ = (UniqueConstraint("profile", "fingerprint", "scope", "resolution",
                                       name=f"uq_latency_calibration_v{SCHEMA}"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    profile: Mapped[str] = mapped_column(String(64))
    fingerprint: Mapped[str] = mapped_column(String(32))
    scope: Mapped[str] = mapped_column(String(64))
    resolution: Mapped[int] = mapped_column(Integer)
    slope: Mapped[float] = mapped_column(Float)
    intercept_ms: Mapped[float] = mapped_column(Float)
    ms_per_mparam: Mapped[float] = mapped_column(Float, default=0.0)
    slope_per_mparam: Mapped[float | None] = mapped_column(Float, nullable=True, default=0.0)  # added 2026-11-28
    points: Mapped[list[list[Any]]] = mapped_column(JSON, doc="[arch_hash, table_sum_ms, measured_ms, weights_m]")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class LatencyCanaryRow(Base):
    """The reference speed of a profile on a fingerprint: the first canary median recorded
    (``nas.latency._canary``)."""

    __tablename__ = f"latency_canary_refs_v{SCHEMA}"
    __table_args__ = (UniqueConstraint("profile", "fingerprint", name=f"uq_latency_canary_ref_v{SCHEMA}"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    profile: Mapped[str] = mapped_column(String(64))
    fingerprint: Mapped[str] = mapped_column(String(32))
    median_ms: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


@lru_cache(maxsize=16)
def ensure_tables(url: str) -> str:
    create_tables(url)
    _add_missing_columns(url)
    return url


# Columns added to a cache table after databases with it existed: ``create_all`` never alters a table.
_ADDED_COLUMNS = {LatencyCalibrationRow.__tablename__: {"slope_per_mparam": "FLOAT"}}


def _add_missing_columns(url: str) -> None:
    """Once per process and URL (``ensure_tables`` is cached); another process adding the same column at the
    same moment is fine."""
    engine = engine_for(url)
    for table, columns in _ADDED_COLUMNS.items():
        for name, ddl in columns.items():
            if name in {c["name"] for c in inspect(engine).get_columns(table)}:
                continue
            try:
                with engine.begin() as conn:
                    conn.execute(text(f"ALTER TABLE {table} ADD COLUMN {name} {ddl}"))
            except DBAPIError:
                if name not in {c["name"] for c in inspect(engine).get_columns(table)}:
                    raise


def get_measurement(url: str, arch_hash: str, resolution: int, profile: str, fingerprint: str
                    ) -> dict[str, Any] | None:
    with session_scope(ensure_tables(url)) as s:
        row = LatencyMeasurementRow.find(s, arch_hash, resolution, profile, fingerprint)
        if row is None:
            return None
        # the all-runs and quiet-run medians are kept in the conditions (not columns); older rows lack them
        kept = row.conditions or {}
        stats = replace(row.stats(), all_median_ms=kept.get("all_median_ms"),
                        quiet_median_ms=kept.get("quiet_median_ms"))
        return {"stats": stats, "hardware": row.hardware, "conditions": row.conditions,
                "created_at": row.created_at}


def get_measurements(url: str, profile: str, fingerprint: str) -> list[dict[str, Any]]:
    """Every network measured on a profile and fingerprint: architecture JSON, resolution, median (and the
    all-runs and quiet-run medians where recorded)."""
    with session_scope(ensure_tables(url)) as s:
        rows = s.execute(select(LatencyMeasurementRow.architecture, LatencyMeasurementRow.resolution,
                                LatencyMeasurementRow.median_ms, LatencyMeasurementRow.conditions)
                         .filter_by(profile=profile, fingerprint=fingerprint))
        return [{"architecture": a, "resolution": r, "median_ms": m,
                 "all_median_ms": (c or {}).get("all_median_ms"), "quiet_median_ms": (c or {}).get("quiet_median_ms")}
                for a, r, m, c in rows]


def put_measurement(url: str, arch_hash: str, resolution: int, profile: str, fingerprint: str, *,
                    stats: LatencyStats, architecture: str, hardware: dict[str, Any],
                    conditions: dict[str, Any]) -> None:
    """Insert or replace (a forced re-measurement overwrites the cached one)."""
    with session_scope(ensure_tables(url)) as s:
        row = LatencyMeasurementRow.find(s, arch_hash, resolution, profile, fingerprint)
        if row is None:
            row = LatencyMeasurementRow(arch_hash=arch_hash, resolution=resolution, profile=profile,
                                        fingerprint=fingerprint)
            s.add(row)
        row.set_stats(stats)
        row.architecture, row.hardware, row.conditions = architecture, hardware, conditions


def get_entries(url: str, profile: str, fingerprint: str) -> dict[str, LatencyStats]:
    with session_scope(ensure_tables(url)) as s:
        rows = s.scalars(select(LatencyTableEntryRow).filter_by(profile=profile, fingerprint=fingerprint))
        return {r.key: r.stats() for r in rows}


def get_params(url: str, profile: str, fingerprint: str) -> dict[str, int]:
    """Weights per entry key (where known)."""
    with session_scope(ensure_tables(url)) as s:
        rows = s.execute(select(LatencyTableEntryRow.key, LatencyTableEntryRow.params).filter_by(
            profile=profile, fingerprint=fingerprint))
        return {key: params for key, params in rows if params is not None}


def put_entries(url: str, profile: str, fingerprint: str, entries: Iterable[tuple[str, LatencyStats]],
                params: dict[str, int] | None = None) -> int:
    """Upsert entries (and their weight counts) in one transaction; returns how many were written."""
    batch = dict(entries)
    if not batch:
        return 0
    with session_scope(ensure_tables(url)) as s:
        existing = {r.key: r for r in s.scalars(select(LatencyTableEntryRow).filter(
            LatencyTableEntryRow.profile == profile, LatencyTableEntryRow.fingerprint == fingerprint,
            LatencyTableEntryRow.key.in_(list(batch))))}
        for key, stats in batch.items():
            row = existing.get(key)
            if row is None:
                row = LatencyTableEntryRow(profile=profile, fingerprint=fingerprint, key=key)
                s.add(row)
            row.set_stats(stats)
            if params and key in params:
                row.params = params[key]
    return len(batch)


def get_calibrations(url: str, profile: str, fingerprint: str) -> list[dict[str, Any]]:
    with session_scope(ensure_tables(url)) as s:
        rows = s.scalars(select(LatencyCalibrationRow).filter_by(profile=profile, fingerprint=fingerprint))
        return [{"scope": r.scope, "resolution": r.resolution, "slope": r.slope, "intercept_ms": r.intercept_ms,
                 "ms_per_mparam": r.ms_per_mparam or 0.0, "slope_per_mparam": r.slope_per_mparam or 0.0,
                 "points": r.points} for r in rows]


def put_calibration(url: str, profile: str, fingerprint: str, scope: str, resolution: int, *, slope: float,
                    intercept_ms: float, points: list[list[Any]], ms_per_mparam: float = 0.0,
                    slope_per_mparam: float = 0.0) -> None:
    with session_scope(ensure_tables(url)) as s:
        row = s.scalars(select(LatencyCalibrationRow).filter_by(
            profile=profile, fingerprint=fingerprint, scope=scope, resolution=resolution)).first()
        if row is None:
            row = LatencyCalibrationRow(profile=profile, fingerprint=fingerprint, scope=scope,
                                        resolution=resolution)
            s.add(row)
        row.slope, row.intercept_ms, row.points, row.created_at = slope, intercept_ms, points, _now()
        row.ms_per_mparam, row.slope_per_mparam = ms_per_mparam, slope_per_mparam


_CANARY_REFS: dict[tuple[str, str, str], float] = {}  # a reference never changes once stored


def stored_canary_reference(url: str, profile: str, fingerprint: str) -> float | None:
    """The reference canary median of this profile and fingerprint, or None before any was recorded."""
    with session_scope(ensure_tables(url)) as s:
        row = s.scalars(select(LatencyCanaryRow).filter_by(profile=profile, fingerprint=fingerprint)).first()
        return row.median_ms if row else None


def canary_reference(url: str, profile: str, fingerprint: str, candidate_ms: float) -> float:
    """The stored reference canary median, storing ``candidate_ms`` if there is none yet. Two processes
    racing to store one: the loser's insert fails on the unique constraint and it reads the winner's."""
    from sqlalchemy.exc import IntegrityError

    found = _CANARY_REFS.get((url, profile, fingerprint)) or stored_canary_reference(url, profile, fingerprint)
    if found is not None:
        _CANARY_REFS[(url, profile, fingerprint)] = found
        return found
    try:
        with session_scope(url) as s:
            s.add(LatencyCanaryRow(profile=profile, fingerprint=fingerprint, median_ms=candidate_ms))
    except IntegrityError:
        pass
    found = stored_canary_reference(url, profile, fingerprint)
    return found if found is not None else candidate_ms


def latest_median(url: str, arch_hash: str, resolution: int, profile: str, fingerprints: Iterable[str]
                  ) -> float | None:
    """The newest cached median of a network on any of ``fingerprints``, read without creating tables
    (a report on someone else's database must not alter it)."""
    wanted = sorted(fingerprints)
    if not wanted or not inspect(engine_for(url)).has_table(LatencyMeasurementRow.__tablename__):
        return None
    with session_scope(url) as s:
        row = s.scalars(select(LatencyMeasurementRow).where(
            LatencyMeasurementRow.arch_hash == arch_hash, LatencyMeasurementRow.resolution == resolution,
            LatencyMeasurementRow.profile == profile, LatencyMeasurementRow.fingerprint.in_(wanted),
        ).order_by(LatencyMeasurementRow.created_at.desc())).first()
        return None if row is None else float(row.median_ms)
