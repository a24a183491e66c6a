"""The ``train`` queue's supernet work (``POST /supernets``): train a stored supernet under its lease
(``workers.spec_job_runner``), resuming from the last checkpoint in the database, keep its row current,
store the checkpoint every epoch and the file at the end."""

from __future__ import annotations

import logging
import math
import shutil
import time
from typing import Any

from nas.errors import LeaseLost, NASError
from nas.settings import get_settings
from workers.spec_job_runner import PROGRESS_EVERY, Cancelled, restore, run_leased
from workers.spec_job_runner import fail as fail_job

log = logging.getLogger(__name__)


def train(supernet_id: str, worker: str, resuming: int | None = None) -> str:
    from nas.service.supernets import SUPERNETS

    return run_leased(SUPERNETS, supernet_id, worker, resuming, _train)


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
    stored = restore(url, scope, work, CHECKPOINT)
    resumed = None if stored is None else int(stored["state"]["step"])
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
    from nas.service.supernets import SUPERNETS

    fail_job(SUPERNETS, supernet_id, error, token)
