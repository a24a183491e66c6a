"""Celery tasks: thin shells that decode a JSON payload and call ``nas``. Named explicitly; heavy imports
inside the bodies, so the API and the broker side never load torch."""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from typing import Any

from workers import outcomes
from workers.app import celery_app
from workers.dispatch import (
    CONFIRM_LATENCY,
    MEASURE_LATENCY,
    RUN_SEARCH,
    TIME_TABLE,
    TRAIN,
    TRAIN_NETWORK,
    TRAIN_SUPERNET,
)

log = logging.getLogger(__name__)


@celery_app.task(name=TRAIN, acks_late=True, reject_on_worker_lost=True)
def train(payload: dict[str, Any]) -> str:
    """Proxy-train one candidate; the outcome goes onto its trial. Idempotent by trial id."""
    from nas.errors import NASError, TrialAbandoned
    from nas.search import TrainRequest
    from nas.search._evaluate import train_candidate

    req = TrainRequest.model_validate(payload)
    current = outcomes.read(req.storage_url, req.trial_id)
    if outcomes.TRAIN_KEY in current or current["state"] != "RUNNING":
        log.info("trial %d already has a training outcome or is finished: ignoring duplicate", req.trial_number)
        return "duplicate"
    try:
        outcome: Any = train_candidate(req).model_dump(mode="json")
        key = outcomes.TRAIN_KEY
    except TrialAbandoned as exc:  # cancelled, or re-run by a new driver: nobody reads this run's outcome
        log.info("%s", exc)
        return "abandoned"
    except NASError as exc:
        outcome, key = f"training: {exc}", outcomes.ERROR_KEY
    except Exception as exc:  # a crashing candidate must be recorded, not retried forever
        log.exception("trial %d: training crashed", req.trial_number)
        outcome, key = f"training: {type(exc).__name__}: {exc}", outcomes.ERROR_KEY
    stored = outcomes.write(req.storage_url, req.trial_id, key, outcome)
    return "stored" if stored else "duplicate"


@celery_app.task(name=MEASURE_LATENCY, acks_late=True, reject_on_worker_lost=True)
def latency(payload: dict[str, Any]) -> dict[str, Any] | str:
    """Judge latency on this worker's device; served only on ``latency.<profile>`` queues."""
    from nas.errors import NASError
    from nas.search import LatencyRequest
    from nas.search._evaluate import judge_latency

    req = LatencyRequest.model_validate(payload)
    ref, study = req.trial, req.study
    if ref is not None:
        current = outcomes.read(ref.storage_url, ref.trial_id)
        if outcomes.LATENCY_KEY in current or current["state"] != "RUNNING":
            return "duplicate"
    if study is not None and study.key in outcomes.read_study(study.storage_url, study.study_name):
        return "duplicate"
    try:
        result: Any = judge_latency(req).model_dump(mode="json")
        key = outcomes.LATENCY_KEY
    except NASError as exc:
        result, key = f"latency: {exc}", outcomes.ERROR_KEY
    except Exception as exc:  # recorded so the driver is not left waiting for an outcome that never comes
        log.exception("latency of %s failed", ref.trial_number if ref else "a reference network")
        result, key = f"latency: {type(exc).__name__}: {exc}", outcomes.ERROR_KEY
    if study is not None:  # a network without a trial (T's reference): the outcome goes onto the study
        value = {"latency": result} if key == outcomes.LATENCY_KEY else {"error": result}
        outcomes.write_study(study.storage_url, study.study_name, study.key, value)
        return "stored"
    if ref is None:
        return result if key == outcomes.LATENCY_KEY else {"error": result}
    outcomes.write(ref.storage_url, ref.trial_id, key, result)
    return "stored"


def _record_on_study(study: Any, kind: str, what: str, work: Callable[[], Any]) -> str:
    """Run a device task whose outcome goes onto the study under ``study.key`` as ``{kind: ...}``, or its
    error as ``{"error": ...}``; a second delivery of a recorded task does nothing."""
    from nas.errors import NASError

    if study is None:
        return "no study to record on"
    if study.key in outcomes.read_study(study.storage_url, study.study_name):
        return "duplicate"
    try:
        value: dict[str, Any] = {kind: work().model_dump(mode="json")}
    except NASError as exc:
        value = {"error": f"{what}: {exc}"}
    except Exception as exc:  # recorded so the driver is not left waiting for an outcome that never comes
        log.exception("%s failed", what)
        value = {"error": f"{what}: {type(exc).__name__}: {exc}"}
    outcomes.write_study(study.storage_url, study.study_name, study.key, value)
    return "stored"


