"""Search strategies behind one small interface: random, TPE, NSGA-II, regularized evolution, NetAdapt."""

from __future__ import annotations

from nas.errors import NotFoundError
from nas.strategies._base import Proposal, Strategy
from nas.strategies._sampled import (
    SampledStrategy,
    evolution_strategy,
    nsga2_strategy,
    random_strategy,
    tpe_strategy,
)


def make_strategy(name: str) -> Strategy:
    if name == "netadapt":
        from nas.strategies._netadapt import NetAdaptStrategy

        return NetAdaptStrategy()
    factories = {"random": random_strategy, "tpe": tpe_strategy, "nsga2": nsga2_strategy,
                 "evolution": evolution_strategy}
    if name not in factories:
        raise NotFoundError("strategy", name, [*factories, "netadapt"])
    return factories[name]()


__all__ = ["Proposal", "SampledStrategy", "Strategy", "make_strategy"]
