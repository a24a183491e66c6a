"""TPE (Optuna's multivariate Tree-structured Parzen Estimator): random for the first trials, then a model."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

from nas.strategies._registry import StrategyOptions, register
from nas.strategies._sampled import SampledStrategy, budget_share

if TYPE_CHECKING:
    import optuna

    from nas.search._context import SearchContext
    from nas.search._spec import SearchSpec


class TPEOptions(StrategyOptions):
    n_startup_trials: int | None = Field(default=None, ge=0, le=100_000, description=(
        "Random trials before the model takes over; default a quarter of the trial budget, within [3, 10]."))

    def resolved(self, spec: SearchSpec) -> TPEOptions:
        if self.n_startup_trials is not None:
            return self
        return self.model_copy(update={"n_startup_trials": budget_share(spec.budget.trials, 4, 3, 10)})


@register
class TPEStrategy(SampledStrategy[TPEOptions]):
    name = "tpe"
    options_model = TPEOptions

    def create_sampler(self, ctx: SearchContext) -> optuna.samplers.BaseSampler:
        import optuna

        assert self.options.n_startup_trials is not None  # resolved
        return optuna.samplers.TPESampler(seed=ctx.spec.seed, n_startup_trials=self.options.n_startup_trials,
                                          multivariate=True)
