"""The ``search`` queue's work: run one stored search with the Celery executor and keep its row current."""

from __future__ import annotations

import logging

from nas.errors import NASError, SearchCancelled
from nas.settings import get_settings

log = logging.getLogger(__name__)


def drive(search_id: str, worker: str) -> str:
    from nas.search import parse_spec, run_search, write_outputs
    from nas.service import (
        SearchStatus,
        cancel_requested,
        get_search,
        mark_finished,
        mark_running,
        touch_search,
        update_progress,
    )
    from workers.executor import CeleryExecutor

    settings = get_settings()
    url = settings.resolved_database_url()
    record = get_search(url, search_id)
    if not mark_running(url, search_id, worker):
        log.info("search %s is %s: nothing to do", search_id, record.status)
        return "ignored"
    spec = parse_spec(record.spec, f"search {search_id}")
    last: dict[str, object] = {}

    def on_progress(p) -> None:  # type: ignore[no-untyped-def]
        last.update(finished=p.finished, budget_trials=p.budget_trials, running=p.running,
                    elapsed_seconds=p.elapsed_seconds, best_value=p.best_value, best_trial=p.best_trial)
        update_progress(url, search_id, message=p.message, **last)  # type: ignore[arg-type]
        if cancel_requested(url, search_id):
            raise SearchCancelled("cancel requested")

    def notify(message: str) -> None:
        update_progress(url, search_id, message=message, **{
            "finished": 0, "budget_trials": spec.budget.trials, "running": 0, "elapsed_seconds": 0.0,
            "best_value": None, "best_trial": None, **last})  # type: ignore[arg-type]

    executor = CeleryExecutor(url, spec.device, parallelism=settings.search_parallelism, notify=notify,
                              should_stop=lambda: cancel_requested(url, search_id),
                              device_ttl=settings.device_ttl, resend_after=settings.task_visibility_timeout,
                              heartbeat=lambda: touch_search(url, search_id))
    try:
        ctx = run_search(spec, study_name=record.study_name, storage_url=url,
                         run_dir=settings.home / "searches" / search_id, executor=executor, on_progress=on_progress)
        result = write_outputs(ctx)
    except SearchCancelled:
        mark_finished(url, search_id, SearchStatus.cancelled, error="cancelled by its owner")
        return "cancelled"
    except NASError as exc:
        log.warning("search %s failed: %s", search_id, exc)
        mark_finished(url, search_id, SearchStatus.failed, error=str(exc))
        return "failed"
    mark_finished(url, search_id, SearchStatus.succeeded, result=result)
    return "succeeded"


def fail(search_id: str, error: str) -> None:
    from nas.service import SearchStatus, mark_finished

    mark_finished(get_settings().resolved_database_url(), search_id, SearchStatus.failed, error=error)
