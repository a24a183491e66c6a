"""The Celery executor: training on the ``train`` queue, latency on ``latency.<profile>``, outcomes polled
from the database. Implements ``nas.search.Executor`` for the search driver running in a worker."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator

from nas.search import Executor, Job, JobResult, LatencyOutcome, LatencyRequest, TrainOutcome
from workers import outcomes
from workers.app import TRAIN_QUEUE, celery_app, latency_queue
from workers.dispatch import MEASURE_LATENCY, TRAIN

log = logging.getLogger(__name__)

Notify = Callable[[str], None]


class CeleryExecutor(Executor):
    def __init__(self, storage_url: str, device: str, *, parallelism: int = 2, poll_seconds: float = 1.0,
                 notify: Notify | None = None, should_stop: Callable[[], bool] | None = None,
                 device_ttl: float = 60.0) -> None:
        self.storage_url, self.device = storage_url, device
        self.parallelism = parallelism
        self.poll_seconds = poll_seconds
        self.notify = notify or (lambda _m: None)
        self.should_stop = should_stop or (lambda: False)
        self.device_ttl = device_ttl

    # -- devices -----------------------------------------------------------------------
    def wait_for_device(self) -> None:
        """Block, visibly, until a worker serving ``latency.<device>`` has registered recently."""
        from nas.service import live_devices

        announced = False
        while not any(d.profile == self.device for d in live_devices(self.storage_url, self.device_ttl)):
            if not announced:
                log.warning("no live worker for device %s: waiting", self.device)
                announced = True
            self.notify(f"waiting for a worker on {latency_queue(self.device)} (start: nas worker --device "
                        f"{self.device})")
            self._check_stop()
            time.sleep(self.poll_seconds)

    def _check_stop(self) -> None:
        if self.should_stop():
            from nas.errors import SearchCancelled

            raise SearchCancelled("cancel requested")

    # -- the executor interface ------------------------------------------------------------
    def judge(self, request: LatencyRequest) -> LatencyOutcome:
        self.wait_for_device()
        result = celery_app.send_task(MEASURE_LATENCY, args=[request.model_dump(mode="json")],
                                      queue=latency_queue(self.device))
        while not result.ready():
            self._check_stop()
            time.sleep(self.poll_seconds)
        value = result.get(propagate=True)
        if isinstance(value, dict) and "error" in value:
            from nas.errors import LatencyError

            raise LatencyError(str(value["error"]))
        return LatencyOutcome.model_validate(value)

    def run(self, jobs: list[Job]) -> Iterator[JobResult]:
        if not jobs:
            return
        self.wait_for_device()
        for job in jobs:
            key = f"{job.train.study_name}-{job.train.trial_id}"
            celery_app.send_task(TRAIN, args=[job.train.model_dump(mode="json")], queue=TRAIN_QUEUE,
                                 task_id=f"train-{key}", ignore_result=True)
            celery_app.send_task(MEASURE_LATENCY, args=[job.latency.model_dump(mode="json")],
                                 queue=latency_queue(self.device), task_id=f"latency-{key}",
                                 ignore_result=True)
        pending = {job.train.trial_id: job for job in jobs}
        while pending:
            self._check_stop()
            for trial_id, job in list(pending.items()):
                attrs = outcomes.read(self.storage_url, trial_id)
                result = _result(job, attrs)
                if result is not None:
                    del pending[trial_id]
                    yield result
            if pending:
                time.sleep(self.poll_seconds)


def _result(job: Job, attrs: dict[str, object]) -> JobResult | None:
    if outcomes.ERROR_KEY in attrs:
        return JobResult(job, error=str(attrs[outcomes.ERROR_KEY]))
    if outcomes.TRAIN_KEY in attrs and outcomes.LATENCY_KEY in attrs:
        return JobResult(job, latency=LatencyOutcome.model_validate(attrs[outcomes.LATENCY_KEY]),
                         train=TrainOutcome.model_validate(attrs[outcomes.TRAIN_KEY]))
    return None
