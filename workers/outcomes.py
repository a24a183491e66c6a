"""Task outcomes live in the study's database (trial user attributes), not in Celery's result backend.

A task writes ``outcome.train`` / ``outcome.latency`` (or ``outcome.error``) on its trial; the driver
polls for them. So a result survives the driver, Redis or the worker dying, and a redelivered duplicate
task sees the outcome already stored and does nothing (idempotent by trial id).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from nas.service.trial_tasks import ERROR_KEY, LATENCY_KEY, TASK_KEY, TRAIN_KEY

__all__ = ["ERROR_KEY", "LATENCY_KEY", "TRAIN_KEY", "read", "read_study", "record_task", "write", "write_study"]


@lru_cache(maxsize=8)
def _storage(url: str) -> Any:
    from nas.search._study import rdb_storage

    return rdb_storage(url)


def read(url: str, trial_id: int) -> dict[str, Any]:
    """The trial's user attributes and state name."""
    trial = _storage(url).get_trial(trial_id)
    return {"state": trial.state.name, **trial.user_attrs}


def write(url: str, trial_id: int, key: str, value: Any) -> bool:
    """Store an outcome unless the trial already has one or is no longer running; returns whether it did."""
    storage = _storage(url)
    trial = storage.get_trial(trial_id)
    if key in trial.user_attrs or trial.state.name != "RUNNING":
        return False
    storage.set_trial_user_attr(trial_id, key, value)
    return True


def record_task(url: str, trial_id: int, record: dict[str, Any]) -> None:
    """Note what was sent for a trial (``nas.service.trial_tasks.task_record``) so it can be sent again."""
    _storage(url).set_trial_user_attr(trial_id, TASK_KEY, record)


def read_study(url: str, study_name: str) -> dict[str, Any]:
    """A study's user attributes: where a latency without a trial (T's reference) is written."""
    storage = _storage(url)
    return dict(storage.get_study_user_attrs(storage.get_study_id_from_name(study_name)))


def write_study(url: str, study_name: str, key: str, value: Any) -> bool:
    """Store ``value`` under ``key`` on the study unless it is already there; returns whether it did."""
    storage = _storage(url)
    study_id = storage.get_study_id_from_name(study_name)
    if key in storage.get_study_user_attrs(study_id):
        return False
    storage.set_study_user_attr(study_id, key, value)
    return True
