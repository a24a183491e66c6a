"""The ``search`` queue's work: claim a stored search's lease, run it with the Celery executor, keep its
row current.

One driver per search, ever: the claim (``nas.service.claim_search``) is refused while another driver's
lease is live, a thread renews the lease, and every write of the driver carries its fencing token, so a
driver that lost its lease stops without touching the search or its trials again.
"""

from __future__ import annotations

import logging
from typing import Any

from nas.errors import LeaseLost, NASError, SearchCancelled
from nas.settings import get_settings

log = logging.getLogger(__name__)


class Standby(Exception):  # noqa: N818 - a signal to the task, not an error
    """Another driver holds the search's live lease: look again in ``seconds`` (it may die)."""

    def __init__(self, seconds: float, reason: str) -> None:
        super().__init__(reason)
        self.seconds = seconds


class DriverFailed(Exception):
    """The driver holding lease ``token`` crashed (database or broker hiccup); its retry may take it back."""

    def __init__(self, token: int) -> None:
        super().__init__(f"driver of lease {token} failed")
        self.token = token


def drive(search_id: str, worker: str, resuming: int | None = None) -> str:
    from nas.service import claim_search
    from workers.liveness import LeaseKeeper

    settings = get_settings()
    url = settings.resolved_database_url()
    claim = claim_search(url, search_id, worker, settings.driver_lease, resuming=resuming)
    if claim.token is None:
        log.info("%s: not driving it", claim.reason)
        if claim.cancelled_now:
            from nas.search._study import end_running
            from nas.service import get_search

            ended = end_running(url, get_search(url, search_id).study_name, "cancelled")
            log.info("search %s: cancelled while no driver ran it; trial(s) %s marked failed", search_id, ended)
        if claim.held_for is not None:
            raise Standby(claim.held_for + 1.0, claim.reason)
        return "ignored"
    lease = LeaseKeeper(url, search_id, claim.token, settings.driver_lease / 4).start()
    try:
        return _drive(url, search_id, claim.token, lease)
    except LeaseLost as exc:
        log.warning("search %s: %s", search_id, exc)
        return "lease lost"
    except Exception as exc:
        raise DriverFailed(claim.token) from exc
    finally:
        lease.stop()


def _drive(url: str, search_id: str, token: int, lease: Any) -> str:
    from nas.search import parse_spec, run_search, write_outputs
    from nas.search._study import end_running
    from nas.service import SearchStatus, cancel_requested, get_search, mark_finished, update_progress
    from workers.executor import CeleryExecutor

    settings = get_settings()
    record = get_search(url, search_id)
    spec = parse_spec(record.spec, f"search {search_id}")

    def checkpoint() -> None:
        lease.check()
        if cancel_requested(url, search_id):
            raise SearchCancelled("cancel requested")

    def on_progress(p) -> None:  # type: ignore[no-untyped-def]
        update_progress(url, search_id, message=p.message, finished=p.finished, budget_trials=p.budget_trials,
                        running=p.running, elapsed_seconds=p.elapsed_seconds, best_value=p.best_value,
                        best_trial=p.best_trial, token=token)
        checkpoint()

    executor = CeleryExecutor(url, spec.device, parallelism=settings.search_parallelism, checkpoint=checkpoint,
                              device_ttl=settings.device_ttl, device_wait=settings.device_wait,
                              resend_after=settings.task_visibility_timeout)
    try:
        ctx = run_search(spec, study_name=record.study_name, storage_url=url,
                         run_dir=settings.home / "searches" / search_id, executor=executor, on_progress=on_progress)
        lease.check()
        result = write_outputs(ctx, search_id)
    except SearchCancelled:
        lease.check()
        ended = end_running(url, record.study_name, "cancelled")
        log.info("search %s cancelled; trial(s) %s marked failed (cancelled)", search_id, ended)
        mark_finished(url, search_id, SearchStatus.cancelled, token=token,
                      error=f"cancelled by its owner; {len(ended)} running trial(s) stopped")
        return "cancelled"
    except NASError as exc:
        if isinstance(exc, LeaseLost):
            raise
        log.warning("search %s failed: %s", search_id, exc)
        lease.check()
        end_running(url, record.study_name, f"search failed: {exc}")
        mark_finished(url, search_id, SearchStatus.failed, error=str(exc), token=token)
        return "failed"
    mark_finished(url, search_id, SearchStatus.succeeded, result=result, token=token)
    return "succeeded"


def fail(search_id: str, error: str, token: int | None = None) -> None:
    from nas.service import SearchStatus, mark_finished

    mark_finished(get_settings().resolved_database_url(), search_id, SearchStatus.failed, error=error, token=token)
