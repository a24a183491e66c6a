"""Every read and write of the service tables: searches, API tokens and device registrations.

The API and the workers call only these functions (torch-free), each a short block in one
``session_scope``; they return frozen records, never ORM objects, so nothing outlives its session.
The schema is brought to the current migration on first use per process (``ensure_schema``).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import secrets
import uuid
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from sqlalchemy import Row, func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from nas.errors import ConflictError, NASError, NotFoundError
from nas.service._models import DeviceRow, SearchRow, TokenRow, utcnow
from nas.service.migrate import ensure_schema
from nas.storage import read, session_scope

if TYPE_CHECKING:
    from nas.search import SearchSpec

log = logging.getLogger(__name__)


class SearchStatus(StrEnum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"

    def is_final(self) -> bool:
        return self in (SearchStatus.succeeded, SearchStatus.failed, SearchStatus.cancelled)


def _utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything we store is UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _utc_or_none(value: datetime | None) -> datetime | None:
    return None if value is None else _utc(value)


@dataclass(frozen=True)
class SearchRecord:
    id: str
    owner_id: str | None
    name: str
    study_name: str
    spec: dict[str, Any]
    status: SearchStatus
    finished: int
    budget_trials: int | None
    running: int
    elapsed_seconds: float
    best_value: float | None
    best_trial: int | None
    message: str
    result: dict[str, Any] | None
    error: str | None
    worker: str | None
    attempts: int
    cancel_requested: bool
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @classmethod
    def of(cls, row: SearchRow | Row[Any]) -> SearchRecord:
        """From an ORM row or a plain result row with the same columns (the API's reads skip the ORM)."""
        values = {f.name: getattr(row, f.name) for f in fields(cls)}
        values["status"] = SearchStatus(row.status)
        for key in ("created_at", "updated_at", "started_at", "finished_at"):
            values[key] = _utc_or_none(values[key])
        return cls(**values)


@dataclass(frozen=True)
class DeviceRecord:
    profile: str
    hostname: str
    fingerprint: str
    info: dict[str, Any]
    first_seen: datetime
    last_seen: datetime

    @classmethod
    def of(cls, row: DeviceRow) -> DeviceRecord:
        return cls(profile=row.profile, hostname=row.hostname, fingerprint=row.fingerprint, info=dict(row.info),
                   first_seen=_utc(row.first_seen), last_seen=_utc(row.last_seen))


@dataclass(frozen=True)
class TokenRecord:
    id: str
    name: str
    prefix: str
    created_at: datetime
    admin: bool = False
    """May open the dashboard, which shows every user's searches."""

    @classmethod
    def of(cls, row: TokenRow | Row[Any]) -> TokenRecord:
        return cls(id=row.id, name=row.name, prefix=row.prefix, created_at=_utc(row.created_at),
                   admin=bool(row.admin))


def json_safe(value: Any) -> Any:
    """NaN/infinity become null: PostgreSQL's JSON and strict JSON responses both refuse them, and a
    diverged trial can report a NaN accuracy."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


# -- searches ----------------------------------------------------------------------------------------------

def new_search_values(spec: SearchSpec, owner_id: str | None) -> dict[str, Any]:
    """Every column of a just-submitted (queued) search; shared by the synchronous and the asyncpg insert."""
    search_id, now = uuid.uuid4().hex, utcnow()
    return dict(id=search_id, owner_id=owner_id, name=spec.name, study_name=f"search-{search_id}",
                spec=spec.model_dump(mode="json"), status=SearchStatus.queued.value, finished=0,
                budget_trials=spec.budget.trials, running=0, elapsed_seconds=0.0, best_value=None, best_trial=None,
                message="queued", result=None, error=None, worker=None, attempts=0, cancel_requested=False,
                created_at=now, updated_at=now, started_at=None, finished_at=None)


def create_search(url: str, spec: SearchSpec, owner_id: str | None) -> SearchRecord:
    with session_scope(ensure_schema(url)) as s:
        row = SearchRow(**new_search_values(spec, owner_id))
        s.add(row)
        s.flush()
        return SearchRecord.of(row)


def get_search(url: str, search_id: str, owner_id: str | None = None) -> SearchRecord:
    """``owner_id`` None reads any search (workers); otherwise another owner's search is 'not found',
    so ids of other people's searches cannot be probed."""
    row = read(ensure_schema(url),
               lambda s: s.execute(select(*SearchRow.__table__.c).where(SearchRow.id == search_id)).first())
    return SearchRecord.of(visible(row, search_id, owner_id))


def list_searches(url: str, owner_id: str | None, status: SearchStatus | str | None = None, offset: int = 0,
                  limit: int = 50) -> tuple[list[SearchRecord], int]:
    """Newest first; returns one page and the total count matching the filter."""
    query = select(SearchRow)
    if owner_id is not None:
        query = query.where(SearchRow.owner_id == owner_id)
    if status is not None:
        query = query.where(SearchRow.status == SearchStatus(status).value)

    def page(s: Session) -> tuple[list[SearchRecord], int]:
        total = s.scalar(select(func.count()).select_from(query.subquery())) or 0
        rows = s.scalars(query.order_by(SearchRow.created_at.desc(), SearchRow.id).offset(offset).limit(limit))
        return [SearchRecord.of(r) for r in rows], int(total)

    return read(ensure_schema(url), page)


def mark_running(url: str, search_id: str, worker: str) -> bool:
    """Claim a search for a driver. False (do nothing) when it is final or its cancel was requested.
    A redelivered message for a running search is claimed again: that is a resume after a lost worker."""
    with session_scope(ensure_schema(url)) as s:
        row = _owned(s, search_id, None, lock=True)
        if SearchStatus(row.status).is_final() or row.cancel_requested:
            return False
        now = utcnow()
        row.status, row.worker, row.updated_at = SearchStatus.running.value, worker, now
        row.started_at = row.started_at or now
        row.attempts += 1
        row.message = "running" if row.attempts == 1 else f"running (attempt {row.attempts})"
        return True


def update_progress(url: str, search_id: str, *, finished: int, budget_trials: int | None, running: int,
                    elapsed_seconds: float, best_value: float | None, best_trial: int | None, message: str) -> None:
    """Ignored once the search is final, so a late report cannot overwrite the final snapshot."""
    with session_scope(ensure_schema(url)) as s:
        row = _owned(s, search_id, None)
        if SearchStatus(row.status).is_final():
            return
        row.finished, row.budget_trials, row.running = finished, budget_trials, running
        row.elapsed_seconds, row.best_value, row.best_trial = elapsed_seconds, best_value, best_trial
        row.message, row.updated_at = message, utcnow()


def touch_search(url: str, search_id: str) -> None:
    """A running driver's heartbeat: ``updated_at`` moves while it waits, so ``nas doctor`` can tell it is alive."""
    with session_scope(ensure_schema(url)) as s:
        row = _owned(s, search_id, None)
        if row.status == SearchStatus.running.value:
            row.updated_at = utcnow()


def mark_finished(url: str, search_id: str, status: SearchStatus, *, result: dict[str, Any] | None = None,
                  error: str | None = None) -> None:
    """``result`` is what ``nas.search.write_outputs`` returned; it is stored as JSON."""
    status = SearchStatus(status)
    if not status.is_final():
        raise ValueError(f"mark_finished needs a final status, got {status}")
    with session_scope(ensure_schema(url)) as s:
        row = _owned(s, search_id, None, lock=True)
        now = utcnow()
        row.status, row.result, row.error = status.value, json_safe(result), error
        row.running, row.finished_at, row.updated_at, row.message = 0, now, now, status.value


def cancel_requested(url: str, search_id: str) -> bool:
    with session_scope(ensure_schema(url)) as s:
        row = _owned(s, search_id, None)
        return bool(row.cancel_requested) or row.status == SearchStatus.cancelled.value


def request_cancel(url: str, search_id: str, owner_id: str | None) -> SearchRecord:
    """Queued: cancelled at once (the worker will refuse it). Running: flag it; the driver stops between
    trials and marks it cancelled. Final: ``ConflictError``."""
    with session_scope(ensure_schema(url)) as s:
        row = _owned(s, search_id, owner_id, lock=True)
        status, now = SearchStatus(row.status), utcnow()
        if status.is_final():
            raise ConflictError(f"search {search_id} is already {status.value}; only queued or running "
                                "searches can be cancelled")
        row.cancel_requested, row.updated_at = True, now
        if status is SearchStatus.queued:
            row.status, row.finished_at, row.message = SearchStatus.cancelled.value, now, "cancelled before it started"
        else:
            row.message = "cancel requested"
        return SearchRecord.of(row)


def _owned(s: Session, search_id: str, owner_id: str | None, *, lock: bool = False) -> SearchRow:
    return visible(SearchRow.find(s, search_id, lock=lock), search_id, owner_id)


class _Owned(Protocol):
    @property
    def owner_id(self) -> str | None: ...


_Found = TypeVar("_Found", bound=_Owned)


def visible(row: _Found | None, search_id: str, owner_id: str | None) -> _Found:
    """The row, or 'not found' when it is missing or belongs to another owner (``owner_id`` None: anyone's)."""
    if row is None or (owner_id is not None and row.owner_id != owner_id):
        raise NotFoundError("search", search_id)
    return row


# -- devices -----------------------------------------------------------------------------------------------

def register_device(url: str, profile: str, fingerprint: str, hostname: str, info: dict[str, Any]) -> None:
    """Upsert by (profile, hostname) and set ``last_seen``; a worker calls this as its heartbeat."""
    for attempt in range(2):
        try:
            with session_scope(ensure_schema(url)) as s:
                row, now = DeviceRow.find(s, profile, hostname), utcnow()
                if row is None:
                    s.add(DeviceRow(profile=profile, hostname=hostname, fingerprint=fingerprint, info=info,
                                    first_seen=now, last_seen=now))
                else:
                    row.fingerprint, row.info, row.last_seen = fingerprint, info, now
            return
        except IntegrityError:  # two first heartbeats raced on the insert; the second one updates
            if attempt:
                raise


def live_devices(url: str, ttl_seconds: float) -> list[DeviceRecord]:
    """Registrations seen within ``ttl_seconds``, by profile then host."""
    cutoff = utcnow() - timedelta(seconds=ttl_seconds)
    with session_scope(ensure_schema(url)) as s:
        rows = s.scalars(select(DeviceRow).where(DeviceRow.last_seen >= cutoff)
                         .order_by(DeviceRow.profile, DeviceRow.hostname))
        return [DeviceRecord.of(r) for r in rows]


# -- API tokens --------------------------------------------------------------------------------------------

TOKEN_PREFIX = "nas_"


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(url: str, name: str, *, admin: bool = False) -> tuple[TokenRecord, str]:
    """Returns the record and the token itself; only its sha256 is stored, so it is shown once.
    256 random bits make a salt and a slow hash unnecessary. ``admin``: it may open the dashboard."""
    if not 1 <= len(name) <= 100:
        raise NASError("a token name must be 1 to 100 characters")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with session_scope(ensure_schema(url)) as s:
        if TokenRow.by_name(s, name) is not None:
            raise ConflictError(f"a token named {name!r} already exists")
        row = TokenRow(id=uuid.uuid4().hex, name=name, token_hash=token_digest(token), prefix=token[:8],
                       admin=admin, created_at=utcnow())
        s.add(row)
        s.flush()
        return TokenRecord.of(row), token


def authenticate(url: str, token: str) -> TokenRecord | None:
    """The token's record, or None for an unknown token."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    digest = token_digest(token)
    row = read(ensure_schema(url),  # every request: one round trip, no ORM
               lambda s: s.execute(select(*TokenRow.__table__.c).where(TokenRow.token_hash == digest)).first())
    return token_matching(row, digest)


def token_matching(row: TokenRow | Row[Any] | None, digest: str) -> TokenRecord | None:
    """The record of the row found by ``digest``, compared in constant time, or None."""
    if row is None or not hmac.compare_digest(row.token_hash, digest):
        return None
    return TokenRecord.of(row)


def list_tokens(url: str) -> list[TokenRecord]:
    with session_scope(ensure_schema(url)) as s:
        return [TokenRecord.of(r) for r in s.scalars(select(TokenRow).order_by(TokenRow.created_at))]


def revoke_token(url: str, name: str) -> None:
    """The token stops working at once; its searches stay (owned by an id nobody holds any more)."""
    with session_scope(ensure_schema(url)) as s:
        row = TokenRow.by_name(s, name)
        if row is None:
            raise NotFoundError("token", name)
        s.delete(row)


def ping_database(url: str) -> None:
    """Raise if the database cannot answer a trivial query (``GET /health``)."""
    with session_scope(url) as s:
        s.execute(text("SELECT 1"))
