"""The shared base of the strategies that draw every choice of the space from an Optuna sampler
(random, TPE, NSGA-II, regularized evolution): a subclass only says which sampler."""

from __future__ import annotations

from abc import abstractmethod
from typing import TYPE_CHECKING

from nas.strategies._base import OptionsT, Proposal, Strategy

if TYPE_CHECKING:
    import optuna

    from nas.search._context import SearchContext


def budget_share(trials: int | None, share: int, low: int, high: int) -> int:
    """``trials // share`` kept within [low, high]; a time-only budget counts as 40 trials."""
    return max(low, min(high, (trials or 40) // share))


class SampledStrategy(Strategy[OptionsT]):
    """Ask the study for a trial, suggest every dimension of the space, decode it into an architecture.

    Every dimension is suggested on every trial (even blocks beyond the chosen depth), so the search
    space is static and Optuna's relative samplers (multivariate TPE, NSGA-II) see all of it.
    """

    @abstractmethod
    def create_sampler(self, ctx: SearchContext) -> optuna.samplers.BaseSampler:
        """The Optuna sampler, built from ``self.options`` and the spec's seed."""

    def ask(self, ctx: SearchContext, n: int) -> list[Proposal]:
        proposals = []
        for _ in range(n):
            trial = ctx.study.ask()
            choices = {name: trial.suggest_categorical(name, options)
                       for name, options in ctx.space.dimensions().items()}
            arch = ctx.decode(choices)
            proposals.append(Proposal(trial=trial, arch=arch))
        return proposals
