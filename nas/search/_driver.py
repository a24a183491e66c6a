"""The search driver: ask the strategy, evaluate through an executor, record and tell, until the budget ends.

Runs the same in-process (``nas run``, SQLite, local executor) and in the ``search`` Celery worker
(Celery executor). All state is in the Optuna study, so a killed or interrupted driver resumes by
running again with the same spec and study name.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from nas.rewards import RewardSpec
from nas.search._context import SearchContext
from nas.search._evaluate import LatencyRequest, TrainRequest, TrialRef, dataset_classes
from nas.search._executor import Executor, Job, JobResult, LocalExecutor
from nas.search._final import confirm_best, recalibrate
from nas.search._records import record_duplicate, record_proposal, record_result
from nas.search._spec import SearchSpec
from nas.search._study import (
    candidate_key,
    completed_by_hash,
    counted_trials,
    make_pruner,
    open_study,
    prunes_before_the_end,
    recover_interrupted,
    trial_key,
)

if TYPE_CHECKING:
    from nas.strategies import Proposal, Strategy

log = logging.getLogger(__name__)


@dataclass
class SearchProgress:
    finished: int
    budget_trials: int | None
    running: int
    elapsed_seconds: float
    best_value: float | None
    best_trial: int | None
    message: str = ""


ProgressCallback = Callable[[SearchProgress], None]


def build_context(spec: SearchSpec, strategy: Strategy, *, study_name: str, storage_url: str,
                  run_dir: Path, executor: Executor | None = None) -> SearchContext:
    from nas.search._target import resolve_target
    from nas.spaces import load_space, parse_space

    space = parse_space(spec.space, "spec.space") if isinstance(spec.space, dict) else load_space(spec.space)
    num_classes = dataset_classes(spec.proxy.dataset)
    reward_probe = RewardSpec(kind=spec.reward.kind, target_ms=1.0, alpha=spec.reward.alpha, beta=spec.reward.beta)
    ctx = SearchContext(spec=spec, study=None, space=space, num_classes=num_classes,  # type: ignore[arg-type]
                        target_ms=0.0, reward=reward_probe, storage_url=storage_url, run_dir=run_dir,
                        executor=executor)
    ctx.study = open_study(spec, study_name, storage_url, reward_probe.directions, strategy.create_sampler(ctx),
                           make_pruner(spec.proxy.pruner, spec.proxy.recipe.epochs, pareto=ctx.pareto))
    ctx.target_ms = resolve_target(ctx, executor or LocalExecutor())
    ctx.study.set_user_attr("budget_ms", ctx.budget_ms)  # what the API and reports judge the best against
    ctx.reward = RewardSpec(kind=spec.reward.kind, target_ms=ctx.budget_ms, alpha=spec.reward.alpha,
                            beta=spec.reward.beta)
    return ctx


def run_search(spec: SearchSpec, *, study_name: str | None = None, storage_url: str | None = None,
               run_dir: Path | None = None, executor: Executor | None = None,
               on_progress: ProgressCallback | None = None) -> SearchContext:
    """Run (or resume) the search to the end of its budget; returns the context holding the study."""
    from nas.settings import get_settings
    from nas.strategies import make_strategy

    settings = get_settings()
    study_name = study_name or spec.name
    storage_url = storage_url or settings.resolved_database_url()
    run_dir = run_dir or settings.home / "searches" / study_name
    run_dir.mkdir(parents=True, exist_ok=True)
    strategy = make_strategy(spec)
    executor = executor or LocalExecutor()
    started, prior = time.monotonic(), 0.0
    opened: list[SearchContext] = []  # the context, once built (T may take a while to measure first)

    def elapsed() -> float:
        return prior + time.monotonic() - started

    def progress(message: str = "", running: int = 0) -> None:
        if on_progress is None:
            return
        if not opened:
            on_progress(SearchProgress(0, spec.budget.trials, running, elapsed(), None, None, message))
            return
        best = _best(opened[0])
        on_progress(SearchProgress(counted_trials(opened[0].study), spec.budget.trials, running, elapsed(),
                                   best[1] if best else None, best[0] if best else None, message))

    executor.watch(progress)
    ctx = build_context(spec, strategy, study_name=study_name, storage_url=storage_url, run_dir=run_dir,
                        executor=executor)
    opened.append(ctx)
    if ctx.study.get_trials(deepcopy=False):
        # A resume: a sampler seeded as in the first run would propose that run's first candidates again,
        # each then a duplicate that uses budget without evaluating anything new.
        ctx.study.sampler.reseed_rng()
    stale = recover_interrupted(ctx.study)
    if stale:
        strategy.resume(ctx, stale)
    prior = float(ctx.study.user_attrs.get("elapsed_seconds", 0.0))  # earlier runs'; this one counts from its start
    log.info("search %s: %s on %s, target %.3f ms (searching within %.3f ms), %d trials done", study_name,
             strategy.name, spec.device, ctx.target_ms, ctx.budget_ms, counted_trials(ctx.study))
    # One scan of the study, then kept current as results come in: a scan per proposal made a search
    # quadratic in its trials.
    by_hash = completed_by_hash(ctx.study)

    def remember(p: Proposal) -> None:
        from optuna.trial import TrialState

        trial = ctx.study._storage.get_trial(p.trial._trial_id)
        key = trial_key(trial)
        if trial.state is TrialState.COMPLETE and key is not None:
            by_hash[key] = trial

    try:
        progress("started")
        while True:
            remaining = _remaining(ctx, elapsed())
            if remaining <= 0 or strategy.finished(ctx):
                break
            proposals = strategy.ask(ctx, min(executor.parallelism, remaining))
            if not proposals:
                break
            jobs, by_number = [], {}
            for p in proposals:
                by_number[p.trial.number] = p
                key = candidate_key(p.arch.hash, p.arch.resolution)
                earlier = by_hash.get(key) if not p.init_checkpoint else None
                if earlier is not None:
                    result = record_duplicate(ctx, p, earlier)
                    remember(p)
                    strategy.tell(ctx, p, result)
                    continue
                record_proposal(ctx, p, strategy.name)
                jobs.append(_job(ctx, p))
            progress(f"evaluating {len(jobs)} candidate(s)", running=len(jobs))
            for result in executor.run(jobs):
                proposal = by_number[result.job.trial_number]
                record_result(ctx, proposal, result)
                remember(proposal)
                strategy.tell(ctx, proposal, result)
                ctx.study.set_user_attr("elapsed_seconds", elapsed())
                _prune_checkpoints(ctx, strategy)
                progress(f"trial {result.job.trial_number} finished")
            recalibrate(ctx, executor, progress)
        confirm_best(ctx, executor, progress)
    except KeyboardInterrupt:
        stale = recover_interrupted(ctx.study)
        strategy.resume(ctx, stale)
        ctx.study.set_user_attr("elapsed_seconds", elapsed())
        log.warning("interrupted: %d trial(s) will be re-run when the search is resumed", len(stale))
        raise
    finally:
        executor.close()
    strategy.finish(ctx)
    ctx.study.set_user_attr("elapsed_seconds", elapsed())
    progress("finished")
    return ctx


def _remaining(ctx: SearchContext, elapsed: float) -> int:
    budget = ctx.spec.budget
    if budget.seconds is not None and elapsed >= budget.seconds:
        return 0
    if budget.trials is None:
        return 1_000_000
    return budget.trials - counted_trials(ctx.study)


def _job(ctx: SearchContext, p: Proposal) -> Job:
    recipe = ctx.spec.proxy.recipe.model_copy(update={"resolution": ctx.proxy_resolution(p.arch)})
    if p.epochs is not None:
        recipe = recipe.model_copy(update={"epochs": p.epochs})
    arch_doc = p.arch.model_dump(mode="json")
    report = p.epochs is None
    pruner = ctx.spec.proxy.pruner
    prunes = report and prunes_before_the_end(pruner, recipe.epochs)
    train = TrainRequest(storage_url=ctx.storage_url, study_name=ctx.study.study_name, trial_id=p.trial._trial_id,
                         trial_number=p.trial.number, architecture=arch_doc, dataset=ctx.spec.proxy.dataset,
                         recipe=recipe, report=report, pruner=pruner,
                         pareto_pruning=ctx.pareto and prunes, reward=ctx.reward if prunes and not ctx.pareto else None,
                         init_checkpoint=p.init_checkpoint,
                         save_checkpoint=ctx.checkpoint_name(p.trial.number),
                         supernet=ctx.spec.proxy.supernet)
    ref = TrialRef(storage_url=ctx.storage_url, study_name=ctx.study.study_name, trial_id=p.trial._trial_id,
                   trial_number=p.trial.number)
    latency = LatencyRequest(architecture=arch_doc, device=ctx.spec.device, mode=ctx.spec.latency.mode, trial=ref)
    return Job(p.trial.number, train, latency)


def _best(ctx: SearchContext) -> tuple[int, float] | None:
    from nas.search._results import best_trial

    best = best_trial(ctx)
    if best is None:
        return None
    return best.number, float(best.user_attrs.get("reward", best.user_attrs.get("accuracy", 0.0)))


def _contenders(ctx: SearchContext) -> set[int]:
    """Trials the final check may still choose (``_final.confirm_best``): the best-ranked ones within T."""
    from nas.search._final import MAX_ROUNDS, complete, preference, within_target

    ranked = [t for t in preference(ctx, complete(ctx.study)) if within_target(ctx, t)]
    return {t.number for t in ranked[:max(ctx.spec.latency.confirm, 1) * MAX_ROUNDS]}


def _prune_checkpoints(ctx: SearchContext, strategy: Strategy) -> None:
    """Keep weights only where someone will ask for them: the best, the Pareto front, the strategy's own."""
    from optuna.trial import TrialState

    from nas.search._results import pareto_trials
    from nas.service.artifacts import CHECKPOINTS, checkpoint_trial, delete_artifacts, list_artifacts

    running = {t.number for t in ctx.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))}
    keep = {t.number for t in pareto_trials(ctx)} | strategy.pinned_trials(ctx) | running | _contenders(ctx)
    best = _best(ctx)
    if best is not None:
        keep.add(best[0])
    stored = list_artifacts(ctx.storage_url, ctx.study.study_name, prefix=CHECKPOINTS)
    delete_artifacts(ctx.storage_url, ctx.study.study_name,
                     [a.name for a in stored if checkpoint_trial(a.name) not in keep])


__all__ = ["JobResult", "ProgressCallback", "SearchProgress", "build_context", "run_search"]
