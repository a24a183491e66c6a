"""The timing loop and its statistics: warm-up, adaptive repeats, median with p10/p90.

The loop stops as soon as the 95% confidence interval of the median (distribution-free, from order
statistics) is narrower than the target, so fast, stable ops finish after a few dozen runs and noisy
ones get more, up to a run and a time cap. The median, not the mean, is reported: interference from
other processes only ever adds time and shows up as a long right tail.
"""

from __future__ import annotations

import gc
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class TimingSettings(BaseModel):
    """When to stop timing: after warm-up, keep running until the 95% confidence interval of the
    median is narrower than ``target_ci`` (relative half-width), or a run/time cap is hit."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    warmup_runs: int = Field(default=10, ge=0)
    warmup_seconds: float = Field(default=0.2, ge=0)
    min_runs: int = Field(default=30, ge=3)
    max_runs: int = Field(default=2000, ge=3)
    max_seconds: float = Field(default=4.0, gt=0)
    target_ci: float = Field(default=0.005, gt=0, lt=1)


# Table entries are many and small: shorter timing; the sum over ~20 entries averages their noise.
TABLE_TIMING = TimingSettings(warmup_runs=2, warmup_seconds=0.0, min_runs=10, max_runs=200,
                              max_seconds=0.1, target_ci=0.015)


@dataclass(frozen=True)
class LatencyStats:
    median_ms: float
    p10_ms: float
    p90_ms: float
    mean_ms: float
    min_ms: float
    runs: int
    ci_rel: float

    @property
    def spread(self) -> float:
        """(p90 - p10) / median: how wide the distribution of single runs is."""
        return (self.p90_ms - self.p10_ms) / self.median_ms if self.median_ms > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "spread": self.spread}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LatencyStats:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__})


def _quantile(xs: list[float], q: float) -> float:
    """Linear-interpolated quantile of sorted values (numpy's default method)."""
    pos = q * (len(xs) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def median_ci_rel(xs: list[float]) -> float:
    """Relative half-width of the ~95% confidence interval of the median of sorted ``xs``."""
    n = len(xs)
    if n < 3:
        return math.inf
    half = 0.98 * math.sqrt(n)
    lo, hi = max(0, math.floor(n / 2 - half)), min(n - 1, math.ceil(n / 2 + half))
    med = _quantile(xs, 0.5)
    return (xs[hi] - xs[lo]) / (2 * med) if med > 0 else math.inf


def summarize(samples_ms: list[float]) -> LatencyStats:
    xs = sorted(samples_ms)
    return LatencyStats(
        median_ms=_quantile(xs, 0.5), p10_ms=_quantile(xs, 0.1), p90_ms=_quantile(xs, 0.9),
        mean_ms=sum(xs) / len(xs), min_ms=xs[0], runs=len(xs), ci_rel=median_ci_rel(xs),
    )


def time_callable(run: Callable[[], object], timing: TimingSettings,
                  clock: Callable[[], int] = time.perf_counter_ns) -> LatencyStats:
    """Time ``run`` under ``timing``; garbage collection is off meanwhile so it cannot land in a sample."""
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        start, warm = clock(), 0
        warm_cap = max(timing.warmup_runs, 1) * 100
        while warm < warm_cap and (warm < timing.warmup_runs
                                   or (clock() - start) * 1e-9 < timing.warmup_seconds):
            run()
            warm += 1
        samples: list[float] = []
        start = clock()
        next_check = timing.min_runs
        while True:
            t0 = clock()
            run()
            t1 = clock()
            samples.append((t1 - t0) * 1e-6)
            n = len(samples)
            if n >= timing.max_runs or (t1 - start) * 1e-9 >= timing.max_seconds and n >= 3:
                break
            if n >= next_check:
                if median_ci_rel(sorted(samples)) <= timing.target_ci:
                    break
                next_check = n + max(5, n // 10)
        return summarize(samples)
    finally:
        if gc_was_enabled:
            gc.enable()
