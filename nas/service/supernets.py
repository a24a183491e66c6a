"""Every read and write of service-trained supernets (``POST /supernets``): rows of ``nas_supernets``.

The life cycle is a search's: queued -> running -> succeeded | failed | cancelled, one trainer at a time
through a lease (``claim_supernet``; ``attempts`` is the fencing token), so a redelivered message never
trains the same supernet twice at once and a dead worker's supernet is taken over and resumed from its
last checkpoint. Checkpoint and final file are artifacts (``nas.service.artifacts``) in the scope
``supernet-<id>``. Torch-free, so the API can import it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, fields
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from nas.errors import ConflictError, LeaseLost, NotFoundError
from nas.service._models import SupernetRow, utcnow
from nas.service.migrate import ensure_schema
from nas.service.store import SearchStatus, _utc_or_none, json_safe
from nas.storage import read, session_scope

if TYPE_CHECKING:
    from nas.supernet import SupernetSpec

SupernetStatus = SearchStatus  # the same five states and the same meaning of "final"
CHECKPOINT, SUPERNET_FILE = "checkpoint.pt", "supernet.pt"


def artifact_scope(supernet_id: str) -> str:
    """Where a supernet's files live in ``nas_artifacts`` (its "study name")."""
    return f"supernet-{supernet_id}"


@dataclass(frozen=True)
class SupernetRecord:
    id: str
    owner_id: str | None
    name: str
    spec: dict[str, Any]
    fingerprint: str
    status: SearchStatus
    progress: dict[str, Any]
    message: str
    summary: dict[str, Any] | None
    error: str | None
    worker: str | None
    attempts: int
    cancel_requested: bool
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @classmethod
    def of(cls, row: SupernetRow) -> SupernetRecord:
        values = {f.name: getattr(row, f.name) for f in fields(cls)}
        values["status"] = SearchStatus(row.status)
        for key in ("created_at", "updated_at", "started_at", "finished_at"):
            values[key] = _utc_or_none(values[key])
        return cls(**values)


@dataclass(frozen=True)
class SupernetClaim:
    """``token`` when granted (the fencing token); else why not and, while another trainer's lease is
    live, how long it has left (None: final or cancelled, nobody trains it again)."""

    token: int | None
    reason: str = ""
    held_for: float | None = None


def create_supernet(url: str, spec: SupernetSpec, owner_id: str | None) -> SupernetRecord:
    """``ConflictError`` if the name is taken (names are unique in the service: searches name them)."""
    now = utcnow()
    row = SupernetRow(id=uuid.uuid4().hex, owner_id=owner_id, name=spec.name, spec=spec.model_dump(mode="json"),
                      fingerprint=spec.fingerprint, status=SearchStatus.queued.value, progress={"phase": "queued"},
                      message="queued", summary=None, error=None, worker=None, attempts=0, cancel_requested=False,
                      created_at=now, updated_at=now, started_at=None, finished_at=None)
    taken = ConflictError(f"a supernet named {spec.name!r} already exists; choose another name")
    try:
        with session_scope(ensure_schema(url)) as s:
            if s.scalar(select(SupernetRow.id).where(SupernetRow.name == spec.name)) is not None:
                raise taken
            s.add(row)
            s.flush()
            return SupernetRecord.of(row)
    except IntegrityError:  # two submissions raced on the name: the unique constraint decided
        raise taken from None


def get_supernet(url: str, key: str, owner_id: str | None = None) -> SupernetRecord:
    """By id or name; another owner's supernet is 'not found' (``owner_id`` None: anyone's)."""
    return read(ensure_schema(url), lambda s: SupernetRecord.of(_owned(s, key, owner_id)))


def find_named(url: str, name: str) -> SupernetRecord | None:
    """The supernet called ``name``, any owner's (searches address supernets by name), or None."""
    return read(ensure_schema(url), lambda s: _record_or_none(
        s.scalars(select(SupernetRow).where(SupernetRow.name == name)).first()))


def supernet_warnings(url: str, name: str) -> list[str]:
    """What a search naming supernet ``name`` should know at submission: trials fail unless it is trained
    by then (here, or in a train worker's own NAS_HOME/supernets)."""
    record = find_named(url, name)
    if record is None:
        return [f"proxy.supernet: the service has no supernet named {name!r} (POST /supernets); trials fail "
                "unless every train worker has one of that name in its NAS_HOME/supernets"]
    if record.status is not SearchStatus.succeeded:
        return [f"proxy.supernet: supernet {name!r} is {record.status.value}; trials fail unless it has "
                "succeeded by the time they run"]
    return []


