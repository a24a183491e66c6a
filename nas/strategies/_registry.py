"""The strategy registry: each strategy is one module declaring its name, its options model and its class.

Like Optuna's samplers, a strategy is a class; unlike them, its settings arrive in a search spec (YAML or
an API body), so each strategy also declares a pydantic model of its ``strategy.options``. The spec parses
the options into that model once, at submission; the strategy receives the parsed, typed object with every
default filled in (:meth:`StrategyOptions.resolved`), so there is one source of defaults and a bad option
is a 422 naming ``strategy.options.<key>`` rather than a worker failing minutes later.

Adding a strategy: a module with an options model and a :class:`~nas.strategies.Strategy` subclass
decorated with :func:`register`, imported once in ``nas/strategies/__init__.py``. Nothing here imports
Optuna or torch: the API validates specs with the registry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Self, TypeVar

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from nas.search._spec import SearchSpec
    from nas.spaces import SearchSpace
    from nas.strategies._base import Strategy


class StrategyOptions(BaseModel):
    """Base of every strategy's options: unknown keys are refused, values are immutable.

    A field whose default depends on the rest of the spec (the trial budget, the recipe) defaults to None
    and is filled in by :meth:`resolved`, the one place that computes it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    def resolved(self, spec: SearchSpec) -> Self:
        """These options with the spec-dependent defaults filled in and cross-field rules checked.

        Raise ``ValueError("key: reason")`` for a combination the strategy would refuse; the spec reports
        it as ``strategy.options.key``. The default: nothing depends on the spec."""
        return self

    def check(self, spec: SearchSpec, space: Callable[[], SearchSpace | None]) -> None:
        """Refuse, when the spec is parsed, what the strategy would refuse given the search space.

        ``space()`` loads the spec's space (None when it cannot be loaded under the spec's rules; that is
        reported where the space is checked), so strategies that do not look at it cost nothing. Raise
        ``ValueError("key: reason")``. Called on the resolved options."""


S = TypeVar("S", bound="type[Strategy]")


@dataclass(frozen=True)
class StrategyEntry:
    name: str
    options: type[StrategyOptions]
    strategy: type[Strategy]
    pareto: bool
    """Whether it can run a two-objective (``reward.kind: pareto``) search."""


_REGISTRY: dict[str, StrategyEntry] = {}


def register(cls: S) -> S:
    """Class decorator: make a strategy known by its ``name`` with its ``options_model``."""
    name = cls.name
    if name in _REGISTRY and _REGISTRY[name].strategy is not cls:
        raise ValueError(f"strategy {name!r} is registered twice")
    _REGISTRY[name] = StrategyEntry(name, cls.options_model, cls, cls.pareto)
    return cls


def strategy_names() -> list[str]:
    return list(_REGISTRY)


def strategy_entry(name: str) -> StrategyEntry | None:
    return _REGISTRY.get(name)
