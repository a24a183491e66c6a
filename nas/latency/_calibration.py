"""Per-profile calibration: from a network's table sum to its measured latency.

Timing parts one by one misses what a whole network does to the caches: a part timed alone runs again
and again on weights and activations that stay in cache, while a network streams all its weights on every
inference and each layer evicts what the next one needs. So the calibration is one of

    ratio:       measured ~ slope * table_sum + overhead
    weights:     measured ~ slope * table_sum + ms_per_mparam * weights_m + overhead
    contention:  measured ~ (slope + slope_per_mparam * weights_m) * table_sum + overhead

``weights`` charges a network for streaming its weights once; ``contention`` slows every kernel in
proportion to the network's weights (its working set), which is what a CPU whose caches are large but
shared does. ``overhead`` is *not fitted*: it is the profile's measured per-call overhead (the table's
``identity`` entry), which every entry has already been netted of and a network pays once. A free
intercept was fitted until 2026-11-28: on 24 calibration networks it absorbed sampling noise and
extrapolated badly to networks smaller than all of them (ShuffleNet at 128: +0.32 ms, a 0.99 ms network
predicted +50%). The coefficients are fitted by weighted least squares with weights 1/measured^2
(minimising *relative* error, which is what the +-10% target is about). The ratio is the default; a
richer model is kept only if it lowers the leave-one-out error and its fit stays physical (no negative
term, a table-sum slope between 0.75 and 1.5: the table times the same kernels, so a slope far from 1
means the few points are fitting noise). ``contention`` was added on a third VM (AMD EPYC, 1 MB L2 per
core, 32 MB shared L3) where MobileNetV3-Large networks of 4-7 M weights ran 10-17% slower than their
table sum predicted and ones of 1-2 M 4-8% faster: no single ratio or streaming term fits both ends.
Points are ``[arch_hash, table_sum_ms, measured_ms, weights_m]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from nas.errors import LatencyError

ANY_SPACE = "*"
MIN_POINTS_FOR_WEIGHTS = 5


@dataclass(frozen=True)
class Calibration:
    slope: float
    intercept_ms: float
    scope: str = ANY_SPACE
    resolution: int = 0
    points: list[list[Any]] = field(default_factory=list, compare=False)
    ms_per_mparam: float = 0.0
    slope_per_mparam: float = 0.0

    @property
    def uses_weights(self) -> bool:
        return bool(self.ms_per_mparam or self.slope_per_mparam)

    @property
    def model(self) -> str:
        return "contention" if self.slope_per_mparam else "weights" if self.ms_per_mparam else "ratio"

    def apply(self, table_sum: float, weights_m: float) -> float:
        slope = self.slope + self.slope_per_mparam * weights_m
        return slope * table_sum + self.ms_per_mparam * weights_m + self.intercept_ms

    def to_dict(self) -> dict[str, Any]:
        return {"scope": self.scope, "resolution": self.resolution, "slope": self.slope,
                "intercept_ms": self.intercept_ms, "ms_per_mparam": self.ms_per_mparam,
                "slope_per_mparam": self.slope_per_mparam, "points": self.points}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Calibration:
        return cls(d["slope"], d["intercept_ms"], d["scope"], d["resolution"], d.get("points", []),
                   d.get("ms_per_mparam", 0.0), d.get("slope_per_mparam") or 0.0)


def fit_ratio(table_sums: Sequence[float], measured: Sequence[float], overhead_ms: float = 0.0) -> float:
    """Weighted least squares ``y - overhead ~ slope * x`` with weights 1/y^2 (relative error)."""
    if len(table_sums) != len(measured) or not measured:
        raise LatencyError("calibration needs at least one measured network")
    w = [1.0 / (y * y) for y in measured]
    sxx = sum(wi * x * x for wi, x in zip(w, table_sums, strict=True))
    sxy = sum(wi * x * (y - overhead_ms) for wi, x, y in zip(w, table_sums, measured, strict=True))
    if sxx <= 0 or sxy <= 0:
        raise LatencyError("calibration networks have no table sum above the call overhead")
    return sxy / sxx


# The second regressor of each two-term model, from (table_sum, weights_m).
_SECOND_TERM = {"weights": lambda x, p: p, "contention": lambda x, p: x * p}


def _fit_two_terms(model: str, points: Sequence[Sequence[Any]], overhead_ms: float) -> tuple[float, float] | None:
    """``y - overhead ~ a x + c g(x, p)`` by weighted least squares; None if degenerate or not physical."""
    import numpy as np

    xs, ys, ps = (np.asarray([float(p[i]) for p in points]) for i in (1, 2, 3))
    w = 1.0 / ys
    design = np.column_stack([xs, _SECOND_TERM[model](xs, ps)]) * w[:, None]
    coef, _, rank, _ = np.linalg.lstsq(design, (ys - overhead_ms) * w, rcond=None)
    a, c = (float(v) for v in coef)
    return (a, c) if rank == 2 and 0.75 <= a <= 1.5 and c >= 0 else None


def _calibration(model: str, points: Sequence[Sequence[Any]], overhead_ms: float, scope: str = ANY_SPACE,
                 resolution: int = 0) -> Calibration | None:
    kept = [list(p) for p in points]
    if model == "ratio":
        slope = fit_ratio([float(p[1]) for p in points], [float(p[2]) for p in points], overhead_ms)
        return Calibration(slope, overhead_ms, scope, resolution, kept)
    fit = _fit_two_terms(model, points, overhead_ms)
    if fit is None:
        return None
    if model == "weights":
        return Calibration(fit[0], overhead_ms, scope, resolution, kept, ms_per_mparam=fit[1])
    return Calibration(fit[0], overhead_ms, scope, resolution, kept, slope_per_mparam=fit[1])


def _loo_error(points: Sequence[Sequence[Any]], model: str, overhead_ms: float) -> float:
    """Mean relative error on each point of the model fitted to the others (inf if any fit is not physical)."""
    errors = []
    for i in range(len(points)):
        cal = _calibration(model, [p for j, p in enumerate(points) if j != i], overhead_ms)
        if cal is None:
            return float("inf")
        x, y, pm = float(points[i][1]), float(points[i][2]), float(points[i][3] or 0.0)
        errors.append(abs(cal.apply(x, pm) / y - 1))
    return sum(errors) / len(errors)


def fit_calibration(points: Sequence[Sequence[Any]], scope: str, resolution: int,
                    overhead_ms: float = 0.0) -> Calibration:
    """The calibration for ``points`` (see the module docstring for the models and how one is chosen)."""
    plain = _calibration("ratio", points, overhead_ms, scope, resolution)
    assert plain is not None
    if len(points) < MIN_POINTS_FOR_WEIGHTS or any(len(p) < 4 or p[3] is None for p in points):
        return plain
    best, best_error = plain, _loo_error(points, "ratio", overhead_ms)
    for model in _SECOND_TERM:
        cal = _calibration(model, points, overhead_ms, scope, resolution)
        error = _loo_error(points, model, overhead_ms) if cal is not None else float("inf")
        if cal is not None and error < best_error:
            best, best_error = cal, error
    return best
