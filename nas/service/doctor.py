"""``nas doctor``: find work the service lost track of, from the database alone, and send it again.

Four kinds of problem:

- a *stuck search*: marked running, but its driver has not written (progress or heartbeat) for
  ``stuck_after`` seconds, so its driver died and nothing will redeliver it (e.g. Redis lost the message);
- an *orphaned trial*: RUNNING in its study, its tasks sent more than ``orphan_after`` seconds ago (the
  broker's visibility timeout) and no outcome arrived, so the broker lost them or a task died silently;
- a *queued search* nobody claimed for ``queued_after`` seconds (no search worker, or a lost message);
- a *stuck* or *queued* supernet or training (``POST /supernets``, ``POST /trainings``): the same two
  tests on their rows (a trainer renews its lease every few seconds while it lives);
- a *dead device*: a running search's trials (or its target T) wait for latency on ``latency.<profile>``
  and no worker of that profile heartbeat within the device TTL; nothing can be re-sent, a worker must
  be started on the device (the search fails after ``NAS_DEVICE_WAIT`` without one).

Fixing re-sends the search task (a driver resumes the study; interrupted trials are re-run) or the
trial's missing tasks, under the same task ids: work is idempotent by search and trial id, so a resend
that turns out unnecessary is a harmless duplicate. Sending goes through a ``Dispatcher`` supplied by the
caller, because the library does not import ``workers/``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Protocol

from nas.service._models import utcnow
from nas.service.spec_jobs import JobRecord, SpecJobs
from nas.service.store import SearchRecord, SearchStatus, list_searches, live_devices
from nas.service.trial_tasks import TASK_KEY, missing_outcomes, task_ids, task_payloads

if TYPE_CHECKING:
    import optuna

log = logging.getLogger(__name__)

STUCK, ORPHANED, QUEUED, DEAD_DEVICE = "stuck-search", "orphaned-trial", "queued-search", "dead-device"
STUCK_JOB, QUEUED_JOB = "stuck-job", "queued-job"


class Dispatcher(Protocol):
    """Sends tasks by name (``workers.dispatch`` in the service)."""

    def search(self, search_id: str) -> None: ...

    def train(self, payload: dict[str, Any], task_id: str) -> None: ...

    def latency(self, payload: dict[str, Any], task_id: str) -> None: ...

    def job(self, noun: str, job_id: str) -> None:
        """Queue a supernet's or a training's task again (``noun``: "supernet" or "training")."""


@dataclass(frozen=True)
class Problem:
    kind: str
    search_id: str
    """The search's id, or the supernet's or training's (``job`` says which)."""
    trial_number: int | None
    age_seconds: float
    reason: str
    action: str | None = None
    """What ``fix`` did; None when nothing was done."""
    fixed: bool = False
    job: str = "search"

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "age_seconds": round(self.age_seconds, 1)}


@dataclass(frozen=True)
class Thresholds:
    stuck_after: float = 600.0
    orphan_after: float = 6 * 3600.0
    queued_after: float = 300.0
    device_ttl: float = 60.0


def diagnose(url: str, limits: Thresholds, *,
             search_workers: Callable[[], int | None] = lambda: None) -> list[Problem]:
    """Every problem in the database now. ``search_workers``: how many workers serve the ``search`` queue
    (None: unknown); asked only when a search is queued, since asking the broker takes a while."""
    now = utcnow()
    problems: list[Problem] = []
    queued = _searches(url, SearchStatus.queued)
    workers = search_workers() if queued else None
    for record in queued:
        age = _age(now, record.created_at)
        if age > limits.queued_after or workers == 0:
            why = "no search worker is running" if workers == 0 else "no search worker has claimed it"
            problems.append(Problem(QUEUED, record.id, None, age, f"queued for {age:.0f} s: {why}"))
    running = _searches(url, SearchStatus.running)
    now = utcnow()  # after the read: a driver renewing its lease meanwhile must not look younger than 0 s
    live = {d.profile for d in live_devices(url, limits.device_ttl)} if running else set()
    for record in running:
        age = _age(now, record.updated_at)
        if age > limits.stuck_after:
            problems.append(Problem(STUCK, record.id, None, age,
                                    f"running, but its driver ({record.worker or 'unknown'}) has not reported "
                                    f"for {age:.0f} s"))
        problems.extend(_orphans(url, record, limits.orphan_after))
        device = str(record.spec.get("device", ""))
        if device not in live:
            problems.extend(_waiting_on_device(url, record, device))
    return problems + _lost_jobs(url, limits)


def _lost_jobs(url: str, limits: Thresholds) -> list[Problem]:
    """Supernets and trainings nobody claimed, or whose trainer stopped renewing its lease."""
    from nas.service.supernets import SUPERNETS
    from nas.service.trainings import TRAININGS

    problems = []
    for jobs in (SUPERNETS, TRAININGS):
        for record in _rows(jobs, url, SearchStatus.queued):
            age = _age(utcnow(), record.created_at)
            if age > limits.queued_after:
                problems.append(Problem(QUEUED_JOB, record.id, None, age, f"{jobs.noun} {record.name}: queued for "
                                        f"{age:.0f} s: no train worker has claimed it", job=jobs.noun))
        for record in _rows(jobs, url, SearchStatus.running):
            age = _age(utcnow(), record.updated_at)
            if age > limits.stuck_after:
                problems.append(Problem(STUCK_JOB, record.id, None, age, f"{jobs.noun} {record.name}: running, but "
                                        f"its trainer ({record.worker or 'unknown'}) has not reported for {age:.0f} s",
                                        job=jobs.noun))
    return problems


