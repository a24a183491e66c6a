"""What every trial records as user attributes, so the dashboard, the API and a resume see the same facts."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from nas.arch import to_string
from nas.cost import estimate
from nas.search._context import SearchContext
from nas.search._evaluate import LatencyOutcome, TrainOutcome
from nas.search._executor import Job, JobResult

if TYPE_CHECKING:
    import optuna

    from nas.strategies import Proposal

log = logging.getLogger(__name__)


def record_proposal(ctx: SearchContext, p: Proposal, strategy: str) -> None:
    cost = estimate(p.arch).total
    attrs: dict[str, Any] = {
        "architecture": p.arch.model_dump(mode="json"), "arch_hash": p.arch.hash, "arch_string": to_string(p.arch),
        "params": cost.params, "macs": cost.macs, "memory_access_cost": cost.memory_access_cost,
        "strategy": strategy, "device": ctx.spec.device, **p.attrs,
    }
    for key, value in attrs.items():
        p.trial.set_user_attr(key, value)


def record_result(ctx: SearchContext, p: Proposal, result: JobResult) -> None:
    """Store the measured facts first, then tell the study (constraints read ``latency_ms`` on tell)."""
    from optuna.trial import TrialState

    trial = p.trial
    if result.error is not None or result.latency is None or result.train is None:
        trial.set_user_attr("error", result.error or "no result")
        ctx.study.tell(trial, state=TrialState.FAIL)
        log.warning("trial %d failed: %s", trial.number, result.error)
        return
    lat, tr = result.latency, result.train
    for key, value in _facts(lat, tr).items():
        trial.set_user_attr(key, value)
    if ctx.pareto:
        trial.set_constraint("latency_over_target_ms", lat.ms - ctx.budget_ms)
    if tr.diverged:
        trial.set_user_attr("error", "training diverged (non-finite loss)")
        ctx.study.tell(trial, state=TrialState.FAIL)
    elif tr.pruned:
        ctx.study.tell(trial, state=TrialState.PRUNED)
    else:
        values = ctx.reward.objectives(tr.accuracy, lat.ms)
        if not ctx.pareto:
            trial.set_user_attr("reward", values[0])
        ctx.study.tell(trial, list(values))


def _facts(lat: LatencyOutcome, tr: TrainOutcome) -> dict[str, Any]:
    return {
        "accuracy": tr.accuracy, "val_accuracy": tr.val_accuracy, "epochs_run": tr.epochs_run,
        "train_seconds": round(tr.train_seconds, 3), "train_device": tr.device, "inherited": tr.inherited,
        "checkpoint": tr.checkpoint, "latency_ms": lat.ms, "latency_source": lat.source,
        "latency_p10_ms": lat.p10_ms, "latency_p90_ms": lat.p90_ms, "latency_runs": lat.runs,
        "fingerprint": lat.fingerprint, "train": tr.model_dump(mode="json"),
        "latency": lat.model_dump(mode="json"),
    }


def record_duplicate(ctx: SearchContext, p: Proposal, earlier: optuna.trial.FrozenTrial) -> JobResult:
    """A candidate already evaluated: reuse its facts instead of training it again."""
    record_proposal(ctx, p, earlier.user_attrs.get("strategy", ""))
    p.trial.set_user_attr("duplicate_of", earlier.number)
    result = result_from_trial(earlier)
    record_result(ctx, p, result)
    return result


def result_from_trial(t: optuna.trial.FrozenTrial) -> JobResult:
    """Rebuild an evaluation result from a trial's records (duplicates, resumes)."""
    train = TrainOutcome.model_validate(t.user_attrs["train"])
    latency = LatencyOutcome.model_validate(t.user_attrs["latency"])
    return JobResult(job=Job(t.number, None, None), latency=latency, train=train)  # type: ignore[arg-type]
