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


@dataclass(frozen=True)
class Claim:
    """A driver's claim on a search. ``token`` is the fencing token (the search's ``attempts`` after the
    claim) when granted; otherwise ``reason`` says why not, and ``held_for`` is how long the live lease of
    another driver has left (None: the search is final or cancelled, nobody will ever drive it again)."""

    token: int | None
    reason: str = ""
    held_for: float | None = None
    cancelled_now: bool = False
    """This claim found a cancel that no live driver will ever act on and marked the search cancelled: the
    claimant ends the study's running trials."""


def claim_search(url: str, search_id: str, worker: str, lease_seconds: float, *,
                 resuming: int | None = None) -> Claim:
    """Take the driver's lease on a search: one driver per search, ever.

    Refused when the search is final or its cancel was requested, and while another driver's lease is
    live (the row was written by its driver within ``lease_seconds``). ``resuming``: the token of a
    driver that failed and is retried; it may take its own lease back while nobody else claimed it. A
    lease that expired (its driver died) is taken over. Every claim increments ``attempts``, which is the
    new holder's fencing token: the old holder's next write sees a different value and stops."""
    with session_scope(ensure_schema(url)) as s:
        row = _owned(s, search_id, None, lock=True)
        status = SearchStatus(row.status)
        if status.is_final():
            return Claim(None, f"search {search_id} is {status.value}")
        now = utcnow()
        age = (now - _utc(row.updated_at)).total_seconds()
        live = status is SearchStatus.running and age < lease_seconds and resuming != row.attempts
        if row.cancel_requested and not live:  # its driver died or awaits a retry: nobody else will end it
            row.status, row.error, row.running = SearchStatus.cancelled.value, "cancelled by its owner", 0
            row.finished_at = row.updated_at = now
            row.message = SearchStatus.cancelled.value
            return Claim(None, f"search {search_id} is cancelled", cancelled_now=True)
        if row.cancel_requested:  # its live driver sees the cancel and ends the search
            return Claim(None, f"search {search_id} is cancelled")
        if live:
            return Claim(None, f"search {search_id} is driven by {row.worker} (attempt {row.attempts}, "
                               f"lease live for {lease_seconds - age:.0f} s more)", held_for=lease_seconds - age)
        row.status, row.worker, row.updated_at = SearchStatus.running.value, worker, now
        row.started_at = row.started_at or now
        row.attempts += 1
        row.message = "running" if row.attempts == 1 else f"running (attempt {row.attempts})"
        return Claim(row.attempts)


def mark_running(url: str, search_id: str, worker: str, lease_seconds: float = 0.0) -> bool:
    """``claim_search`` as a yes/no (tests and tools that set a search running by hand)."""
    return claim_search(url, search_id, worker, lease_seconds).token is not None


def _fenced(row: SearchRow, search_id: str, token: int | None) -> None:
    """Refuse a driver's write once another driver claimed the search (its token is no longer current)."""
    if token is not None and row.attempts != token:
        from nas.errors import LeaseLost

        raise LeaseLost(f"search {search_id} was taken over by {row.worker} (attempt {row.attempts}); "
                        f"this driver (attempt {token}) stops")


def update_progress(url: str, search_id: str, *, finished: int, budget_trials: int | None, running: int,
                    elapsed_seconds: float, best_value: float | None, best_trial: int | None, message: str,
                    token: int | None = None) -> None:
    """Ignored once the search is final, so a late report cannot overwrite the final snapshot. With the
    driver's ``token``: ``LeaseLost`` if another driver took the search over (and it renews the lease)."""
    with session_scope(ensure_schema(url)) as s:
        row = _owned(s, search_id, None)
        if SearchStatus(row.status).is_final():
            return
        _fenced(row, search_id, token)
        row.finished, row.budget_trials, row.running = finished, budget_trials, running
        row.elapsed_seconds, row.best_value, row.best_trial = elapsed_seconds, best_value, best_trial
        row.message, row.updated_at = message, utcnow()


def touch_search(url: str, search_id: str, token: int | None = None) -> None:
    """A running driver's heartbeat and lease renewal: ``updated_at`` moves while it waits, so ``nas doctor``
    and a second claim can tell it is alive. ``LeaseLost`` when ``token`` is no longer the search's."""
    with session_scope(ensure_schema(url)) as s:
        row = _owned(s, search_id, None)
        if row.status == SearchStatus.running.value:
            _fenced(row, search_id, token)
            row.updated_at = utcnow()


def mark_finished(url: str, search_id: str, status: SearchStatus, *, result: dict[str, Any] | None = None,
                  error: str | None = None, token: int | None = None) -> None:
    """``result`` is what ``nas.search.write_outputs`` returned; it is stored as JSON. With the driver's
    ``token``: ``LeaseLost`` (nothing written) if another driver took the search over."""
    status = SearchStatus(status)
    if not status.is_final():
        raise ValueError(f"mark_finished needs a final status, got {status}")
    with session_scope(ensure_schema(url)) as s:
        row = _owned(s, search_id, None, lock=True)
        _fenced(row, search_id, token)
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


def device_last_seen(url: str, profile: str) -> datetime | None:
    """When any worker of ``profile`` last registered (None: never), live or not."""
    with session_scope(ensure_schema(url)) as s:
        seen = s.scalar(select(func.max(DeviceRow.last_seen)).where(DeviceRow.profile == profile))
        return None if seen is None else _utc(seen)


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
    """The record of the row the database found by ``digest``, or None.

    The lookup itself is the comparison, and it is timing-safe because it compares digests: a caller
    controls the token it presents, not its sha256, so how long the index takes says nothing about how many
    characters of a real token were guessed. The check below only guards against a row of another digest."""
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
