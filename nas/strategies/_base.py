"""The strategy interface: a small class that proposes candidates and learns from their results.

Like Optuna's samplers, a strategy keeps no state that the study does not hold: everything it needs to
continue after a crash or Ctrl-C is in the study's trials and user attributes, so a rerun resumes.
Contract: ``ask`` may return several proposals at once (parallel executors); ``tell`` is called once per
proposal in completion order; neither is called concurrently from two threads.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from nas.strategies._registry import StrategyOptions

if TYPE_CHECKING:
    import optuna

    from nas.arch import Architecture
    from nas.search._context import SearchContext
    from nas.search._executor import JobResult


@dataclass
class Proposal:
    """One candidate to evaluate, bound to its Optuna trial."""

    trial: optuna.trial.Trial
    arch: Architecture
    epochs: int | None = None
    """Training epochs for this candidate; None: the search's recipe."""
    init_checkpoint: str | None = None
    """Weights to inherit (NetAdapt), a path readable by the worker."""
    save_checkpoint: bool = False
    attrs: dict[str, Any] = field(default_factory=dict)
    """Extra user attributes recorded on the trial (strategy bookkeeping)."""


OptionsT = TypeVar("OptionsT", bound=StrategyOptions)


class Strategy(ABC, Generic[OptionsT]):
    """A search strategy. A subclass declares ``name``, ``options_model`` (its ``strategy.options``) and
    whether it can run a Pareto search, and is built from its options with every default filled in."""

    name: ClassVar[str] = "strategy"
    options_model: ClassVar[type[StrategyOptions]] = StrategyOptions
    pareto: ClassVar[bool] = True

    def __init__(self, options: OptionsT) -> None:
        self.options = options

    def create_sampler(self, ctx: SearchContext) -> optuna.samplers.BaseSampler:
        """The sampler the study is created with (strategies that ask in architecture space use random)."""
        import optuna

        return optuna.samplers.RandomSampler(seed=ctx.spec.seed)

    @abstractmethod
    def ask(self, ctx: SearchContext, n: int) -> list[Proposal]:
        """Up to ``n`` new proposals; an empty list means nothing to do now (see ``finished``)."""

    def tell(self, ctx: SearchContext, proposal: Proposal, result: JobResult) -> None:  # noqa: B027
        """Learn from a finished proposal (``result.error`` is set when it failed)."""

    def finished(self, ctx: SearchContext) -> bool:
        """True when the strategy has nothing more to try, whatever budget is left."""
        return False

    def resume(self, ctx: SearchContext, interrupted: list[optuna.trial.FrozenTrial]) -> None:
        """Re-propose candidates whose evaluation was interrupted; by default, enqueue their choices."""
        for t in interrupted:
            if t.params:
                ctx.study.enqueue_trial(t.params, user_attrs={"retry_of": t.number})

    def finish(self, ctx: SearchContext) -> None:  # noqa: B027
        """Called once when the budget ends (NetAdapt runs its final fine-tune here)."""

    def pinned_trials(self, ctx: SearchContext) -> set[int]:
        """Trials whose checkpoints the strategy still needs."""
        return set()