def list_supernets(url: str, owner_id: str | None, offset: int = 0, limit: int = 50
                   ) -> tuple[list[SupernetRecord], int]:
    query = select(SupernetRow)
    if owner_id is not None:
        query = query.where(SupernetRow.owner_id == owner_id)

    def page(s: Session) -> tuple[list[SupernetRecord], int]:
        total = s.scalar(select(func.count()).select_from(query.subquery())) or 0
        rows = s.scalars(query.order_by(SupernetRow.created_at.desc(), SupernetRow.id).offset(offset).limit(limit))
        return [SupernetRecord.of(r) for r in rows], int(total)

    return read(ensure_schema(url), page)


def claim_supernet(url: str, supernet_id: str, worker: str, lease_seconds: float, *,
                   resuming: int | None = None) -> SupernetClaim:
    """Take the trainer's lease (see ``nas.service.claim_search``, whose rules these are)."""
    with session_scope(ensure_schema(url)) as s:
        row = _owned(s, supernet_id, None, lock=True)
        status, now = SearchStatus(row.status), utcnow()
        if status.is_final():
            return SupernetClaim(None, f"supernet {row.name} is {status.value}")
        age = (now - _utc_or_none(row.updated_at)).total_seconds()  # type: ignore[operator]
        live = status is SearchStatus.running and age < lease_seconds and resuming != row.attempts
        if row.cancel_requested and not live:
            _finish(row, SearchStatus.cancelled, error="cancelled by its owner")
            return SupernetClaim(None, f"supernet {row.name} is cancelled")
        if live:
            return SupernetClaim(None, f"supernet {row.name} is trained by {row.worker} (attempt {row.attempts})",
                                 held_for=lease_seconds - age)
        row.status, row.worker, row.updated_at = SearchStatus.running.value, worker, now
        row.started_at = row.started_at or now
        row.attempts += 1
        row.message = "starting" if row.attempts == 1 else f"resuming (attempt {row.attempts})"
        return SupernetClaim(row.attempts)


def touch_supernet(url: str, supernet_id: str, token: int) -> None:
    """Lease renewal; ``LeaseLost`` once another trainer claimed it."""
    with session_scope(ensure_schema(url)) as s:
        row = _owned(s, supernet_id, None)
        if row.status == SearchStatus.running.value:
            _fenced(row, token)
            row.updated_at = utcnow()


def update_supernet_progress(url: str, supernet_id: str, token: int, progress: dict[str, Any], message: str
                             ) -> bool:
    """Store progress (renews the lease); returns whether a cancel was requested."""
    with session_scope(ensure_schema(url)) as s:
        row = _owned(s, supernet_id, None)
        if SearchStatus(row.status).is_final():
            return True
        _fenced(row, token)
        row.progress, row.message, row.updated_at = json_safe(progress), message, utcnow()
        return bool(row.cancel_requested)


def finish_supernet(url: str, supernet_id: str, status: SearchStatus, *, token: int | None,
                    summary: dict[str, Any] | None = None, error: str | None = None) -> None:
    with session_scope(ensure_schema(url)) as s:
        row = _owned(s, supernet_id, None, lock=True)
        if token is not None:
            _fenced(row, token)
        _finish(row, status, summary=summary, error=error)


def request_supernet_cancel(url: str, key: str, owner_id: str | None) -> SupernetRecord:
    """Queued: cancelled at once. Running: flagged; the trainer stops at its next progress report (within
    a training step) and keeps the last epoch's checkpoint. Final: ``ConflictError``."""
    with session_scope(ensure_schema(url)) as s:
        row = _owned(s, key, owner_id, lock=True)
        status = SearchStatus(row.status)
        if status.is_final():
            raise ConflictError(f"supernet {row.name} is already {status.value}; only queued or running "
                                "supernets can be cancelled")
        row.cancel_requested, row.updated_at = True, utcnow()
        if status is SearchStatus.queued:
            _finish(row, SearchStatus.cancelled, error="cancelled before it started")
        else:
            row.message = "cancel requested"
        return SupernetRecord.of(row)


def _finish(row: SupernetRow, status: SearchStatus, *, summary: dict[str, Any] | None = None,
            error: str | None = None) -> None:
    now = utcnow()
    row.status, row.error, row.finished_at, row.updated_at = status.value, error, now, now
    row.message = status.value
    if summary is not None:
        row.summary = json_safe(summary)


def _fenced(row: SupernetRow, token: int) -> None:
    if row.attempts != token:
        raise LeaseLost(f"supernet {row.name} was taken over by {row.worker} (attempt {row.attempts}); "
                        f"this trainer (attempt {token}) stops")


def _owned(s: Session, key: str, owner_id: str | None, *, lock: bool = False) -> SupernetRow:
    row = SupernetRow.find(s, key, lock=lock)
    if row is None or (owner_id is not None and row.owner_id != owner_id):
        raise NotFoundError("supernet", key)
    return row


def _record_or_none(row: SupernetRow | None) -> SupernetRecord | None:
    return None if row is None else SupernetRecord.of(row)
