"""Sending work by task name, so callers (the API) never import the task bodies or torch."""

from __future__ import annotations

from typing import Any

from workers.app import SEARCH_QUEUE, TRAIN_QUEUE, celery_app, latency_queue
from workers.publish import push

RUN_SEARCH = "nas.search.run"
TRAIN = "nas.train"
MEASURE_LATENCY = "nas.latency"
TRAIN_SUPERNET = "nas.supernet.train"
TRAIN_NETWORK = "nas.network.train"
TIME_TABLE = "nas.latency.table"
CONFIRM_LATENCY = "nas.latency.confirm"


def _search_task_id(search_id: str) -> str:
    return f"search-{search_id}"


async def submit_search_async(search_id: str, broker: Any) -> None:
    """``submit_search`` from the event loop, on ``broker`` (a ``redis.asyncio.Redis``): the API's path."""
    await push(broker, _search_task_id(search_id), RUN_SEARCH, [search_id], SEARCH_QUEUE)


def submit_search(search_id: str, connection: Any = None) -> None:
    """Queue a search's driver (on ``connection``, default: the app's broker). Idempotent on the worker
    side: a search that is already running or finished is left alone, so a duplicate message
    (redelivery, resubmit) is harmless."""
    celery_app.send_task(RUN_SEARCH, args=[search_id], queue=SEARCH_QUEUE, task_id=_search_task_id(search_id),
                         ignore_result=True, connection=connection)


def send_train(payload: dict[str, Any], task_id: str) -> None:
    """Queue a trial's training; the task id is the trial's, so a resend is a harmless duplicate."""
    celery_app.send_task(TRAIN, args=[payload], queue=TRAIN_QUEUE, task_id=task_id, ignore_result=True)


def send_latency(payload: dict[str, Any], task_id: str) -> None:
    """Queue a trial's latency on its device's queue (``latency.<profile>``)."""
    celery_app.send_task(MEASURE_LATENCY, args=[payload], queue=latency_queue(str(payload["device"])),
                         task_id=task_id, ignore_result=True)


JOB_TASKS = {"supernet": TRAIN_SUPERNET, "training": TRAIN_NETWORK}


async def submit_supernet_async(supernet_id: str, broker: Any) -> None:
    """Queue a supernet's training on the ``train`` queue (from the API's event loop). A duplicate message is
    harmless: the trainer's lease lets one worker train it, and a finished supernet is left alone."""
    await push(broker, f"supernet-{supernet_id}", TRAIN_SUPERNET, [supernet_id], TRAIN_QUEUE)


async def submit_training_async(training_id: str, broker: Any) -> None:
    """Queue a network's training (``POST /trainings``) on the ``train`` queue; duplicates are harmless, as
    for supernets."""
    await push(broker, f"training-{training_id}", TRAIN_NETWORK, [training_id], TRAIN_QUEUE)


def submit_job(noun: str, job_id: str) -> None:
    """Queue a supernet's or a training's task again (``nas doctor --fix``), under the id the API used."""
    celery_app.send_task(JOB_TASKS[noun], args=[job_id], queue=TRAIN_QUEUE, task_id=f"{noun}-{job_id}",
                         ignore_result=True)


def send_table(payload: dict[str, Any], task_id: str) -> None:
    """Queue lookup-table parts to time on their device's queue (``latency.<profile>``): only the device's
    own workers time anything for it."""
    celery_app.send_task(TIME_TABLE, args=[payload], queue=latency_queue(str(payload["device"])),
                         task_id=task_id, ignore_result=True)


def send_confirm(payload: dict[str, Any], task_id: str) -> None:
    """Queue a pass that times several networks again (the final check) on their device's queue."""
    celery_app.send_task(CONFIRM_LATENCY, args=[payload], queue=latency_queue(str(payload["device"])),
                         task_id=task_id, ignore_result=True)
