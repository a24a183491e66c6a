"""Sending work by task name, so callers (the API) never import the task bodies or torch."""

from __future__ import annotations

from workers.app import SEARCH_QUEUE, celery_app

RUN_SEARCH = "nas.search.run"
TRAIN = "nas.train"
MEASURE_LATENCY = "nas.latency"


def submit_search(search_id: str) -> None:
    """Queue a search's driver. Idempotent on the worker side: a search that is already running or
    finished is left alone, so a duplicate message (redelivery, resubmit) is harmless."""
    celery_app.send_task(RUN_SEARCH, args=[search_id], queue=SEARCH_QUEUE, task_id=f"search-{search_id}",
                        ignore_result=True)
