"""The ``train`` queue's network work (``POST /trainings``, what ``nas train`` does): train a stored
network under its lease (``workers.spec_job_runner``), resuming from the last epoch's checkpoint in the
database, keep its row current, store the checkpoint every epoch and, at the end, the trained weights,
ONNX, the device's file(s) with provenance and the summary. A supernet it inherits from or distils from
is the service's own, downloaded from its artifacts."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from nas.errors import TrainingError
from nas.settings import get_settings
from workers.spec_job_runner import Attempt, restore, run_leased
from workers.spec_job_runner import fail as fail_job


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
    from nas.service.trainings import CHECKPOINT, TRAININGS, artifact_scope, get_training
    from nas.training import parse_training_spec, train_network

    record = get_training(url, training_id)
    spec = parse_training_spec(record.spec, f"training {training_id}")
    scope, work = artifact_scope(training_id), get_settings().home / "training-runs" / training_id
    stored = restore(url, scope, work, CHECKPOINT)
    resumed = None if stored is None else int(stored["step"])
    attempt = Attempt(TRAININGS, url, training_id, token, lease, scope, work, CHECKPOINT, resumed)
    attempt.write({"phase": "loading data"}, "loading data" if resumed is None else f"resuming from step {resumed}")

    def on_progress(p: Any) -> None:
        epoch_end = math.isnan(p.loss)
        accuracy = "" if p.val_accuracy is None else f"; val accuracy {p.val_accuracy:.4f}"
        attempt.report({"phase": "training", "epoch": p.epoch, "epochs": p.epochs, "step": p.step,
                        "total_steps": p.total_steps, "loss": None if epoch_end else p.loss,
                        "val_accuracy": p.val_accuracy},
                       f"epoch {p.epoch}/{p.epochs}, step {p.step}/{p.total_steps}{accuracy}", epoch_end=epoch_end)

    def run() -> dict[str, Any]:
        supernet = _supernet_file(url, spec.supernet, work) if spec.supernet is not None else None
        return train_network(spec.network(), spec.job, work, device=spec.device, supernet_file=supernet,
                             on_progress=on_progress)

    summary = attempt.train(run)
    if isinstance(summary, str):
        return summary
    attempt.write({"phase": "saving", "epoch": spec.recipe.epochs, "epochs": spec.recipe.epochs,
                   "step": summary["steps"], "total_steps": summary["steps"]}, "saving")
    files = [Path(p) for p in summary["files"].values()]
    files += [work / name for name in summary.get("deployed_files", []) if work / name not in files]
    files = [*dict.fromkeys([*files, work / "summary.json"])]
    stored_summary = {k: v for k, v in summary.items() if k not in ("files", "deployed_files")}
    stored_summary = {**stored_summary, "files": sorted({p.name for p in files})}
    initial = stored_summary.get("initial_weights")
    if initial is not None:  # the worker's download of the supernet: its name says what it was
        stored_summary["initial_weights"] = {k: v for k, v in initial.items() if k != "file"}
    # The downloadable summary.json as the record has it: file names, not this worker's paths.
    (work / "summary.json").write_text(json.dumps(stored_summary, indent=2) + "\n")
    return attempt.succeeded(files, stored_summary)


def fail(training_id: str, error: str, token: int | None = None) -> None:
    from nas.service.trainings import TRAININGS

    fail_job(TRAININGS, training_id, error, token)
