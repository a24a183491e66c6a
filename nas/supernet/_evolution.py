"""Regularized evolution (Real et al., 2019) scored by predictors only: no network is built or run.

Each generation picks ``batch`` parents by tournaments of ``sample_size`` over the population, mutates one
active choice of each (``SearchSpace.mutate``), scores all children in one call of the accuracy
predictor plus one latency prediction each, and retires the oldest ``batch`` members (the
"regularized" part: age, not fitness, decides who leaves). Candidates the latency predictor puts over
the target get a fitness below every feasible one, so they lose tournaments but still carry genes.
Batching is what makes thousands of candidates per second: the accuracy predictor is a numpy MLP whose
cost is mostly per call, not per row.
"""

from __future__ import annotations

import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from nas.arch import Architecture
from nas.spaces import Choices, SearchSpace

ScoreFn = Callable[[list[Architecture]], list[float]]
LatencyFn = Callable[[Architecture], float]


@dataclass(frozen=True)
class Scored:
    arch: Architecture
    choices: Choices
    accuracy: float
    """Predicted accuracy."""
    latency_ms: float
    """Predicted latency."""


@dataclass
class EvolutionReport:
    scored: int
    seconds: float
    generations: int
    best: list[Scored] = field(default_factory=list)
    """The most accurate distinct candidates predicted within the target, best first."""

    @property
    def per_second(self) -> float:
        return self.scored / self.seconds if self.seconds > 0 else float("inf")


def evolve(space: SearchSpace, num_classes: int, accuracy: ScoreFn, latency: LatencyFn, target_ms: float, *,
           candidates: int = 5000, population: int = 100, sample_size: int = 25, batch: int = 50, keep: int = 5,
           seed: int = 0) -> EvolutionReport:
    """Score ``candidates`` networks (the initial population included); keep the ``keep`` best within target."""
    rng = random.Random(seed)
    start = time.perf_counter()
    seen: dict[tuple[str, int], Scored] = {}  # a network at each resolution

    def score(choices: list[Choices]) -> list[tuple[float, Scored]]:
        archs = [space.decode(c, num_classes=num_classes) for c in choices]
        out = []
        for arch, c, acc in zip(archs, choices, accuracy(archs), strict=True):
            s = Scored(arch, c, float(acc), float(latency(arch)))
            seen.setdefault((arch.hash, arch.resolution), s)
            out.append((s.accuracy if s.latency_ms <= target_ms else s.accuracy - 1e3 - s.latency_ms, s))
        return out

    members = deque(score([space.sample_choices(rng) for _ in range(min(population, candidates))]))
    scored, generations = len(members), 0
    while scored < candidates:
        n = min(batch, candidates - scored)
        parents = [max(rng.sample(list(members), min(sample_size, len(members))), key=lambda m: m[0])[1]
                   for _ in range(n)]
        children = score([space.mutate(p.choices, rng) for p in parents])
        members.extend(children)
        for _ in range(len(children)):
            members.popleft()
        scored += n
        generations += 1
    feasible = sorted((s for s in seen.values() if s.latency_ms <= target_ms), key=lambda s: -s.accuracy)
    return EvolutionReport(scored, time.perf_counter() - start, generations, feasible[:keep])
