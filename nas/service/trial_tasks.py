"""A distributed trial's tasks, as recorded on the trial itself (Optuna user attributes).

The Celery executor writes, before sending, what it sends (``task``: both payloads and when), and the
tasks write their outcomes (``outcome.train`` / ``outcome.latency`` / ``outcome.error``). So anyone with
the database alone (``nas doctor``) can tell a trial whose outcome never came and send its tasks again.
Lives in the library (torch-free) because ``workers/`` writes it and ``nas doctor`` reads it.
"""

from __future__ import annotations

from typing import Any

TRAIN_KEY, LATENCY_KEY, ERROR_KEY = "outcome.train", "outcome.latency", "outcome.error"
TASK_KEY = "task"


def task_ids(study_name: str, trial_id: int) -> tuple[str, str]:
    """Celery task ids of a trial's training and latency tasks: one id per trial, so resends are duplicates."""
    key = f"{study_name}-{trial_id}"
    return f"train-{key}", f"latency-{key}"


def task_record(train: dict[str, Any], latency: dict[str, Any], sent_at: float) -> dict[str, Any]:
    """What was sent, without the database URL (it can hold a password; a resend supplies its own)."""
    latency = dict(latency)
    if latency.get("trial"):
        latency["trial"] = {k: v for k, v in latency["trial"].items() if k != "storage_url"}
    return {"train": {k: v for k, v in train.items() if k != "storage_url"}, "latency": latency,
            "sent_at": sent_at}


def task_payloads(record: dict[str, Any], storage_url: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The train and latency payloads of a ``task_record``, pointing at ``storage_url``."""
    latency = dict(record["latency"])
    if latency.get("trial"):
        latency["trial"] = {**latency["trial"], "storage_url": storage_url}
    return {**record["train"], "storage_url": storage_url}, latency


def missing_outcomes(attrs: dict[str, Any]) -> list[str]:
    """Which of "train" and "latency" have no outcome yet; none once an error is recorded (the trial is done)."""
    if ERROR_KEY in attrs:
        return []
    return [name for name, key in (("train", TRAIN_KEY), ("latency", LATENCY_KEY)) if key not in attrs]
