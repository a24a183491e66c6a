"""Search objectives: the MnasNet latency-aware reward, Pareto fronts and their hypervolume.

Pure Python on purpose (no torch, no numpy): the API validates reward specifications and computes
fronts for ``/pareto`` without loading the training stack.

MnasNet (Tan et al. 2019): ``reward = ACC * (LAT / T) ** w`` with ``w = alpha`` if ``LAT <= T`` else
``beta``. The soft preset (alpha = beta = -0.07) trades a doubling of latency for about 5% relative
accuracy (2 ** -0.07 = 0.9526); the hard preset (alpha = 0, beta = -1) leaves networks within the target
untouched and penalises the rest in proportion to their overshoot. MobileNetV3-Small used w = -0.15:
``RewardSpec(kind="custom", target_ms=T, alpha=-0.15, beta=-0.15)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from enum import StrEnum
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from nas._documents import first_error
from nas.errors import RewardError

__all__ = [
    "PRESETS",
    "RewardKind",
    "RewardSpec",
    "hypervolume",
    "mnas_reward",
    "parse_reward_spec",
    "pareto_front",
    "reward_weights",
]

T = TypeVar("T")


class RewardKind(StrEnum):
    soft = "soft"
    hard = "hard"
    custom = "custom"
    pareto = "pareto"


PRESETS: dict[RewardKind, tuple[float, float]] = {
    RewardKind.soft: (-0.07, -0.07),
    RewardKind.hard: (0.0, -1.0),
}


def _finite(field: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise RewardError(field, f"must be a finite number, got {value!r}")
    return float(value)


def mnas_reward(accuracy: float, latency_ms: float, target_ms: float, alpha: float, beta: float) -> float:
    """``accuracy * (latency / target) ** w``, ``w = alpha`` within the target and ``beta`` beyond it."""
    acc = _finite("accuracy", accuracy)
    lat = _finite("latency_ms", latency_ms)
    target = _finite("target_ms", target_ms)
    if lat <= 0:
        raise RewardError("latency_ms", f"must be > 0, got {lat}")
    if target <= 0:
        raise RewardError("target_ms", f"must be > 0, got {target}")
    w = alpha if lat <= target else beta
    return acc * (lat / target) ** w


def reward_weights(kind: RewardKind, alpha: float | None, beta: float | None) -> tuple[float, float]:
    """The (alpha, beta) a reward of ``kind`` uses, or ``RewardError`` naming the offending weight.

    The one place that knows which kinds take weights: a search spec checks its ``reward`` section with
    it when parsed, so ``kind: custom`` without ``alpha`` is refused at submission, not in a worker."""
    if kind is RewardKind.custom:
        for name, value in (("alpha", alpha), ("beta", beta)):
            if value is None:
                raise RewardError(name, "required for kind=custom")
            _finite(name, value)
        assert alpha is not None and beta is not None
        return float(alpha), float(beta)
    for name, value in (("alpha", alpha), ("beta", beta)):
        if value is not None:
            raise RewardError(name, f"only for kind=custom; kind={kind.value} fixes it")
    return PRESETS.get(kind, (0.0, 0.0))


class RewardSpec(BaseModel):
    """How a search turns (accuracy, latency) into what the sampler optimises.

    ``soft``/``hard``/``custom`` give one scalar (maximise); ``pareto`` gives two objectives (maximise
    accuracy, minimise latency) for NSGA-II, with ``target_ms`` as an optional latency constraint.
    ``alpha``/``beta`` are set only for ``custom``; the presets fix them.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: RewardKind = RewardKind.soft
    target_ms: float | None = None
    alpha: float | None = None
    beta: float | None = None

    @model_validator(mode="after")
    def _check(self) -> RewardSpec:
        if self.target_ms is not None:
            _finite("target_ms", self.target_ms)
            if self.target_ms <= 0:
                raise RewardError("target_ms", f"must be > 0, got {self.target_ms}")
        elif self.kind is not RewardKind.pareto:
            raise RewardError("target_ms", f"required for kind={self.kind.value}")
        reward_weights(self.kind, self.alpha, self.beta)
        return self

    @property
    def weights(self) -> tuple[float, float]:
        """(alpha, beta) in effect; (0, 0) for pareto, where latency is an objective, not a weight."""
        return reward_weights(self.kind, self.alpha, self.beta)

    @property
    def directions(self) -> list[str]:
        """Optuna study directions matching :meth:`objectives`."""
        return ["maximize", "minimize"] if self.kind is RewardKind.pareto else ["maximize"]

    def reward(self, accuracy: float, latency_ms: float) -> float:
        """The MnasNet scalar reward; a pareto spec has none (use :meth:`objectives`)."""
        if self.kind is RewardKind.pareto:
            raise RewardError("kind", "a pareto search has two objectives and no scalar reward")
        assert self.target_ms is not None
        alpha, beta = self.weights
        return mnas_reward(accuracy, latency_ms, self.target_ms, alpha, beta)

    def objectives(self, accuracy: float, latency_ms: float) -> tuple[float, ...]:
        """Values to ``study.tell``: ``(reward,)`` or ``(accuracy, latency_ms)``."""
        if self.kind is RewardKind.pareto:
            return _finite("accuracy", accuracy), _finite("latency_ms", latency_ms)
        return (self.reward(accuracy, latency_ms),)

    def constraint(self, latency_ms: float) -> float:
        """Optuna constraint value (feasible iff <= 0): latency over the target; 0 without a target."""
        lat = _finite("latency_ms", latency_ms)
        return lat - self.target_ms if self.target_ms is not None else 0.0


