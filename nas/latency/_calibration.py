"""Per-profile calibration: from a network's table sum to its measured latency.

Timing parts one by one misses two things a whole network does: the runtime keeps its blocked memory
layout across blocks (no layout conversions between them), and the network streams all its weights from
memory on every inference, while a part timed alone keeps its weights in cache. So the calibration is

    measured ~ slope * table_sum + ms_per_mparam * weights_in_millions + intercept

fitted by weighted least squares with weights 1/measured^2 (minimising *relative* error, which is what
the +-10% target is about) on a few measured networks of one space and resolution. The weights term is
kept only if it lowers the leave-one-out error on those networks and the fit stays physical (a
non-negative weights coefficient, a table-sum slope between 0.75 and 1.5: the table times the same
kernels, so a slope far from 1 means the few points are fitting noise); otherwise the plain line is used.
Points are ``[arch_hash, table_sum_ms, measured_ms, weights_m]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from nas.errors import LatencyError

ANY_SPACE = "*"


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


def fit_line(table_sums: Sequence[float], measured: Sequence[float]) -> tuple[float, float]:
    """Weighted least squares ``y ~ a x + b`` with weights 1/y^2 (relative error); one point gives a
    pure offset, and a non-positive slope (degenerate points) falls back to a ratio through the origin."""
    if len(table_sums) != len(measured) or not measured:
        raise LatencyError("calibration needs at least one measured network")
    if len(measured) == 1:
        return 1.0, measured[0] - table_sums[0]
    w = [1.0 / (y * y) for y in measured]
    sw = sum(w)
    sx = sum(wi * x for wi, x in zip(w, table_sums, strict=True))
    sy = sum(wi * y for wi, y in zip(w, measured, strict=True))
    sxx = sum(wi * x * x for wi, x in zip(w, table_sums, strict=True))
    sxy = sum(wi * x * y for wi, x, y in zip(w, table_sums, measured, strict=True))
    det = sw * sxx - sx * sx
    if det > 1e-12 * max(sw * sxx, 1e-300):
        slope = (sw * sxy - sx * sy) / det
        if slope > 0:
            return slope, (sy - slope * sx) / sw
    return sxy / sxx, 0.0


def _fit_plane(xs: Sequence[float], ps: Sequence[float], ys: Sequence[float]) -> tuple[float, float, float] | None:
    """Weighted least squares ``y ~ a x + c p + b``; None if degenerate or not physical (see the module)."""
    import numpy as np

    w = 1.0 / np.asarray(ys)
    design = np.column_stack([xs, ps, np.ones(len(xs))]) * w[:, None]
    coef, _, rank, _ = np.linalg.lstsq(design, np.asarray(ys) * w, rcond=None)
    a, c, b = (float(v) for v in coef)
    return (a, c, b) if rank == 3 and 0.75 <= a <= 1.5 and c >= 0 else None


def _loo_error(points: Sequence[Sequence[Any]], with_weights: bool) -> float:
    errors = []
    for i in range(len(points)):
        rest = [p for j, p in enumerate(points) if j != i]
        x, y, pm = float(points[i][1]), float(points[i][2]), float(points[i][3])
        if with_weights:
            plane = _fit_plane([p[1] for p in rest], [p[3] for p in rest], [p[2] for p in rest])
            if plane is None:
                return float("inf")
            pred = plane[0] * x + plane[1] * pm + plane[2]
        else:
            a, b = fit_line([p[1] for p in rest], [p[2] for p in rest])
            pred = a * x + b
        errors.append(abs(pred / y - 1))
    return sum(errors) / len(errors)


def fit_calibration(points: Sequence[Sequence[Any]], scope: str, resolution: int) -> Calibration:
    """The calibration for ``points`` (see the module docstring for the model and its selection)."""
    xs, ys = [float(p[1]) for p in points], [float(p[2]) for p in points]
    slope, intercept = fit_line(xs, ys)
    plain = Calibration(slope, intercept, scope, resolution, [list(p) for p in points])
    if len(points) < 5 or any(len(p) < 4 or p[3] is None for p in points):
        return plain
    plane = _fit_plane(xs, [float(p[3]) for p in points], ys)
    if plane is None or _loo_error(points, True) >= _loo_error(points, False):
        return plain
    return Calibration(plane[0], plane[2], scope, resolution, [list(p) for p in points], plane[1])
