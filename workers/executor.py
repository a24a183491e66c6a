"""The Celery executor: training on the ``train`` queue, latency on ``latency.<profile>``, outcomes polled
from the database. Implements ``nas.search.Executor`` for the search driver running in a worker."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator

from nas.search import Executor, Job, JobResult, LatencyOutcome, LatencyRequest, TrainOutcome
from nas.service.trial_tasks import missing_outcomes, task_ids, task_record
from workers import outcomes
from workers.app import celery_app, latency_queue
from workers.dispatch import MEASURE_LATENCY, send_latency, send_train

log = logging.getLogger(__name__)

Notify = Callable[[str], None]


class CeleryExecutor(Executor):
    def __init__(self, storage_url: str, device: str, *, parallelism: int = 2, poll_seconds: float = 1.0,
                 notify: Notify | None = None, should_stop: Callable[[], bool] | None = None,
                 device_ttl: float = 60.0, resend_after: float = 6 * 3600.0,
                 heartbeat: Callable[[], None] | None = None, heartbeat_seconds: float = 10.0) -> None:
        """``resend_after``: a trial whose outcome has not come this long after its tasks were sent has them
        sent again (the broker may have lost them: a Redis restart without persistence, or a task that died
        before writing its outcome); use the broker's visibility timeout, after which Redis would redeliver
        an unacked message anyway, so at most one extra duplicate runs. ``heartbeat`` is called at most every
        ``heartbeat_seconds`` while waiting, so a live driver is told apart from a stuck one (``nas doctor``)."""
        self.storage_url, self.device = storage_url, device
        self.parallelism = parallelism
        self.poll_seconds = poll_seconds
        self.notify = notify or (lambda _m: None)
        self.should_stop = should_stop or (lambda: False)
        self.device_ttl = device_ttl
        self.resend_after = resend_after
        self.heartbeat = heartbeat or (lambda: None)
        self.heartbeat_seconds = heartbeat_seconds
        self._last_beat = 0.0

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
        """Called on every poll: beat (throttled), then stop if the search's cancel was requested."""
        if time.monotonic() - self._last_beat >= self.heartbeat_seconds:
            self.heartbeat()
            self._last_beat = time.monotonic()
        if self.should_stop():
            from nas.errors import SearchCancelled

            raise SearchCancelled("cancel requested")

    # -- the executor interface ------------------------------------------------------------
    def judge(self, request: LatencyRequest) -> LatencyOutcome:
        """A network without a trial (T's reference): the answer comes back through Celery's result backend,
        so it is polled with the same resend rule as trials (a Redis restart loses the message and the
        result alike) and a broker outage only delays it."""
        self.wait_for_device()
        payload = [request.model_dump(mode="json")]
        result = celery_app.send_task(MEASURE_LATENCY, args=payload, queue=latency_queue(self.device))
        sent = time.monotonic()
        while not self._ready(result):
            self._check_stop()
            if time.monotonic() - sent > self.resend_after:
                log.warning("no latency result %.0f s after sending; sending again", self.resend_after)
                result = celery_app.send_task(MEASURE_LATENCY, args=payload, queue=latency_queue(self.device))
                sent = time.monotonic()
            time.sleep(self.poll_seconds)
        value = result.get(propagate=True)
        if isinstance(value, dict) and "error" in value:
            from nas.errors import LatencyError

            raise LatencyError(str(value["error"]))
        return LatencyOutcome.model_validate(value)

    @staticmethod
    def _ready(result: object) -> bool:
        try:
            return bool(result.ready())  # type: ignore[attr-defined]
        except Exception as exc:  # the result backend (Redis) is down or restarting: keep waiting
            log.warning("latency result not readable yet: %s", exc)
            return False

    def run(self, jobs: list[Job]) -> Iterator[JobResult]:
        if not jobs:
            return
        self.wait_for_device()
        sent: dict[int, float] = {}
        for job in jobs:
            self._send(job, _sendable(job))
            sent[job.train.trial_id] = time.monotonic()
        pending = {job.train.trial_id: job for job in jobs}
        while pending:
            self._check_stop()
            for trial_id, job in list(pending.items()):
                attrs = outcomes.read(self.storage_url, trial_id)
                result = _result(job, attrs)
                if result is not None:
                    del pending[trial_id]
                    yield result
                elif job.train.needs_latency and outcomes.LATENCY_KEY in attrs:
                    # Pareto pruning compares the candidate with the trials at least as fast: train it once
                    # its latency is known (cached or predicted latency comes back in well under a second).
                    ms = LatencyOutcome.model_validate(attrs[outcomes.LATENCY_KEY]).ms
                    job = pending[trial_id] = Job(job.trial_number, job.train.with_latency(ms), job.latency)
                    self._send(job, ["train"])
                    sent[trial_id] = time.monotonic()
                elif time.monotonic() - sent[trial_id] > self.resend_after:
                    missing = [m for m in missing_outcomes(attrs) if m in _sendable(job)]
                    log.warning("trial %d: no %s outcome %.0f s after sending; sending again", job.trial_number,
                                "/".join(missing), self.resend_after)
                    self._send(job, missing)
                    sent[trial_id] = time.monotonic()
            if pending:
                time.sleep(self.poll_seconds)

    def _send(self, job: Job, which: list[str]) -> None:
        """Record what is sent on the trial first (so it can be sent again by anyone), then send it."""
        train, latency = job.train.model_dump(mode="json"), job.latency.model_dump(mode="json")
        outcomes.record_task(self.storage_url, job.train.trial_id, task_record(train, latency, time.time()))
        train_id, latency_id = task_ids(job.train.study_name, job.train.trial_id)
        if "train" in which:
            send_train(train, train_id)
        if "latency" in which:
            send_latency(latency, latency_id)


def _sendable(job: Job) -> list[str]:
    """A job whose training waits for its latency is sent in two steps, latency first."""
    return ["latency"] if job.train.needs_latency else ["train", "latency"]


def _result(job: Job, attrs: dict[str, object]) -> JobResult | None:
    if outcomes.ERROR_KEY in attrs:
        return JobResult(job, error=str(attrs[outcomes.ERROR_KEY]))
    if outcomes.TRAIN_KEY in attrs and outcomes.LATENCY_KEY in attrs:
        return JobResult(job, latency=LatencyOutcome.model_validate(attrs[outcomes.LATENCY_KEY]),
                         train=TrainOutcome.model_validate(attrs[outcomes.TRAIN_KEY]))
    return None
