"""Random search: every choice drawn uniformly (Optuna's RandomSampler). The baseline."""

from __future__ import annotations

from typing import TYPE_CHECKING

from nas.strategies._registry import StrategyOptions, register
from nas.strategies._sampled import SampledStrategy

if TYPE_CHECKING:
    import optuna

    from nas.search._context import SearchContext


class RandomOptions(StrategyOptions):
    """Random search takes no options."""


@register
class RandomStrategy(SampledStrategy[RandomOptions]):
    name = "random"
    options_model = RandomOptions

    def create_sampler(self, ctx: SearchContext) -> optuna.samplers.BaseSampler:
        import optuna

        return optuna.samplers.RandomSampler(seed=ctx.spec.seed)
