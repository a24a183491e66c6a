"""Regularized (aging) evolution as a strategy: its options and the sampler it runs (``_evolution``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

from nas.strategies._registry import StrategyOptions, register
from nas.strategies._sampled import SampledStrategy, budget_share

if TYPE_CHECKING:
    import optuna

    from nas.search._context import SearchContext
    from nas.search._spec import SearchSpec


class EvolutionOptions(StrategyOptions):
    population_size: int | None = Field(default=None, ge=2, le=100_000, description=(
        "Finished trials in the population; default a third of the trial budget, within [4, 20]."))
    tournament_size: int | None = Field(default=None, ge=1, le=100_000, description=(
        "Random members a parent is the best of; at most population_size; default a quarter of it (>= 2)."))

    def resolved(self, spec: SearchSpec) -> EvolutionOptions:
        population = self.population_size or budget_share(spec.budget.trials, 3, 4, 20)
        tournament = self.tournament_size or max(2, population // 4)
        if tournament > population:
            given = "" if self.population_size is not None else f" (population_size defaults to {population} here)"
            raise ValueError(f"tournament_size: {tournament} is larger than population_size {population}{given}; "
                             "a tournament draws its members from the population")
        return self.model_copy(update={"population_size": population, "tournament_size": tournament})


@register
class EvolutionStrategy(SampledStrategy[EvolutionOptions]):
    name = "evolution"
    options_model = EvolutionOptions
    pareto = False  # one objective: a tournament needs a best

    def create_sampler(self, ctx: SearchContext) -> optuna.samplers.BaseSampler:
        from nas.strategies._evolution import RegularizedEvolutionSampler

        assert self.options.population_size is not None and self.options.tournament_size is not None  # resolved
        return RegularizedEvolutionSampler(ctx.space, self.options.population_size, self.options.tournament_size,
                                           seed=ctx.spec.seed)
