"""Search strategies behind one small interface: random, TPE, NSGA-II, regularized evolution, NetAdapt.

Each is one module declaring its name, its options model and its class (see ``_registry``); importing
this package registers them all. Nothing here imports Optuna or torch at import time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nas.errors import NotFoundError, SpecError
from nas.strategies import _evolution_strategy, _netadapt, _nsga2, _random, _tpe  # noqa: F401  (registration)
from nas.strategies._base import Proposal, Strategy
from nas.strategies._registry import StrategyEntry, StrategyOptions, register, strategy_entry, strategy_names
from nas.strategies._sampled import SampledStrategy

if TYPE_CHECKING:
    from nas.search._spec import SearchSpec


def make_strategy(spec: SearchSpec) -> Strategy[Any]:
    """The spec's strategy, built from its options with every default filled in."""
    entry = strategy_entry(spec.strategy.name)
    if entry is None:
        raise NotFoundError("strategy", spec.strategy.name, strategy_names())
    try:
        options = spec.strategy.options.resolved(spec)
    except ValueError as exc:  # a parsed spec was checked already; a hand-built one may not have been
        field, _, reason = str(exc).partition(": ")
        raise SpecError("spec", f"strategy.options.{field}", reason) from None
    return entry.strategy(options)


__all__ = [
    "Proposal",
    "SampledStrategy",
    "Strategy",
    "StrategyEntry",
    "StrategyOptions",
    "make_strategy",
    "register",
    "strategy_entry",
    "strategy_names",
]
