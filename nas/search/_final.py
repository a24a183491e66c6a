"""What a search reports as its result: the best network *within T*, confirmed by measurement.

The reward (MnasNet's soft reward in particular) may rank a network over T first; that is how the search
trades latency for accuracy while it explores, but a user who asked for T reads "best" as best within T.
So the result is the first network, in the search's own order of preference (reward; accuracy for a
Pareto search), that is within T, and the best-ranked network over T is reported beside it, as such.

"Within T" is decided, at the end, by measurement: the best ``latency.confirm`` networks within T are
timed again in one interleaved pass with T's reference (``_confirm``), and one whose ratio to the
reference exceeds 1 is over T, however it measured during the search (measurements there are minutes or
hours apart, and a predicted latency is a prediction). Until then, and for networks not re-measured,
the search's own latency decides, against T less the spec's margin. Verdicts are kept on the study
(``final_check``), keyed by network, so the API, reports and a resumed search read the same answer.
``mode: predicted`` searches also measure their top candidates every ``latency.recalibrate_every``
trials and refit the device's calibration with them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from nas.search._confirm import ConfirmOutcome, ConfirmRequest, NetworkTiming
from nas.search._context import SearchContext
from nas.search._evaluate import StudyRef
from nas.search._study import counted_trials, trial_key

if TYPE_CHECKING:
    import optuna

    from nas.search._executor import Executor

log = logging.getLogger(__name__)

FINAL_KEY = "final_check"
"""Study attribute: ``{"verdicts": {network key: verdict}, "passes": [...]}``."""
CALIBRATION_KEY = "calibration_measured"
"""Study attribute (``mode: predicted``): ``{"networks": {key: timing}, "at_trials": n, "refits": [...]}``."""
MAX_ROUNDS = 3
"""Passes of the final check at most: each re-measures the next ``confirm`` networks when none held."""

Status = Callable[[str], None]


def complete(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    from optuna.trial import TrialState

    return [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if "accuracy" in t.user_attrs and "latency_ms" in t.user_attrs]


def preference(ctx: SearchContext, trials: list[optuna.trial.FrozenTrial]) -> list[optuna.trial.FrozenTrial]:
    """Best first: by reward; a Pareto search by accuracy, then latency."""
    if ctx.pareto:
        return sorted(trials, key=lambda t: (-t.user_attrs["accuracy"], t.user_attrs["latency_ms"], t.number))
    return sorted(trials, key=lambda t: (-t.user_attrs.get("reward", float("-inf")), t.number))


def verdicts(study: optuna.Study) -> dict[str, dict[str, Any]]:
    return dict((study.user_attrs.get(FINAL_KEY) or {}).get("verdicts", {}))


def within_target(ctx: SearchContext, trial: optuna.trial.FrozenTrial,
                  checked: dict[str, dict[str, Any]] | None = None) -> bool:
    """The final measurement's verdict where there is one, else the search's latency against its budget."""
    verdict = (checked if checked is not None else verdicts(ctx.study)).get(trial_key(trial) or "")
    if verdict is not None:
        return bool(verdict["within"])
    return float(trial.user_attrs["latency_ms"]) <= ctx.budget_ms


def confirm_best(ctx: SearchContext, executor: Executor, status: Status | None = None) -> None:
    """Re-measure the best networks within T (``latency.confirm`` per pass) until the best-ranked one within
    T is one a pass confirmed, or ``MAX_ROUNDS`` passes; verdicts go to the study's ``final_check``."""
    n = ctx.spec.latency.confirm
    if n == 0:
        return
    checked = verdicts(ctx.study)
    order = _distinct(preference(ctx, complete(ctx.study)))
    for _ in range(MAX_ROUNDS):
        first = next((t for t in order if within_target(ctx, t, checked)), None)
        if first is None or trial_key(first) in checked:
            break
        batch = [t for t in order if trial_key(t) not in checked
                 and float(t.user_attrs["latency_ms"]) <= ctx.budget_ms][:n]
        if status is not None:
            status(f"measuring the best {len(batch)} network(s) again with T's reference on {ctx.spec.device}")
        outcome = _measure(ctx, executor, batch, key="final", recalibrate=ctx.spec.latency.mode == "predicted")
        for t, timing in zip(batch, outcome.networks, strict=True):
            checked[trial_key(t) or ""] = verdict(ctx, t, timing, outcome.reference)
        passes = [*(ctx.study.user_attrs.get(FINAL_KEY) or {}).get("passes", []),
                  {"trials": [t.number for t in batch], "reference": _dump(outcome.reference),
                   "refits": outcome.refits}]
        ctx.study.set_user_attr(FINAL_KEY, {"verdicts": checked, "passes": passes})
        for t in batch:
            v = checked[trial_key(t) or ""]
            log.info("trial %d measured again: %.3f ms = %.3f x T (%s)", t.number, v["latency_ms"], v["ratio"],
                     "within T" if v["within"] else "over T")


