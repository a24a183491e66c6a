"""Per-profile calibration: from a network's table sum to its measured latency.

Timing parts one by one misses two things a whole network does: the runtime keeps its blocked memory
layout across blocks (no layout conversions between them), and the network streams all its weights from
memory on every inference, while a part timed alone keeps its weights in cache. So the calibration is

    measured ~ slope * table_sum + ms_per_mparam * weights_in_millions + overhead

where ``overhead`` is *not fitted*: it is the profile's measured per-call overhead (the table's
``identity`` entry), which every entry has already been netted of and a network pays once. A free
intercept was fitted until 2026-11-28: on 24 calibration networks it absorbed sampling noise and
extrapolated badly to networks smaller than all of them (ShuffleNet at 128: +0.32 ms, a 0.99 ms network
predicted +50%; 94% of held-out networks within +-10% against 96% pinned; over 120 random draws of 24
calibration networks from 124 measured, 95.7% vs 97.1% on average, MobileNetV3-Large 98.5% vs 98.5%).
The two coefficients are fitted by weighted least squares with weights 1/measured^2 (minimising
*relative* error, which is what the +-10% target is about). The weights term is kept only if it lowers
the leave-one-out error and the fit stays physical (a non-negative weights coefficient, a table-sum
slope between 0.75 and 1.5: the table times the same kernels, so a slope far from 1 means the few
points are fitting noise); otherwise the plain ratio is used.
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

    def apply(self, table_sum: float, weights_m: float) -> float:
        return self.slope * table_sum + self.ms_per_mparam * weights_m + self.intercept_ms

    def to_dict(self) -> dict[str, Any]:
        return {"scope": self.scope, "resolution": self.resolution, "slope": self.slope,
                "intercept_ms": self.intercept_ms, "ms_per_mparam": self.ms_per_mparam, "points": self.points}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Calibration:
        return cls(d["slope"], d["intercept_ms"], d["scope"], d["resolution"], d.get("points", []),
                   d.get("ms_per_mparam", 0.0))


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


def _fit_with_weights(xs: Sequence[float], ps: Sequence[float], ys: Sequence[float],
                      overhead_ms: float) -> tuple[float, float] | None:
    """``y - overhead ~ a x + c p`` by weighted least squares; None if degenerate or not physical."""
    import numpy as np

    w = 1.0 / np.asarray(ys)
    design = np.column_stack([xs, ps]) * w[:, None]
    coef, _, rank, _ = np.linalg.lstsq(design, (np.asarray(ys) - overhead_ms) * w, rcond=None)
    a, c = (float(v) for v in coef)
    return (a, c) if rank == 2 and 0.75 <= a <= 1.5 and c >= 0 else None


def _loo_error(points: Sequence[Sequence[Any]], with_weights: bool, overhead_ms: float) -> float:
    errors = []
    for i in range(len(points)):
        rest = [p for j, p in enumerate(points) if j != i]
        x, y, pm = float(points[i][1]), float(points[i][2]), float(points[i][3])
        if with_weights:
            fit = _fit_with_weights([p[1] for p in rest], [p[3] for p in rest], [p[2] for p in rest], overhead_ms)
            if fit is None:
                return float("inf")
            pred = fit[0] * x + fit[1] * pm + overhead_ms
        else:
            pred = fit_ratio([p[1] for p in rest], [p[2] for p in rest], overhead_ms) * x + overhead_ms
        errors.append(abs(pred / y - 1))
    return sum(errors) / len(errors)


def fit_calibration(points: Sequence[Sequence[Any]], scope: str, resolution: int,
                    overhead_ms: float = 0.0) -> Calibration:
    """The calibration for ``points`` (see the module docstring for the model and its selection)."""
    xs, ys = [float(p[1]) for p in points], [float(p[2]) for p in points]
    kept = [list(p) for p in points]
    plain = Calibration(fit_ratio(xs, ys, overhead_ms), overhead_ms, scope, resolution, kept)
    if len(points) < MIN_POINTS_FOR_WEIGHTS or any(len(p) < 4 or p[3] is None for p in points):
        return plain
    fit = _fit_with_weights(xs, [float(p[3]) for p in points], ys, overhead_ms)
    if fit is None or _loo_error(points, True, overhead_ms) >= _loo_error(points, False, overhead_ms):
        return plain
    return Calibration(fit[0], overhead_ms, scope, resolution, kept, fit[1])