@celery_app.task(name=TIME_TABLE, acks_late=True, reject_on_worker_lost=True)
def time_table(payload: dict[str, Any]) -> str:
    """Time the lookup-table parts a search's strategy needs on this worker's device (served only on
    ``latency.<profile>`` queues); the outcome, or the error, goes onto the study under the request's key."""
    from nas.search._tables import TableRequest, time_table_parts

    req = TableRequest.model_validate(payload)
    return _record_on_study(req.study, "table", f"table parts on {req.device}", lambda: time_table_parts(req))


@celery_app.task(name=CONFIRM_LATENCY, acks_late=True, reject_on_worker_lost=True)
def confirm(payload: dict[str, Any]) -> str:
    """Time several networks again in one pass with T's reference (a search's final check, or its
    recalibration in ``mode: predicted``); the outcome goes onto the study. Served only on ``latency.<profile>``."""
    from nas.search._confirm import ConfirmRequest, confirm_latency

    req = ConfirmRequest.model_validate(payload)
    return _record_on_study(req.study, "confirm", f"latency of {len(req.architectures)} network(s) again",
                            lambda: confirm_latency(req))


SEARCH_RETRIES = 3


@celery_app.task(name=RUN_SEARCH, acks_late=True, reject_on_worker_lost=True, bind=True, max_retries=None)
def run_search(self: Any, search_id: str, resuming: int | None = None, failures: int = 0) -> str:
    """Drive one search to its end, holding its lease (one driver per search). A final or cancelled
    search is left alone. While another driver's lease is live (a redelivered or re-sent message) this
    one drives nothing and looks again when that lease would expire, so it takes over only from a dead
    driver, whose study it resumes. An unexpected error (database or broker hiccup) is retried with
    back-off, the retry allowed to take its own lease back (``resuming``); after the last retry the search
    is marked failed with the reason, so no search stays "running" for ever."""
    from workers.driver import drive, fail

    return _leased(self, f"search {search_id}", lambda: drive(search_id, worker=socket.gethostname(),
                                                              resuming=resuming),
                   lambda reason, token: fail(search_id, reason, token=token), resuming, failures)


@celery_app.task(name=TRAIN_SUPERNET, acks_late=True, reject_on_worker_lost=True, bind=True, max_retries=None)
def train_supernet(self: Any, supernet_id: str, resuming: int | None = None, failures: int = 0) -> str:
    """Train one supernet (``POST /supernets``) under its lease, as ``run_search`` drives a search: a
    redelivered message waits while the lease is live and resumes from the stored checkpoint once it
    expired (its worker died); hiccups are retried, then the supernet is marked failed."""
    from workers.supernet_trainer import fail, train

    return _leased(self, f"supernet {supernet_id}", lambda: train(supernet_id, socket.gethostname(), resuming),
                   lambda reason, token: fail(supernet_id, reason, token=token), resuming, failures)


@celery_app.task(name=TRAIN_NETWORK, acks_late=True, reject_on_worker_lost=True, bind=True, max_retries=None)
def train_network(self: Any, training_id: str, resuming: int | None = None, failures: int = 0) -> str:
    """Train one network (``POST /trainings``) under its lease, as ``train_supernet`` trains a supernet."""
    from workers.network_trainer import fail, train

    return _leased(self, f"training {training_id}", lambda: train(training_id, socket.gethostname(), resuming),
                   lambda reason, token: fail(training_id, reason, token=token), resuming, failures)


def _leased(task: Any, what: str, run: Callable[[], str], fail: Callable[[str, int | None], None],
            resuming: int | None, failures: int) -> str:
    """The retry policy of work held by a lease (a search's driver, a supernet's or network's trainer)."""
    from nas.errors import LeaseLost
    from workers.driver import DriverFailed, Standby

    try:
        return run()
    except Standby as held:
        log.info("%s: %s; looking again in %.0f s", what, held, held.seconds)
        raise task.retry(countdown=held.seconds, kwargs={"resuming": None, "failures": failures}) from None
    except Exception as exc:
        token = exc.token if isinstance(exc, DriverFailed) else resuming
        cause = exc.__cause__ if isinstance(exc, DriverFailed) and exc.__cause__ is not None else exc
        if failures < SEARCH_RETRIES:
            log.warning("%s: %s; retrying", what, cause)
            raise task.retry(exc=cause, countdown=5 * 2**failures,
                             kwargs={"resuming": token, "failures": failures + 1}) from exc
        log.error("%s failed after %d retries", what, SEARCH_RETRIES, exc_info=cause)
        try:
            fail(f"{type(cause).__name__}: {cause}", token)
        except LeaseLost:  # another driver took it over meanwhile: its outcome, not ours
            return "lease lost"
        return "failed"
