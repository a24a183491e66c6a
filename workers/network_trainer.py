"""The ``train`` queue's network work (``POST /trainings``, what ``nas train`` does): train a stored
network under its lease (``workers.spec_job_runner``), resuming from the last epoch's checkpoint in the
database, keep its row current, store the checkpoint every epoch and, at the end, the trained weights,
ONNX, the device's file(s) with provenance and the summary. A supernet it inherits from or distils from
is the service's own, downloaded from its artifacts."""

from __future__ import annotations

import logging
import math
import shutil
import time
from pathlib import Path
from typing import Any

from nas.errors import LeaseLost, NASError, TrainingError
from nas.settings import get_settings
from workers.spec_job_runner import PROGRESS_EVERY, Cancelled, restore, run_leased
from workers.spec_job_runner import fail as fail_job

log = logging.getLogger(__name__)


def train(training_id: str, worker: str, resuming: int | None = None) -> str:
    from nas.service.trainings import TRAININGS

    return run_leased(TRAININGS, training_id, worker, resuming, _train)


def _supernet_file(url: str, name: str, work: Path) -> Path:
    """The service's succeeded supernet ``name``, downloaded into the scratch folder."""
    from nas.service.artifacts import read_artifact
    from nas.service.store import SearchStatus
    from nas.service.supernets import SUPERNET_FILE, artifact_scope, find_named

    record = find_named(url, name)
    if record is None or record.status is not SearchStatus.succeeded:
        state = "does not exist" if record is None else f"is {record.status.value}"
        raise TrainingError(f"supernet {name!r} {state}: a training inherits or distils from a succeeded one")
    path = work / "supernet" / SUPERNET_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(read_artifact(url, artifact_scope(record.id), SUPERNET_FILE))
    return path


def _train(url: str, training_id: str, token: int, lease: Any) -> str:
    from nas.service.artifacts import put_file
    from nas.service.store import SearchStatus
    from nas.service.trainings import (
        CHECKPOINT,
        artifact_scope,
        finish_training,
        get_training,
        update_training_progress,
    )
    from nas.training import parse_training_spec, train_network

    record = get_training(url, training_id)
    spec = parse_training_spec(record.spec, f"training {training_id}")
    scope, work = artifact_scope(training_id), get_settings().home / "training-runs" / training_id
    stored = restore(url, scope, work, CHECKPOINT)
    resumed = None if stored is None else int(stored["step"])
    started, last = time.monotonic(), [0.0]
    base = {"resumed_from_step": resumed}
    update_training_progress(url, training_id, token, {**base, "phase": "loading data"},
                             "loading data" if resumed is None else f"resuming from step {resumed}")

    def on_progress(p: Any) -> None:
        lease.check()
        epoch_end, now = math.isnan(p.loss), time.monotonic()
        if not epoch_end and now - last[0] < PROGRESS_EVERY:
            return
        last[0] = now
        progress = {**base, "phase": "training", "epoch": p.epoch, "epochs": p.epochs, "step": p.step,
                    "total_steps": p.total_steps, "loss": None if epoch_end else p.loss,
                    "val_accuracy": p.val_accuracy, "elapsed_seconds": round(now - started, 1)}
        accuracy = "" if p.val_accuracy is None else f"; val accuracy {p.val_accuracy:.4f}"
        message = f"epoch {p.epoch}/{p.epochs}, step {p.step}/{p.total_steps}{accuracy}"
        if update_training_progress(url, training_id, token, progress, message):  # fenced: LeaseLost if taken
            raise Cancelled
        if epoch_end:  # train_network wrote the epoch's checkpoint just before this call
            put_file(url, scope, CHECKPOINT, work / CHECKPOINT)

    try:
        supernet = _supernet_file(url, spec.supernet, work) if spec.supernet is not None else None
        summary = train_network(spec.network(), spec.job, work, device=spec.device, supernet_file=supernet,
                                on_progress=on_progress)
    except Cancelled:
        finish_training(url, training_id, SearchStatus.cancelled, token=token,
                        error="cancelled by its owner (the last epoch's checkpoint is kept)")
        return "cancelled"
    except NASError as exc:
        if isinstance(exc, LeaseLost):
            raise
        log.warning("training %s failed: %s", training_id, exc)
        finish_training(url, training_id, SearchStatus.failed, token=token, error=str(exc))
        return "failed"
    lease.check()
    update_training_progress(url, training_id, token, {**base, "phase": "saving", "epoch": spec.recipe.epochs,
                                                       "epochs": spec.recipe.epochs, "step": summary["steps"],
                                                       "total_steps": summary["steps"]}, "saving")
    files = [Path(p) for p in summary["files"].values()]
    files += [work / name for name in summary.get("deployed_files", []) if work / name not in files]
    for path in [*files, work / "summary.json"]:
        put_file(url, scope, path.name, path)
    stored_summary = {k: v for k, v in summary.items() if k not in ("files", "deployed_files")}
    stored_summary["files"] = sorted({p.name for p in files} | {"summary.json"})
    finish_training(url, training_id, SearchStatus.succeeded, token=token,
                    summary={**stored_summary, "resumed_from_step": resumed, "attempt": token})
    shutil.rmtree(work, ignore_errors=True)
    return "succeeded"


def fail(training_id: str, error: str, token: int | None = None) -> None:
    from nas.service.trainings import TRAININGS

    fail_job(TRAININGS, training_id, error, token)
