"""The ``train`` queue's supernet work (``POST /supernets``): train a stored supernet under its lease
(``workers.spec_job_runner``), resuming from the last checkpoint in the database, keep its row current,
store the checkpoint every epoch and the file at the end."""

from __future__ import annotations

import math
from typing import Any

from nas.settings import get_settings
from workers.spec_job_runner import Attempt, restore, run_leased
from workers.spec_job_runner import fail as fail_job


def train(supernet_id: str, worker: str, resuming: int | None = None) -> str:
    from nas.service.supernets import SUPERNETS

    return run_leased(SUPERNETS, supernet_id, worker, resuming, _train)


def _train(url: str, supernet_id: str, token: int, lease: Any) -> str:
    from nas.service.supernets import CHECKPOINT, SUPERNET_FILE, SUPERNETS, artifact_scope, get_supernet
    from nas.supernet import parse_supernet_spec, train_supernet

    record = get_supernet(url, supernet_id)
    spec = parse_supernet_spec(record.spec, f"supernet {supernet_id}", local_files=False)
    scope, work = artifact_scope(supernet_id), get_settings().home / "supernet-runs" / supernet_id
    stored = restore(url, scope, work, CHECKPOINT)
    resumed = None if stored is None else int(stored["state"]["step"])
    attempt = Attempt(SUPERNETS, url, supernet_id, token, lease, scope, work, CHECKPOINT, resumed)
    attempt.write({"phase": "loading data"}, "loading data" if resumed is None else f"resuming from step {resumed}")

    def on_progress(p: Any) -> None:
        epoch_end = math.isnan(p.loss)
        evals = " ".join(f"{k} {v:.3f}" for k, v in p.last_eval.items() if k != "epoch")
        attempt.report({"phase": p.phase, "epoch": p.epoch, "epochs": p.epochs, "step": p.step,
                        "total_steps": p.total_steps, "loss": None if epoch_end else p.loss, "last_eval": p.last_eval},
                       f"epoch {p.epoch}/{p.epochs} {p.phase}, step {p.step}/{p.total_steps}"
                       + (f"; {evals}" if evals else ""), epoch_end=epoch_end)

    summary = attempt.train(lambda: train_supernet(spec, work, on_progress=on_progress))
    if isinstance(summary, str):
        return summary
    attempt.write({"phase": "saving", "epoch": spec.recipe.epochs, "epochs": spec.recipe.epochs,
                   "step": summary["steps"], "total_steps": summary["steps"]}, "saving")
    return attempt.succeeded([work / SUPERNET_FILE], summary)


def fail(supernet_id: str, error: str, token: int | None = None) -> None:
    from nas.service.supernets import SUPERNETS

    fail_job(SUPERNETS, supernet_id, error, token)
