"""Optuna studies in the service's own database: creation, resume checks and trial records."""

from __future__ import annotations

import hashlib
import json
import logging
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from nas.errors import SearchError
from nas.search._spec import PrunerSpec, SearchSpec

if TYPE_CHECKING:
    import optuna

log = logging.getLogger(__name__)

FINISHED_STATES = ("COMPLETE", "PRUNED", "FAIL")


@lru_cache(maxsize=8)
def rdb_storage(url: str) -> optuna.storages.RDBStorage:
    """Optuna's RDB storage on the same database as the service (SQLite gets a busy timeout).

    One per process and URL (the storage is thread-safe): each new one checks Optuna's schema and opens
    its own connection pool, and a search worker running hundreds of searches ran PostgreSQL out of
    connections before the garbage collector closed the old pools."""
    import optuna

    from nas.storage import forget_after_fork, schema_lock

    kwargs: dict[str, Any] = {"pool_pre_ping": True, "pool_size": 5, "max_overflow": 5}
    if url.startswith("sqlite"):
        kwargs = {"connect_args": {"timeout": 60}}
    with schema_lock(url):  # its first use of a database creates Optuna's tables
        storage = optuna.storages.RDBStorage(url, engine_kwargs=kwargs)
    forget_after_fork(storage.engine, rdb_storage.cache_clear)
    return storage


# Spec fields added after studies already existed: left out of the digest at their default, so a study
# created before the field can still be resumed (``confirm`` and ``recalibrate_every`` change how the
# result is checked, not the trials already recorded).
_ADDED_LATER: dict[tuple[str, str], object] = {("latency", "margin"): 0.0, ("latency", "confirm"): 3,
                                               ("latency", "recalibrate_every"): 10}


def spec_digest(spec: SearchSpec) -> str:
    """What must not change between a run and its resume (the budget may grow, nothing else)."""
    body = spec.model_dump(mode="json", exclude={"budget"})
    for (section, key), default in _ADDED_LATER.items():
        if body[section].get(key) == default:
            del body[section][key]
    if body["latency"]["resolution"] is None:  # optional since; the same search as naming the space's only one
        body["latency"]["resolution"] = _only_resolution(spec)
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]


def _only_resolution(spec: SearchSpec) -> int | None:
    from nas.spaces import load_space, parse_space

    space = parse_space(spec.space, "spec.space") if isinstance(spec.space, dict) else load_space(spec.space)
    choices = space.definition.resolution
    return choices[0] if len(choices) == 1 else None


def open_study(spec: SearchSpec, study_name: str, storage_url: str, directions: list[str],
               sampler: optuna.samplers.BaseSampler, pruner: optuna.pruners.BasePruner) -> optuna.Study:
    """Create the study, or reopen it for a resume after checking the spec is the same search."""
    import optuna

    study = optuna.create_study(study_name=study_name, storage=rdb_storage(storage_url),
                                directions=directions,  # type: ignore[arg-type]
                                sampler=sampler, pruner=pruner, load_if_exists=True)
    digest = spec_digest(spec)
    stored = study.user_attrs.get("spec_digest")
    if stored is None:
        study.set_user_attr("spec_digest", digest)
        study.set_user_attr("spec", spec.model_dump(mode="json"))
    elif stored != digest:
        raise SearchError(f"study {study_name!r} exists with a different spec; resume needs the same spec "
                          "(only the budget may change) or pick another name")
    return study


def make_pruner(p: PrunerSpec, epochs: int, *, pareto: bool = False) -> optuna.pruners.BasePruner:
    """Optuna keeps no pruner in storage: the driver and every worker build it from the spec.

    In a Pareto search ``median`` is :class:`~nas.search._pareto_pruner.ParetoPruner` (the median of the
    trials at least as fast); the spec refuses hyperband there."""
    import optuna

    if pareto and p.name == "median":
        from nas.search._pareto_pruner import ParetoPruner

        return ParetoPruner(percentile=50.0, n_startup_trials=p.startup_trials, n_warmup_steps=p.warmup_epochs,
                            final_step=epochs)
    if pareto:
        return optuna.pruners.NopPruner()
    if p.name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=p.startup_trials, n_warmup_steps=p.warmup_epochs)
    if p.name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max(epochs, 1))
    return optuna.pruners.NopPruner()


def prunes_before_the_end(p: PrunerSpec, epochs: int) -> bool:
    """Whether this pruner can stop a candidate early in a Pareto search, where it needs the candidate's
    latency before training: some epoch at or after the warm-up and before the last one."""
    return p.name != "none" and max(p.warmup_epochs, 1) < epochs


def recover_interrupted(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """Trials left RUNNING by a killed or interrupted driver: mark them failed-and-interrupted (they do not
    count against the budget) and return them so the strategy can re-propose the same candidates."""
    from optuna.trial import TrialState

    stale = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    for t in stale:
        study._storage.set_trial_user_attr(t._trial_id, "interrupted", True)
        study.tell(t.number, state=TrialState.FAIL)
        log.warning("trial %d was interrupted; it will be evaluated again", t.number)
    return list(stale)


def counted_trials(study: optuna.Study) -> int:
    """Trials that used budget: finished ones, excluding interrupted ones that are re-run."""
    from optuna.trial import TrialState

    states = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
    return sum(1 for t in study.get_trials(deepcopy=False, states=states) if not t.user_attrs.get("interrupted"))


def candidate_key(arch_hash: str, resolution: int) -> str:
    """What makes two candidates the same evaluation: the network (its hash leaves the input resolution
    out) at the same deployment resolution, which changes its latency and its proxy training."""
    return f"{arch_hash}@{resolution}"


def trial_key(t: optuna.trial.FrozenTrial) -> str | None:
    """The ``candidate_key`` of a recorded trial, or None for one without an architecture."""
    if "arch_hash" not in t.user_attrs:
        return None
    return candidate_key(t.user_attrs["arch_hash"], int(t.user_attrs["architecture"]["resolution"]))


def completed_by_hash(study: optuna.Study) -> dict[str, optuna.trial.FrozenTrial]:
    """Completed trials by ``candidate_key``."""
    from optuna.trial import TrialState

    found = ((trial_key(t), t) for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
    return {key: t for key, t in found if key is not None}


def end_running(storage_url: str, study_name: str, reason: str) -> list[int]:
    """Mark every RUNNING trial of a study failed with ``reason`` (e.g. "cancelled"): the final state a
    stopped search leaves them in. Their tasks see it at their next epoch and stop. Returns their numbers."""
    import optuna
    from optuna.trial import TrialState

    storage = rdb_storage(storage_url)
    try:
        study_id = storage.get_study_id_from_name(study_name)
    except KeyError:  # stopped before its study existed
        return []
    ended = []
    for t in storage.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,)):
        try:
            storage.set_trial_user_attr(t._trial_id, "error", reason)
            storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
        except optuna.exceptions.UpdateFinishedTrialError:  # it finished meanwhile
            continue
        ended.append(t.number)
    return ended
