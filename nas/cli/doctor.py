"""``nas doctor``: report stuck searches, orphaned trials, unclaimed queued searches, trials waiting on a
device with no live latency worker, and stuck or unclaimed supernets and trainings; ``--fix`` re-sends
what was lost.

Reads the service database directly (``--database`` / ``NAS_DATABASE_URL``), so it runs where the
workers run. Exit code 1 while problems remain (found and not fixed), so it can gate a health check.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

import typer
from rich.table import Table

from nas.cli._output import console, err_console, print_json

log = logging.getLogger(__name__)


class _CeleryDispatcher:
    """``nas.service.doctor.Dispatcher`` over the service's Celery app (same task ids as the executor)."""

    def search(self, search_id: str) -> None:
        from workers.dispatch import submit_search

        submit_search(search_id)

    def train(self, payload: dict[str, Any], task_id: str) -> None:
        from workers.dispatch import send_train

        send_train(payload, task_id)

    def latency(self, payload: dict[str, Any], task_id: str) -> None:
        from workers.dispatch import send_latency

        send_latency(payload, task_id)

    def job(self, noun: str, job_id: str) -> None:
        from workers.dispatch import submit_job

        submit_job(noun, job_id)


def _search_workers(redis_url: str) -> int | None:
    """Workers consuming the ``search`` queue, asked over the broker; None when the broker does not answer."""
    from nas.service.health import check_redis

    if check_redis(redis_url) != "ok":
        return None
    from workers.app import SEARCH_QUEUE, celery_app

    try:
        replies = celery_app.control.inspect(timeout=1.0).active_queues() or {}
    except Exception as exc:  # a broker hiccup makes the count unknown, not the doctor fail
        log.warning("could not ask workers for their queues: %s", exc)
        return None
    return sum(1 for queues in replies.values() if any(q.get("name") == SEARCH_QUEUE for q in queues))


def doctor(
    database: Annotated[str | None, typer.Option("--database", help="Service database URL (default: "
                                                 "NAS_DATABASE_URL, or SQLite in NAS_HOME).")] = None,
    fix: Annotated[bool, typer.Option("--fix", help="Re-send the lost search and trial tasks.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document instead of a table.")] = False,
    stuck_after: Annotated[float, typer.Option("--stuck-after", min=0, help="Seconds without a driver report "
                                               "before a running search counts as stuck.")] = 600.0,
    orphan_after: Annotated[float | None, typer.Option("--orphan-after", min=0, help="Seconds without an outcome "
                                                       "after sending (default NAS_TASK_VISIBILITY_TIMEOUT).")]
    = None,
    queued_after: Annotated[float, typer.Option("--queued-after", min=0, help="Seconds a search may stay "
                                                "queued.")] = 300.0,
) -> None:
    """Report searches and trials the service lost track of; with --fix, send their tasks again."""
    from nas.service.doctor import QUEUED, STUCK, Thresholds, diagnose
    from nas.service.doctor import fix as fix_problems
    from nas.settings import get_settings

    settings = get_settings()
    url = database or settings.resolved_database_url()
    limits = Thresholds(stuck_after=stuck_after, queued_after=queued_after, device_ttl=settings.device_ttl,
                        orphan_after=settings.task_visibility_timeout if orphan_after is None else orphan_after)
    asked: list[int | None] = []

    def search_workers() -> int | None:
        if not asked:
            asked.append(_search_workers(settings.redis_url))
        return asked[0]

    problems = diagnose(url, limits, search_workers=search_workers)
    if fix and problems:
        searches_lost = any(p.kind in (STUCK, QUEUED) for p in problems)
        problems = fix_problems(url, problems, _CeleryDispatcher(),
                                search_workers=search_workers() if searches_lost else None)
    workers = asked[0] if asked else None
    remaining = [p for p in problems if not p.fixed]
    if as_json:
        print_json({"search_workers": workers, "problems": [p.as_dict() for p in problems],
                    "remaining": len(remaining)})
    elif problems:
        table = Table()
        for col in ("problem", "job", "trial", "age (s)", "reason", "action"):
            table.add_column(col)
        for p in problems:
            table.add_row(p.kind, f"{p.job} {p.search_id}", "" if p.trial_number is None else str(p.trial_number),
                          f"{p.age_seconds:.0f}", p.reason, p.action or ("" if fix else "run with --fix"))
        console.print(table)
    if not as_json:
        known = "" if not asked else f"; search workers: {'unknown (no broker)' if workers is None else workers}"
        err_console.print(f"{len(problems)} problem(s), {len(problems) - len(remaining)} fixed{known}")
    if remaining:
        raise typer.Exit(1)
