"""Strategies that draw every choice of the space from an Optuna sampler: random, TPE, NSGA-II, evolution."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from nas.strategies._base import Proposal, Strategy

if TYPE_CHECKING:
    import optuna

    from nas.search._context import SearchContext


class SampledStrategy(Strategy):
    """Ask the study for a trial, suggest every dimension of the space, decode it into an architecture.

    Every dimension is suggested on every trial (even blocks beyond the chosen depth), so the search
    space is static and Optuna's relative samplers (multivariate TPE, NSGA-II) see all of it.
    """

    def __init__(self, name: str, factory: Callable[[SearchContext], optuna.samplers.BaseSampler]) -> None:
        self.name = name
        self._factory = factory

    def create_sampler(self, ctx: SearchContext) -> optuna.samplers.BaseSampler:
        return self._factory(ctx)

    def ask(self, ctx: SearchContext, n: int) -> list[Proposal]:
        proposals = []
        for _ in range(n):
            trial = ctx.study.ask()
            choices = {name: trial.suggest_categorical(name, options)
                       for name, options in ctx.space.dimensions().items()}
            arch = ctx.decode(choices)
            proposals.append(Proposal(trial=trial, arch=arch))
        return proposals


def _opt(ctx: SearchContext, key: str, default: Any) -> Any:
    return ctx.spec.strategy.options.get(key, default)


def _prunes(ctx: SearchContext) -> bool:
    from nas.search._study import prunes_before_the_end

    return prunes_before_the_end(ctx.spec.proxy.pruner, ctx.spec.proxy.recipe.epochs)


def random_strategy() -> SampledStrategy:
    def factory(ctx: SearchContext) -> optuna.samplers.BaseSampler:
        import optuna

        return optuna.samplers.RandomSampler(seed=ctx.spec.seed)

    return SampledStrategy("random", factory)


def tpe_strategy() -> SampledStrategy:
    def factory(ctx: SearchContext) -> optuna.samplers.BaseSampler:
        import optuna

        budget = ctx.spec.budget.trials or 40
        startup = int(_opt(ctx, "n_startup_trials", max(3, min(10, budget // 4))))
        return optuna.samplers.TPESampler(seed=ctx.spec.seed, n_startup_trials=startup, multivariate=True)

    return SampledStrategy("tpe", factory)


def nsga2_strategy() -> SampledStrategy:
    def factory(ctx: SearchContext) -> optuna.samplers.BaseSampler:
        import optuna

        budget = ctx.spec.budget.trials or 40
        # Optuna's NSGA-II forms a generation from COMPLETE trials only: under a pruner (which stops about
        # 70% of candidates here) a third of the budget per generation never filled even one.
        share = 8 if _prunes(ctx) else 3
        population = int(_opt(ctx, "population_size", max(4, min(20, budget // share))))
        return optuna.samplers.NSGAIISampler(seed=ctx.spec.seed, population_size=population)

    return SampledStrategy("nsga2", factory)


def evolution_strategy() -> SampledStrategy:
    def factory(ctx: SearchContext) -> optuna.samplers.BaseSampler:
        from nas.strategies._evolution import RegularizedEvolutionSampler

        budget = ctx.spec.budget.trials or 40
        population = int(_opt(ctx, "population_size", max(4, min(20, budget // 3))))
        tournament = int(_opt(ctx, "tournament_size", max(2, population // 4)))
        return RegularizedEvolutionSampler(ctx.space, population, tournament, seed=ctx.spec.seed)

    return SampledStrategy("evolution", factory)