def parse_reward_spec(data: Any) -> RewardSpec:
    """Validate a decoded document; the error names the first offending field."""
    if isinstance(data, RewardSpec):
        return data
    try:
        return RewardSpec.model_validate(data)
    except RewardError:
        raise
    except ValidationError as exc:
        raise RewardError(*first_error(exc)) from None


def _identity(point: Any) -> tuple[float, float]:
    return point[0], point[1]


def _checked_pairs(points: Sequence[T], key: Callable[[T], tuple[float, float]]) -> list[tuple[float, float]]:
    pairs = []
    for i, p in enumerate(points):
        acc, lat = key(p)
        pairs.append((_finite(f"points[{i}].accuracy", acc), _finite(f"points[{i}].latency_ms", lat)))
    return pairs


def pareto_front(points: Sequence[T], key: Callable[[T], tuple[float, float]] = _identity) -> list[T]:
    """The non-dominated items (maximise accuracy, minimise latency), by latency ascending.

    ``key`` maps an item to ``(accuracy, latency_ms)``; the default reads tuples. An item is dominated if
    another is at least as good in both and strictly better in one, so exact duplicates both stay.
    O(n log n): sort by latency (ties: higher accuracy first) and keep the running accuracy record.
    """
    pairs = _checked_pairs(points, key)
    order = sorted(range(len(points)), key=lambda i: (pairs[i][1], -pairs[i][0], i))
    front: list[int] = []
    for i in order:
        acc, lat = pairs[i]
        if not front:
            front.append(i)
            continue
        best_acc, best_lat = pairs[front[-1]]
        if acc > best_acc or (acc == best_acc and lat == best_lat):
            front.append(i)
    return [points[i] for i in front]


def hypervolume(points: Iterable[tuple[float, float]], reference: tuple[float, float]) -> float:
    """Area dominated by ``points`` (accuracy, latency_ms) and bounded by ``reference`` (worst accuracy,
    worst latency): the standard single-number quality of a 2-D front. Points not better than the
    reference in both coordinates contribute nothing."""
    ref_acc = _finite("reference.accuracy", reference[0])
    ref_lat = _finite("reference.latency_ms", reference[1])
    inside = [p for p in _checked_pairs(list(points), _identity) if p[0] > ref_acc and p[1] < ref_lat]
    front = pareto_front(inside)
    area = 0.0
    for i, (acc, lat) in enumerate(front):
        next_lat = front[i + 1][1] if i + 1 < len(front) else ref_lat
        area += (next_lat - lat) * (acc - ref_acc)
    return area