def recalibrate(ctx: SearchContext, executor: Executor, status: Status | None = None) -> None:
    """``mode: predicted``: every ``recalibrate_every`` finished trials, measure the top ``confirm`` (at
    least 1) candidates not measured yet and refit the device's calibration with them."""
    every = ctx.spec.latency.recalibrate_every
    if ctx.spec.latency.mode != "predicted" or every == 0:
        return
    done = counted_trials(ctx.study)
    state = dict(ctx.study.user_attrs.get(CALIBRATION_KEY) or {"networks": {}, "at_trials": 0, "refits": []})
    if done // every <= int(state["at_trials"]) // every:
        return
    measured = state["networks"]
    batch = [t for t in _distinct(preference(ctx, complete(ctx.study))) if trial_key(t) not in measured]
    batch = batch[:max(ctx.spec.latency.confirm, 1)]
    if batch:
        if status is not None:
            status(f"measuring {len(batch)} top candidate(s) on {ctx.spec.device} to refit its calibration")
        outcome = _measure(ctx, executor, batch, key=f"calibration.{done}", recalibrate=True, reference=False)
        for t, timing in zip(batch, outcome.networks, strict=True):
            measured[trial_key(t) or ""] = {"trial": t.number, **timing.model_dump(mode="json")}
            log.info("trial %d: predicted %.3f ms, measured %.3f ms, predicted after the refit %.3f ms", t.number,
                     timing.predicted_ms or float("nan"), timing.median_ms, timing.repredicted_ms or float("nan"))
        state["refits"] = [*state["refits"], *outcome.refits]
    state.update(networks=measured, at_trials=done)
    ctx.study.set_user_attr(CALIBRATION_KEY, state)


def verdict(ctx: SearchContext, trial: optuna.trial.FrozenTrial, timing: NetworkTiming,
            reference: NetworkTiming | None) -> dict[str, Any]:
    """Within T by this pass: the ratio to the reference timed beside it (T = the reference's latency), or,
    when T was given in ms, the median against it. Latencies are on T's scale (ratio x T)."""
    target = ctx.target_ms
    scale = target / reference.median_ms if reference is not None else 1.0
    ratio = timing.median_ms * scale / target
    return {"trial": trial.number, "within": ratio <= 1.0, "ratio": round(ratio, 5),
            "latency_ms": timing.median_ms * scale, "p10_ms": timing.p10_ms * scale,
            "p90_ms": timing.p90_ms * scale, "runs": timing.runs, "target_ms": target,
            "raw_median_ms": timing.median_ms,
            "reference_median_ms": reference.median_ms if reference is not None else None,
            "reference_p10_ms": reference.p10_ms if reference is not None else None,
            "reference_p90_ms": reference.p90_ms if reference is not None else None}


def _measure(ctx: SearchContext, executor: Executor, batch: list[optuna.trial.FrozenTrial], *, key: str,
             recalibrate: bool, reference: bool = True) -> ConfirmOutcome:
    ref = ctx.spec.latency.reference_architecture if reference else None
    if ref is not None:
        ref = ref.with_(resolution=ctx.reference_resolution, num_classes=ctx.num_classes)
    numbers = "-".join(str(t.number) for t in batch)
    where = StudyRef(storage_url=ctx.storage_url, study_name=ctx.study.study_name,
                     key=f"outcome.confirm.{key}.{numbers}")
    return executor.confirm(ConfirmRequest(architectures=[t.user_attrs["architecture"] for t in batch],
                                           reference=ref.model_dump(mode="json") if ref is not None else None,
                                           device=ctx.spec.device, recalibrate=recalibrate, study=where))


def _distinct(trials: list[optuna.trial.FrozenTrial]) -> list[optuna.trial.FrozenTrial]:
    """One trial per network (duplicates share their first trial's facts)."""
    seen: set[str] = set()
    out = []
    for t in trials:
        key = trial_key(t) or str(t.number)
        if key not in seen:
            seen.add(key)
            out.append(t)
    return out


def _dump(timing: NetworkTiming | None) -> dict[str, Any] | None:
    return timing.model_dump(mode="json") if timing is not None else None
