"""Executors evaluate jobs: in-process here, on Celery workers in ``workers/``. Same interface for both."""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from nas.search._confirm import ConfirmOutcome, ConfirmRequest, confirm_latency
from nas.search._evaluate import (
    LatencyOutcome,
    LatencyRequest,
    TrainOutcome,
    TrainRequest,
    judge_latency,
    train_candidate,
)
from nas.search._tables import TableOutcome, TableRequest, time_table_parts

log = logging.getLogger(__name__)


@dataclass
class Job:
    trial_number: int
    train: TrainRequest
    latency: LatencyRequest


@dataclass
class JobResult:
    job: Job
    latency: LatencyOutcome | None = None
    train: TrainOutcome | None = None
    error: str | None = None


class Executor(ABC):
    """Runs jobs and yields their results as they finish (any order).

    Contract: every job yields exactly one result; a job that raised yields ``error`` set, never an
    exception, so the driver can record the failure and go on.
    """

    parallelism: int = 1
    _status: Callable[[str, int], None] | None = None

    @abstractmethod
    def run(self, jobs: list[Job]) -> Iterator[JobResult]: ...

    def watch(self, status: Callable[[str, int], None]) -> None:
        """The driver's hook for what the executor waits on: ``status(message, running)``, e.g.
        ("training 2 candidate(s)", 2). A waiting executor calls it on every change and every few seconds,
        so the search's status names the phase and its elapsed time stays live."""
        self._status = status

    def status(self, message: str, running: int) -> None:
        if self._status is not None:
            self._status(message, running)

    def judge(self, request: LatencyRequest) -> LatencyOutcome:
        """One latency on the target device (the search's T for a reference network); in-process here."""
        return judge_latency(request)

    def time_table(self, request: TableRequest) -> TableOutcome:
        """Time the lookup-table parts a strategy needs (NetAdapt's sizing) on the device; in-process here."""
        return time_table_parts(request)

    def confirm(self, request: ConfirmRequest) -> ConfirmOutcome:
        """Several networks (and T's reference) timed again in one pass on the target device; in-process here."""
        return confirm_latency(request)

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release workers, connections."""


class LocalExecutor(Executor):
    """In-process, one job at a time: latency first (seconds), then training (the long part)."""

    parallelism = 1

    def run(self, jobs: list[Job]) -> Iterator[JobResult]:
        from nas.errors import NASError

        for job in jobs:
            result = JobResult(job)
            try:
                result.latency = judge_latency(job.latency)
                train = job.train.with_latency(result.latency.ms) if job.train.needs_latency else job.train
                result.train = train_candidate(train)
            except NASError as exc:
                result.error = str(exc)
            except Exception as exc:  # a candidate that crashes must not end the search
                log.exception("trial %d failed", job.trial_number)
                result.error = f"{type(exc).__name__}: {exc}"
            yield result
