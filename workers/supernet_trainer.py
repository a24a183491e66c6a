"""The ``train`` queue's supernet work: claim a stored supernet's lease, train it (resuming from the last
checkpoint in the database), keep its row current, store the checkpoint every epoch and the file at the end.

The database is the only state that survives a worker: the local folder is scratch, emptied at every
start. So a worker killed at any point costs at most the epoch in progress; the next delivery of the
message (Celery's late ack) claims the expired lease and resumes from the last uploaded checkpoint, on any
machine. One trainer at a time: the lease is renewed from a thread and every write carries its token.
"""

from __future__ import annotations

import logging
import math
import shutil
import time
from pathlib import Path
from typing import Any

from nas.errors import LeaseLost, NASError, NotFoundError
from nas.settings import get_settings
from workers.driver import DriverFailed, Standby

log = logging.getLogger(__name__)

PROGRESS_EVERY = 1.0  # seconds between progress writes (each also looks for a cancel request)


class Cancelled(Exception):  # noqa: N818 - a signal out of the training loop, not an error
    pass


def train(supernet_id: str, worker: str, resuming: int | None = None) -> str:
    from nas.service.supernets import claim_supernet, touch_supernet
    from workers.liveness import LeaseKeeper

    settings = get_settings()
    url = settings.resolved_database_url()
    claim = claim_supernet(url, supernet_id, worker, settings.driver_lease, resuming=resuming)
    if claim.token is None:
        log.info("%s: not training it", claim.reason)
        if claim.held_for is not None:
            raise Standby(claim.held_for + 1.0, claim.reason)
        return "ignored"
    lease = LeaseKeeper(url, supernet_id, claim.token, settings.driver_lease / 4, touch=touch_supernet).start()
    try:
        return _train(url, supernet_id, claim.token, lease)
    except LeaseLost as exc:
        log.warning("supernet %s: %s", supernet_id, exc)
        return "lease lost"
    except Exception as exc:
        raise DriverFailed(claim.token) from exc
    finally:
        lease.stop()


def _restore(url: str, scope: str, work: Path) -> int | None:
    """Empty the scratch folder and put the stored checkpoint in it; the step it resumes from, or None."""
    import torch

    from nas.service.artifacts import read_artifact
    from nas.service.supernets import CHECKPOINT

    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        content = read_artifact(url, scope, CHECKPOINT)
    except NotFoundError:
        return None
    (work / CHECKPOINT).write_bytes(content)
    blob = torch.load(work / CHECKPOINT, map_location="cpu", weights_only=True)
    return int(blob["state"]["step"])


def _train(url: str, supernet_id: str, token: int, lease: Any) -> str:
    from nas.service.artifacts import put_file
    from nas.service.store import SearchStatus
    from nas.service.supernets import (
        CHECKPOINT,
        SUPERNET_FILE,
        artifact_scope,
        finish_supernet,
        get_supernet,
        update_supernet_progress,
    )
    from nas.supernet import parse_supernet_spec, train_supernet

    record = get_supernet(url, supernet_id)
    spec = parse_supernet_spec(record.spec, f"supernet {supernet_id}", local_files=False)
    scope, work = artifact_scope(supernet_id), get_settings().home / "supernet-runs" / supernet_id
    resumed = _restore(url, scope, work)
    started, last = time.monotonic(), [0.0]
    base = {"resumed_from_step": resumed}
    update_supernet_progress(url, supernet_id, token, {**base, "phase": "loading data"},
                             "loading data" if resumed is None else f"resuming from step {resumed}")

    def on_progress(p: Any) -> None:
        lease.check()
        epoch_end, now = math.isnan(p.loss), time.monotonic()
        if not epoch_end and now - last[0] < PROGRESS_EVERY:
            return
        last[0] = now
        progress = {**base, "phase": p.phase, "epoch": p.epoch, "epochs": p.epochs, "step": p.step,
                    "total_steps": p.total_steps, "loss": None if epoch_end else p.loss,
                    "last_eval": p.last_eval, "elapsed_seconds": round(now - started, 1)}
        evals = " ".join(f"{k} {v:.3f}" for k, v in p.last_eval.items() if k != "epoch")
        message = f"epoch {p.epoch}/{p.epochs} {p.phase}, step {p.step}/{p.total_steps}" + (f"; {evals}" if evals
                                                                                           else "")
        if update_supernet_progress(url, supernet_id, token, progress, message):  # fenced: LeaseLost if taken
            raise Cancelled
        if epoch_end:  # train_supernet wrote the epoch's checkpoint just before this call
            put_file(url, scope, CHECKPOINT, work / CHECKPOINT)

    try:
        summary = train_supernet(spec, work, on_progress=on_progress)
    except Cancelled:
        finish_supernet(url, supernet_id, SearchStatus.cancelled, token=token,
                        error="cancelled by its owner (the last epoch's checkpoint is kept)")
        return "cancelled"
    except NASError as exc:
        if isinstance(exc, LeaseLost):
            raise
        log.warning("supernet %s failed: %s", supernet_id, exc)
        finish_supernet(url, supernet_id, SearchStatus.failed, token=token, error=str(exc))
        return "failed"
    lease.check()
    update_supernet_progress(url, supernet_id, token, {**base, "phase": "saving", "epoch": spec.recipe.epochs,
                                                       "epochs": spec.recipe.epochs, "step": summary["steps"],
                                                       "total_steps": summary["steps"]}, "saving")
    put_file(url, scope, SUPERNET_FILE, work / SUPERNET_FILE)
    finish_supernet(url, supernet_id, SearchStatus.succeeded, token=token,
                    summary={**summary, "resumed_from_step": resumed, "attempt": token})
    shutil.rmtree(work, ignore_errors=True)
    return "succeeded"


def fail(supernet_id: str, error: str, token: int | None = None) -> None:
    from nas.service.store import SearchStatus
    from nas.service.supernets import finish_supernet

    finish_supernet(get_settings().resolved_database_url(), supernet_id, SearchStatus.failed, token=token,
                    error=error)
