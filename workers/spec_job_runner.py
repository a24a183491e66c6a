"""Running a leased spec job (a supernet's or a network's training) on a ``train`` worker.

The database is the only state that survives a worker: the local folder is scratch, emptied at every
start. So a worker killed at any point costs at most the epoch in progress; the next delivery of the
message (Celery's late ack) claims the expired lease and resumes from the last uploaded checkpoint, on any
machine. One worker at a time: the lease is renewed from a thread and every write carries its token.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nas.errors import LeaseLost, NASError, NotFoundError
from nas.settings import get_settings
from workers.driver import DriverFailed, Standby

if TYPE_CHECKING:
    from nas.service.spec_jobs import SpecJobs

log = logging.getLogger(__name__)

PROGRESS_EVERY = 1.0  # seconds between progress writes (each also looks for a cancel request)
Body = Callable[[str, str, int, Any], str]  # (database url, job id, lease token, lease keeper) -> outcome


class Cancelled(Exception):  # noqa: N818 - a signal out of the training loop, not an error
    pass


def run_leased(jobs: SpecJobs[Any], job_id: str, worker: str, resuming: int | None, body: Body) -> str:
    """Claim the job's lease and run ``body`` under it; ``Standby`` while another worker's lease is live."""
    from workers.liveness import LeaseKeeper

    settings = get_settings()
    url = settings.resolved_database_url()
    claim = jobs.claim(url, job_id, worker, settings.driver_lease, resuming=resuming)
    if claim.token is None:
        log.info("%s: not running it", claim.reason)
        if claim.held_for is not None:
            raise Standby(claim.held_for + 1.0, claim.reason)
        return "ignored"
    lease = LeaseKeeper(url, job_id, claim.token, settings.driver_lease / 4, touch=jobs.touch).start()
    try:
        return body(url, job_id, claim.token, lease)
    except LeaseLost as exc:
        log.warning("%s %s: %s", jobs.noun, job_id, exc)
        return "lease lost"
    except Exception as exc:
        raise DriverFailed(claim.token) from exc
    finally:
        lease.stop()


def restore(url: str, scope: str, work: Path, name: str) -> dict[str, Any] | None:
    """Empty the scratch folder and put the stored checkpoint ``name`` in it; its contents, or None."""
    import torch

    from nas.service.artifacts import read_artifact

    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        content = read_artifact(url, scope, name)
    except NotFoundError:
        return None
    (work / name).write_bytes(content)
    return dict(torch.load(work / name, map_location="cpu", weights_only=True))


@dataclass
class Attempt:
    """One worker's run of a job under its lease: progress written at most every ``PROGRESS_EVERY`` seconds
    (and at each epoch's end, after which the epoch's checkpoint is uploaded), each write also looking for
    a cancel request; the training's outcome recorded on the row."""

    jobs: SpecJobs[Any]
    url: str
    job_id: str
    token: int
    lease: Any
    scope: str
    work: Path
    checkpoint: str
    resumed: int | None
    started: float = field(default_factory=time.monotonic)
    last: float = 0.0

    def write(self, progress: dict[str, Any], message: str) -> bool:
        """Store progress (with ``resumed_from_step``); whether a cancel was requested."""
        return self.jobs.update_progress(self.url, self.job_id, self.token,
                                         {"resumed_from_step": self.resumed, **progress}, message)

    def report(self, progress: dict[str, Any], message: str, *, epoch_end: bool) -> None:
        """From the training loop: ``Cancelled`` once a cancel was requested, ``LeaseLost`` once taken over."""
        self.lease.check()
        now = time.monotonic()
        if not epoch_end and now - self.last < PROGRESS_EVERY:
            return
        self.last = now
        if self.write({**progress, "elapsed_seconds": round(now - self.started, 1)}, message):
            raise Cancelled
        if epoch_end:  # the trainer wrote the epoch's checkpoint just before this call
            from nas.service.artifacts import put_file

            put_file(self.url, self.scope, self.checkpoint, self.work / self.checkpoint)

    def train(self, run: Callable[[], dict[str, Any]]) -> dict[str, Any] | str:
        """``run()``'s summary, or the outcome ("cancelled", "failed") already recorded on the row."""
        from nas.service.store import SearchStatus

        try:
            return run()
        except Cancelled:
            kept = " (the last epoch's checkpoint is kept)" if (self.work / self.checkpoint).is_file() else ""
            self.jobs.finish(self.url, self.job_id, SearchStatus.cancelled, token=self.token,
                             error=f"cancelled by its owner{kept}")
            return "cancelled"
        except NASError as exc:
            if isinstance(exc, LeaseLost):
                raise
            log.warning("%s %s failed: %s", self.jobs.noun, self.job_id, exc)
            self.jobs.finish(self.url, self.job_id, SearchStatus.failed, token=self.token, error=str(exc))
            return "failed"

    def succeeded(self, files: list[Path], summary: dict[str, Any]) -> str:
        """Upload ``files`` as artifacts, record the summary, empty the scratch folder."""
        from nas.service.artifacts import put_file
        from nas.service.store import SearchStatus

        self.lease.check()
        for path in files:
            put_file(self.url, self.scope, path.name, path)
        self.jobs.finish(self.url, self.job_id, SearchStatus.succeeded, token=self.token,
                         summary={**summary, "resumed_from_step": self.resumed, "attempt": self.token})
        shutil.rmtree(self.work, ignore_errors=True)
        return "succeeded"


def fail(jobs: SpecJobs[Any], job_id: str, error: str, token: int | None = None) -> None:
    from nas.service.store import SearchStatus

    jobs.finish(get_settings().resolved_database_url(), job_id, SearchStatus.failed, token=token, error=error)
