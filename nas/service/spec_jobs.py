"""The life cycle of a leased job submitted as a spec (a supernet, a training), over its table's rows.

queued -> running -> succeeded | failed | cancelled, one worker at a time through a lease (``claim``;
``attempts`` is the fencing token), so a redelivered message never runs the same job twice at once and a
dead worker's job is taken over and resumed from its last checkpoint. One ``SpecJobs`` per table; the
supernet and training stores are thin names over it. Torch-free, so the API can import it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, Generic, TypeVar, cast

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from nas.errors import ConflictError, LeaseLost, NotFoundError
from nas.service._models import SpecJob, utcnow
from nas.service.migrate import ensure_schema
from nas.service.store import SearchStatus, _utc_or_none, json_safe
from nas.storage import read, session_scope

Row = TypeVar("Row", bound=SpecJob)


@dataclass(frozen=True)
class JobRecord:
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
    def of(cls, row: SpecJob) -> JobRecord:
        values = {f.name: getattr(row, f.name) for f in fields(cls)}
        values["status"] = SearchStatus(row.status)
        for key in ("created_at", "updated_at", "started_at", "finished_at"):
            values[key] = _utc_or_none(values[key])
        return cls(**values)


@dataclass(frozen=True)
class JobClaim:
    """``token`` when granted (the fencing token); else why not and, while another worker's lease is
    live, how long it has left (None: final or cancelled, nobody runs it again)."""

    token: int | None
    reason: str = ""
    held_for: float | None = None


class SpecJobs(Generic[Row]):
    """Reads and writes of one table of spec jobs; ``noun`` names a row in messages ("supernet", "training")."""

    def __init__(self, row: type[Row], noun: str) -> None:
        self.row, self.noun = row, noun

    def create(self, url: str, name: str, spec: dict[str, Any], fingerprint: str, owner_id: str | None,
               check: Any = None) -> JobRecord:
        """A queued row; ``check(session)`` runs first in the same transaction (e.g. a taken name)."""
        now = utcnow()
        row = cast(Any, self.row)(id=uuid.uuid4().hex, owner_id=owner_id, name=name, spec=spec, fingerprint=fingerprint,
                       status=SearchStatus.queued.value, progress={"phase": "queued"}, message="queued",
                       summary=None, error=None, worker=None, attempts=0, cancel_requested=False, created_at=now,
                       updated_at=now, started_at=None, finished_at=None)
        with session_scope(ensure_schema(url)) as s:
            if check is not None:
                check(s)
            s.add(row)
            s.flush()
            return JobRecord.of(row)

    def get(self, url: str, key: str, owner_id: str | None = None) -> JobRecord:
        """By id or name; another owner's row is 'not found' (``owner_id`` None: anyone's)."""
        return read(ensure_schema(url), lambda s: JobRecord.of(self._owned(s, key, owner_id)))

    def list(self, url: str, owner_id: str | None, offset: int = 0, limit: int = 50,
             status: SearchStatus | None = None) -> tuple[list[JobRecord], int]:
        query = select(self.row)
        if owner_id is not None:
            query = query.where(self.row.owner_id == owner_id)
        if status is not None:
            query = query.where(self.row.status == status.value)

        def page(s: Session) -> tuple[list[JobRecord], int]:
            total = s.scalar(select(func.count()).select_from(query.subquery())) or 0
            rows = s.scalars(query.order_by(self.row.created_at.desc(), self.row.id).offset(offset).limit(limit))
            return [JobRecord.of(r) for r in rows], int(total)

        return read(ensure_schema(url), page)

    def claim(self, url: str, job_id: str, worker: str, lease_seconds: float, *,
              resuming: int | None = None) -> JobClaim:
        """Take the worker's lease (see ``nas.service.claim_search``, whose rules these are)."""
        with session_scope(ensure_schema(url)) as s:
            row = self._owned(s, job_id, None, lock=True)
            status, now = SearchStatus(row.status), utcnow()
            if status.is_final():
                return JobClaim(None, f"{self.noun} {row.name} is {status.value}")
            age = (now - _utc_or_none(row.updated_at)).total_seconds()  # type: ignore[operator]
            live = status is SearchStatus.running and age < lease_seconds and resuming != row.attempts
            if row.cancel_requested and not live:
                _finish(row, SearchStatus.cancelled, error="cancelled by its owner")
                return JobClaim(None, f"{self.noun} {row.name} is cancelled")
            if live:
                return JobClaim(None, f"{self.noun} {row.name} is run by {row.worker} (attempt {row.attempts})",
                                held_for=lease_seconds - age)
            row.status, row.worker, row.updated_at = SearchStatus.running.value, worker, now
            row.started_at = row.started_at or now
            row.attempts += 1
            row.message = "starting" if row.attempts == 1 else f"resuming (attempt {row.attempts})"
            return JobClaim(row.attempts)

    def touch(self, url: str, job_id: str, token: int) -> None:
        """Lease renewal; ``LeaseLost`` once another worker claimed it."""
        with session_scope(ensure_schema(url)) as s:
            row = self._owned(s, job_id, None)
            if row.status == SearchStatus.running.value:
                self._fenced(row, token)
                row.updated_at = utcnow()

    def update_progress(self, url: str, job_id: str, token: int, progress: dict[str, Any], message: str) -> bool:
        """Store progress (renews the lease); returns whether a cancel was requested."""
        with session_scope(ensure_schema(url)) as s:
            row = self._owned(s, job_id, None)
            if SearchStatus(row.status).is_final():
                return True
            self._fenced(row, token)
            row.progress, row.message, row.updated_at = json_safe(progress), message, utcnow()
            return bool(row.cancel_requested)

    def finish(self, url: str, job_id: str, status: SearchStatus, *, token: int | None,
               summary: dict[str, Any] | None = None, error: str | None = None) -> None:
        with session_scope(ensure_schema(url)) as s:
            row = self._owned(s, job_id, None, lock=True)
            if token is not None:
                self._fenced(row, token)
            _finish(row, status, summary=summary, error=error)

    def request_cancel(self, url: str, key: str, owner_id: str | None) -> JobRecord:
        """Queued: cancelled at once. Running: flagged; the worker stops at its next progress report (within
        a training step) and keeps the last epoch's checkpoint. Final: ``ConflictError``."""
        with session_scope(ensure_schema(url)) as s:
            row = self._owned(s, key, owner_id, lock=True)
            status = SearchStatus(row.status)
            if status.is_final():
                raise ConflictError(f"{self.noun} {row.name} is already {status.value}; only queued or running "
                                    f"{self.noun}s can be cancelled")
            row.cancel_requested, row.updated_at = True, utcnow()
            if status is SearchStatus.queued:
                _finish(row, SearchStatus.cancelled, error="cancelled before it started")
            else:
                row.message = "cancel requested"
            return JobRecord.of(row)

    def _fenced(self, row: SpecJob, token: int) -> None:
        if row.attempts != token:
            raise LeaseLost(f"{self.noun} {row.name} was taken over by {row.worker} (attempt {row.attempts}); "
                            f"this worker (attempt {token}) stops")

    def _owned(self, s: Session, key: str, owner_id: str | None, *, lock: bool = False) -> Row:
        row = self.row.find(s, key, lock=lock, owner_id=owner_id)
        if row is None or (owner_id is not None and row.owner_id != owner_id):
            raise NotFoundError(self.noun, key)
        return row  # type: ignore[no-any-return]


def _finish(row: SpecJob, status: SearchStatus, *, summary: dict[str, Any] | None = None,
            error: str | None = None) -> None:
    now = utcnow()
    row.status, row.error, row.finished_at, row.updated_at = status.value, error, now, now
    row.message = status.value
    if summary is not None:
        row.summary = json_safe(summary)
