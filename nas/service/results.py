"""A search's trials, best architecture and Pareto front, read from its Optuna study in the same database.

Read live from the study rather than from the stored ``result``, so the answers are current while a
search runs and identical to what ``nas run`` writes when it ends (same ``best_trial``/``pareto_trials``).
A study that does not exist yet (queued search) reads as empty, never as an error.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from nas.service.store import SearchRecord, json_safe

if TYPE_CHECKING:
    import optuna

    from nas.search import SearchContext

log = logging.getLogger(__name__)


@lru_cache(maxsize=8)
def _storage(url: str) -> optuna.storages.BaseStorage:
    """Building an RDB storage checks Optuna's schema; once per process and URL is enough."""
    from nas.search._study import rdb_storage

    return rdb_storage(url)


def _study(url: str, record: SearchRecord) -> optuna.Study | None:
    import optuna

    try:
        return optuna.load_study(study_name=record.study_name, storage=_storage(url))
    except KeyError:  # optuna's "no such study": the search has not started yet
        return None


def _view(url: str, record: SearchRecord) -> SearchContext | None:
    study = _study(url, record)
    if study is None:
        return None
    from nas.search import StudyView

    return StudyView(study).as_context()


def summary(trial: optuna.trial.FrozenTrial) -> dict[str, Any]:
    from nas.search import trial_summary

    return json_safe({**trial_summary(trial), "values": trial.values, "error": trial.user_attrs.get("error"),
                      "datetime_start": _utc(trial.datetime_start), "datetime_complete": _utc(trial.datetime_complete)})


def _utc(value: datetime | None) -> datetime | None:
    """Optuna stamps trials with naive local time; the API promises RFC 3339 date-times, which carry an offset."""
    return value.astimezone(UTC) if value is not None else None


def trials_page(url: str, record: SearchRecord, offset: int = 0, limit: int = 50) -> tuple[list[dict[str, Any]], int]:
    """Trials by number; one page of summaries and the total number of trials.

    Only the page's trials are loaded (a search of thousands of trials is paged through without reading
    the whole study per request): their ids come from Optuna's ``trials`` table, part of its versioned
    schema, and each is read back through the storage as Optuna itself would."""
    from sqlalchemy import text

    from nas.storage import engine_for

    storage = _storage(url)
    try:
        study_id = storage.get_study_id_from_name(record.study_name)
    except KeyError:  # the search has not started yet
        return [], 0
    with engine_for(url).connect() as conn:
        count = conn.execute(text("SELECT count(*) FROM trials WHERE study_id = :s"), {"s": study_id}).scalar_one()
        ids = conn.execute(text("SELECT trial_id FROM trials WHERE study_id = :s ORDER BY number LIMIT :l OFFSET :o"),
                           {"s": study_id, "l": limit, "o": offset}).scalars().all()
    return [summary(storage.get_trial(trial_id)) for trial_id in ids], int(count)


def best_architecture(url: str, record: SearchRecord) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """(trial summary, architecture JSON) of the best completed trial so far, or None."""
    from nas.search import best_trial, trial_summary

    view = _view(url, record)
    best = best_trial(view) if view is not None else None
    if best is None or view is None:
        return None
    facts = {**summary(best), **trial_summary(best, view), "target_ms": view.target_ms}
    return json_safe(facts), json_safe(best.user_attrs["architecture"])


def pareto_front(url: str, record: SearchRecord) -> list[dict[str, Any]]:
    """Non-dominated (accuracy, latency) trials by latency ascending, each with its architecture."""
    from nas.search import pareto_trials

    view = _view(url, record)
    if view is None:
        return []
    return [{**summary(t), "architecture": json_safe(t.user_attrs.get("architecture"))} for t in pareto_trials(view)]
