"""Running a leased spec job (a supernet's or a network's training) on a ``train`` worker.

The database is the only state that survives a worker: the local folder is scratch, emptied at every
start. So a worker killed at any point costs at most the epoch in progress; the next delivery of the
message (Celery's late ack) claims the expired lease and resumes from the last uploaded checkpoint, on any
machine. One worker at a time: the lease is renewed from a thread and every write carries its token.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nas.errors import LeaseLost, NotFoundError
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


def fail(jobs: SpecJobs[Any], job_id: str, error: str, token: int | None = None) -> None:
    from nas.service.store import SearchStatus

    jobs.finish(get_settings().resolved_database_url(), job_id, SearchStatus.failed, token=token, error=error)
