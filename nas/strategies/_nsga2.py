"""NSGA-II (Optuna's NSGAIISampler): generations of ``population_size`` complete trials; the Pareto strategy."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

from nas.strategies._registry import StrategyOptions, register
from nas.strategies._sampled import SampledStrategy, budget_share

if TYPE_CHECKING:
    import optuna

    from nas.search._context import SearchContext
    from nas.search._spec import SearchSpec


class NSGA2Options(StrategyOptions):
    population_size: int | None = Field(default=None, ge=2, le=100_000, description=(
        "Trials per generation; default a third of the trial budget (an eighth under a pruner), within "
        "[4, 20]."))

    def resolved(self, spec: SearchSpec) -> NSGA2Options:
        if self.population_size is not None:
            return self
        from nas.search._study import prunes_before_the_end

        # Optuna's NSGA-II forms a generation from COMPLETE trials only: under a pruner (which stops about
        # 70% of candidates here) a third of the budget per generation never filled even one.
        share = 8 if prunes_before_the_end(spec.proxy.pruner, spec.proxy.recipe.epochs) else 3
        return self.model_copy(update={"population_size": budget_share(spec.budget.trials, share, 4, 20)})


@register
class NSGA2Strategy(SampledStrategy[NSGA2Options]):
    name = "nsga2"
    options_model = NSGA2Options

    def create_sampler(self, ctx: SearchContext) -> optuna.samplers.BaseSampler:
        import optuna

        assert self.options.population_size is not None  # resolved
        return optuna.samplers.NSGAIISampler(seed=ctx.spec.seed, population_size=self.options.population_size)
