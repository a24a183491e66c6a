"""The Celery executor: training on the ``train`` queue, latency on ``latency.<profile>``, outcomes polled
from the database. Implements ``nas.search.Executor`` for the search driver running in a worker.

Nothing here waits on a Celery result: every task writes its outcome into the study (a trial's user
attributes, or the study's own for T's reference), so the driver polls the database, and a result survives
the broker, the worker or the driver dying. While it waits, the executor names what it waits for
(``measuring T on cpu-ort-1t``, ``training 2 candidate(s)``, ``waiting for a worker on latency.X``) through
the driver's status hook, which also keeps the search's elapsed time live.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

from nas.search import Executor, Job, JobResult, LatencyOutcome, LatencyRequest, TrainOutcome
from nas.search._confirm import ConfirmOutcome, ConfirmRequest
from nas.search._evaluate import StudyRef
from nas.search._tables import TableOutcome, TableRequest
from nas.service.trial_tasks import missing_outcomes, task_ids, task_record
from workers import outcomes
from workers.app import latency_queue
from workers.dispatch import send_confirm, send_latency, send_table, send_train
from workers.liveness import DeviceWatch

log = logging.getLogger(__name__)


class CeleryExecutor(Executor):
    def __init__(self, storage_url: str, device: str, *, parallelism: int = 2, poll_seconds: float = 1.0,
                 checkpoint: Callable[[], None] | None = None, device_ttl: float = 60.0,
                 device_wait: float = 600.0, resend_after: float = 6 * 3600.0, status_seconds: float = 10.0) -> None:
        """``checkpoint`` is called on every poll and raises to stop the search (cancel requested, lease
        lost). ``resend_after``: a trial whose outcome has not come this long after its tasks were sent has
        them sent again (the broker may have lost them: a Redis restart without persistence, or a task that
        died before writing its outcome); use the broker's visibility timeout, after which Redis would
        redeliver an unacked message anyway, so at most one extra duplicate runs. ``device_wait``: how long
        latency work may wait with no live worker on the device before the search fails. The status is
        reported when it changes and at least every ``status_seconds``."""
        self.storage_url, self.device = storage_url, device
        self.parallelism = parallelism
        self.poll_seconds = poll_seconds
        self.checkpoint = checkpoint or (lambda: None)
        self.resend_after = resend_after
        self.status_seconds = status_seconds
        self.devices = DeviceWatch(storage_url, device, ttl=device_ttl, wait=device_wait)
        self._said, self._said_at = "", 0.0

    def _poll(self, message: str, running: int) -> None:
        """One poll's bookkeeping: stop if asked to, report the phase (on change, else every few seconds)."""
        self.checkpoint()
        now = time.monotonic()
        if message != self._said or now - self._said_at >= self.status_seconds:
            self.status(message, running)
            self._said, self._said_at = message, now

    def _latency_phase(self, what: str) -> str:
        """``measuring WHAT on DEVICE``, or, with no live worker there, what to start; fails the search
        once nobody served the device for ``device_wait`` seconds (``DeviceUnavailable``)."""
        if self.devices.live():
            return f"measuring {what} on {self.device}"
        return self.devices.waiting_message()

    # -- the executor interface ------------------------------------------------------------
    def judge(self, request: LatencyRequest) -> LatencyOutcome:
        """A network without a trial (T's reference): its latency task writes the outcome onto the study
        (``request.study``), polled here with the same resend rule as trials."""
        value = self._on_device(request.study, "latency", "T",
                                lambda task_id: send_latency(request.model_dump(mode="json"), task_id))
        return LatencyOutcome.model_validate(value["latency"])

    def time_table(self, request: TableRequest) -> TableOutcome:
        """Lookup-table parts a strategy needs, timed by the device's latency worker (never by this driver);
        the outcome comes back through the study like T's."""
        value = self._on_device(request.study, "table", "lookup-table parts",
                                lambda task_id: send_table(request.model_dump(mode="json"), task_id))
        return TableOutcome.model_validate(value["table"])

    def confirm(self, request: ConfirmRequest) -> ConfirmOutcome:
        """The final check's (or a recalibration's) pass, on a ``latency.<device>`` worker like every timing."""
        value = self._on_device(request.study, "confirm", f"{len(request.architectures)} network(s) again",
                                lambda task_id: send_confirm(request.model_dump(mode="json"), task_id))
        return ConfirmOutcome.model_validate(value["confirm"])

    def _on_device(self, ref: StudyRef | None, kind: str, what: str, send: Callable[[str], None]
                   ) -> dict[str, Any]:
        """Send a device task (id ``KIND-STUDY-KEY``) whose outcome goes onto the study under ``ref.key`` and
        poll for it (resent after ``resend_after``); raises ``LatencyError`` with the outcome's error."""
        from nas.errors import LatencyError, SearchError

        if ref is None:
            raise SearchError(f"a distributed task for {what} needs a study to record its outcome on")
        task_id = f"{kind}-{ref.study_name}-{ref.key}"
        sent: float | None = None
        while True:
            value = outcomes.read_study(self.storage_url, ref.study_name).get(ref.key)
            if value is not None:
                if "error" in value:
                    raise LatencyError(str(value["error"]))
                return dict(value)
            if sent is None or time.monotonic() - sent > self.resend_after:
                if sent is not None:
                    log.warning("no outcome for %s %.0f s after sending; sending again", what, self.resend_after)
                send(task_id)
                sent = time.monotonic()
            self._poll(self._latency_phase(what), 0)
            time.sleep(self.poll_seconds)

    def run(self, jobs: list[Job]) -> Iterator[JobResult]:
        if not jobs:
            return
        sent: dict[int, float] = {}
        for job in jobs:
            self._send(job, _sendable(job))
            sent[job.train.trial_id] = time.monotonic()
        pending = {job.train.trial_id: job for job in jobs}
        while pending:
            waiting: dict[str, int] = {"latency": 0, "train": 0}
            for trial_id, job in list(pending.items()):
                attrs = outcomes.read(self.storage_url, trial_id)
                result = _result(job, attrs)
                if result is not None:
                    del pending[trial_id]
                    yield result
                    continue
                if attrs["state"] != "RUNNING":  # ended by someone else: a driver that took the search over
                    from nas.errors import LeaseLost

                    raise LeaseLost(f"trial {job.trial_number} was ended elsewhere ({attrs['state'].lower()}): "
                                    "another driver has this search")
                if job.train.needs_latency and outcomes.LATENCY_KEY in attrs:
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
                missing = missing_outcomes(attrs)
                if job.train.needs_latency and "latency" in missing:  # its training is sent after it
                    missing = ["latency"]
                for name in missing:
                    waiting[name] += 1
            if pending:
                self._poll(self._phase(waiting), len(pending))
                time.sleep(self.poll_seconds)

    def _phase(self, waiting: dict[str, int]) -> str:
        parts = []
        if waiting["latency"]:
            parts.append(self._latency_phase(f"{waiting['latency']} candidate(s)"))
        if waiting["train"]:
            parts.append(f"training {waiting['train']} candidate(s)")
        return ", ".join(parts) or "recording results"

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


__all__ = ["CeleryExecutor", "latency_queue"]