def fix(url: str, problems: list[Problem], dispatcher: Dispatcher, *,
        search_workers: int | None = None) -> list[Problem]:
    """Send again what each problem lost; returns the problems with ``action`` and ``fixed`` filled in."""
    resumed = {p.search_id for p in problems if p.kind in (STUCK, QUEUED)}
    done: list[Problem] = []
    for p in problems:
        if p.kind in (STUCK_JOB, QUEUED_JOB):
            dispatcher.job(p.job, p.search_id)
            done.append(replace(p, action=f"re-sent the {p.job} task (a train worker resumes it from its last "
                                          "stored checkpoint)", fixed=True))
        elif p.kind == DEAD_DEVICE:
            done.append(replace(p, action="nothing to re-send: a latency worker must be started on the device"))
        elif p.kind in (STUCK, QUEUED):
            dispatcher.search(p.search_id)
            action = "re-sent the search task (a worker resumes it; interrupted trials are re-run)"
            if search_workers == 0:
                done.append(replace(p, action=action + "; start a search worker: nas worker -Q search"))
                continue
            done.append(replace(p, action=action, fixed=True))
        elif p.search_id in resumed:
            done.append(replace(p, action="left to the resumed search (it re-runs interrupted trials)", fixed=True))
        else:
            done.append(_resend_trial(url, p, dispatcher))
    return done


@lru_cache(maxsize=4)
def _storage(url: str) -> optuna.storages.RDBStorage:
    from nas.search._study import rdb_storage

    return rdb_storage(url)


def _resend_trial(url: str, p: Problem, dispatcher: Dispatcher) -> Problem:
    storage = _storage(url)
    study_id = storage.get_study_id_from_name(f"search-{p.search_id}")
    trial = next(t for t in storage.get_all_trials(study_id, deepcopy=False) if t.number == p.trial_number)
    record = trial.user_attrs.get(TASK_KEY)
    missing = missing_outcomes(trial.user_attrs)
    if trial.state.name != "RUNNING" or not missing:
        return replace(p, action="its outcome arrived meanwhile", fixed=True)
    if record is None:
        return replace(p, action="cannot re-send: no task was recorded for it")
    train, latency = task_payloads(record, url)
    train_id, latency_id = task_ids(f"search-{p.search_id}", trial._trial_id)
    storage.set_trial_user_attr(trial._trial_id, TASK_KEY, {**record, "sent_at": time.time()})
    if "train" in missing:
        dispatcher.train(train, train_id)
    if "latency" in missing:
        dispatcher.latency(latency, latency_id)
    return replace(p, action=f"re-sent its {' and '.join(missing)} task(s)", fixed=True)


def _orphans(url: str, record: SearchRecord, orphan_after: float) -> list[Problem]:
    from optuna.trial import TrialState

    storage = _storage(url)
    try:
        study_id = storage.get_study_id_from_name(record.study_name)
    except KeyError:  # the driver has not created its study yet
        return []
    found = []
    for t in storage.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,)):
        missing = missing_outcomes(t.user_attrs)
        sent = t.user_attrs.get(TASK_KEY, {}).get("sent_at")
        if not missing or sent is None:  # complete outcomes: the driver records them on its next poll
            continue
        age = time.time() - float(sent)
        if age > orphan_after:
            found.append(Problem(ORPHANED, record.id, t.number, age,
                                 f"trial {t.number}: no {' or '.join(missing)} outcome {age:.0f} s after its "
                                 "tasks were sent"))
    return found


def _waiting_on_device(url: str, record: SearchRecord, device: str) -> list[Problem]:
    """Trials of a running search (and its T) that wait for a latency nobody can measure now."""
    from optuna.trial import TrialState

    from nas.service.store import device_last_seen

    storage = _storage(url)
    try:
        study_id = storage.get_study_id_from_name(record.study_name)
    except KeyError:
        return []
    seen = device_last_seen(url, device)
    when = ("no worker of it ever registered" if seen is None
            else f"its last worker was seen {seen:%Y-%m-%d %H:%M:%S} UTC")
    waiting: list[tuple[int | None, float]] = []
    if "target_ms" not in storage.get_study_user_attrs(study_id) and record.spec.get("latency", {}).get(
            "target_reference"):
        waiting.append((None, _age(utcnow(), record.started_at or record.updated_at)))
    for t in storage.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,)):
        sent = t.user_attrs.get(TASK_KEY, {}).get("sent_at")
        if sent is not None and "latency" in missing_outcomes(t.user_attrs):
            waiting.append((t.number, time.time() - float(sent)))
    return [Problem(DEAD_DEVICE, record.id, number, age,
                    f"{'T' if number is None else f'trial {number}'} waits for latency.{device}, which has no "
                    f"live worker ({when}; start one: nas worker --device {device})") for number, age in waiting]


def _searches(url: str, status: SearchStatus) -> list[SearchRecord]:
    records: list[SearchRecord] = []
    while True:
        page, total = list_searches(url, None, status, offset=len(records), limit=500)
        records.extend(page)
        if not page or len(records) >= total:
            return records


def _rows(jobs: SpecJobs[Any], url: str, status: SearchStatus) -> list[JobRecord]:
    records: list[JobRecord] = []
    while True:
        page, total = jobs.list(url, None, offset=len(records), limit=500, status=status)
        records.extend(page)
        if not page or len(records) >= total:
            return records


def _age(now: datetime, then: datetime) -> float:
    return max((now - then).total_seconds(), 0.0)
