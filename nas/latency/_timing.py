"""The timing loop and its statistics: warm-up, windows of runs, adaptive repeats, quiet-window median.

Why windows: on a shared or virtualised CPU the machine's speed changes in bursts of ~0.1-1 s (here the
same graph in the same process alternates between 0.55 and 0.9 ms, whatever the pinning). A run-level
median mixes both speeds in proportions that differ from one measurement to the next. So runs are
grouped in short windows; a window whose median is more than ``quiet_tolerance`` above the fastest
window's was disturbed and is set aside; the statistics (median, p10, p90) are over the remaining,
*quiet* runs. Timing stops once the 95% confidence interval of that median (distribution-free, from order
statistics) is narrower than ``target_ci``, or at a run or time cap. Several parts can be timed
interleaved, one window each in turn, so a burst hits all of them instead of a few.
"""

from __future__ import annotations

import gc
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

Clock = Callable[[], int]


class TimingSettings(BaseModel):
    """How long to time: warm-up, then windows of runs until the quiet median is pinned down or a cap."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    warmup_runs: int = Field(default=10, ge=0)
    warmup_seconds: float = Field(default=0.2, ge=0)
    min_runs: int = Field(default=30, ge=3, description="Quiet runs needed before stopping.")
    max_runs: int = Field(default=3000, ge=3)
    max_seconds: float = Field(default=4.0, gt=0, description="Cap on the time spent running one part.")
    target_ci: float = Field(default=0.005, gt=0, lt=1)
    window_runs: int = Field(default=10, ge=1)
    min_windows: int = Field(default=20, ge=1, description="Windows needed before stopping: moments sampled.")
    quiet_tolerance: float = Field(default=0.1, gt=0)
    wait_for_quiet: float = Field(default=5.0, ge=0, description=(
        "Seconds to wait, before timing, for other processes to use less than `busy_cpus` CPUs."))
    busy_cpus: float = Field(default=0.3, ge=0)


# Table entries are many and small: short windows, few of them; the sum over ~20 entries averages noise.
TABLE_TIMING = TimingSettings(warmup_runs=2, warmup_seconds=0.0, min_runs=10, max_runs=200,
                              max_seconds=0.15, target_ci=0.015, window_runs=5, min_windows=3, wait_for_quiet=1.0)


@dataclass(frozen=True)
class LatencyStats:
    median_ms: float
    p10_ms: float
    p90_ms: float
    mean_ms: float
    min_ms: float
    runs: int
    ci_rel: float
    windows: int = 1
    quiet_windows: int = 1

    @property
    def spread(self) -> float:
        """(p90 - p10) / median: how wide the distribution of single (quiet) runs is."""
        return (self.p90_ms - self.p10_ms) / self.median_ms if self.median_ms > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "spread": self.spread}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LatencyStats:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


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


def quiet_runs(windows: Sequence[Sequence[float]], tolerance: float) -> tuple[list[float], int]:
    """Sorted runs of the windows within ``tolerance`` of the fastest window's median, and their count."""
    medians = [_quantile(sorted(w), 0.5) for w in windows]
    limit = min(medians) * (1 + tolerance)
    kept = [w for w, m in zip(windows, medians, strict=True) if m <= limit]
    return sorted(x for w in kept for x in w), len(kept)


def summarize(windows: Sequence[Sequence[float]], tolerance: float = math.inf) -> LatencyStats:
    xs, quiet = quiet_runs(windows, tolerance)
    return LatencyStats(
        median_ms=_quantile(xs, 0.5), p10_ms=_quantile(xs, 0.1), p90_ms=_quantile(xs, 0.9),
        mean_ms=sum(xs) / len(xs), min_ms=xs[0], runs=sum(len(w) for w in windows), ci_rel=median_ci_rel(xs),
        windows=len(windows), quiet_windows=quiet,
    )


class _Timer:
    """One part's windows and its stopping rule."""

    def __init__(self, run: Callable[[], object], timing: TimingSettings, clock: Clock) -> None:
        self.run, self.timing, self.clock = run, timing, clock
        self.windows: list[list[float]] = []
        self.runs, self.spent_ns = 0, 0

    def warm_up(self) -> None:
        t, start, warm = self.timing, self.clock(), 0
        while warm < max(t.warmup_runs, 1) * 100 and (
                warm < t.warmup_runs or (self.clock() - start) * 1e-9 < t.warmup_seconds):
            self.run()
            warm += 1

    def window(self, discard_first: bool) -> None:
        """One window of runs; after another part ran, the first run (cold caches) is not a sample."""
        clock, run, samples = self.clock, self.run, []
        start = clock()
        if discard_first:
            run()
        for _ in range(self.timing.window_runs):
            t0 = clock()
            run()
            samples.append((clock() - t0) * 1e-6)
        self.spent_ns += clock() - start
        self.windows.append(samples)
        self.runs += len(samples)

    def finished(self) -> bool:
        t = self.timing
        if self.runs >= t.max_runs or (self.spent_ns * 1e-9 >= t.max_seconds and self.runs >= 3):
            return True
        if len(self.windows) < t.min_windows:
            return False
        xs, _ = quiet_runs(self.windows, t.quiet_tolerance)
        return len(xs) >= t.min_runs and median_ci_rel(xs) <= t.target_ci

    def stats(self) -> LatencyStats:
        return summarize(self.windows, self.timing.quiet_tolerance)


def time_interleaved(runs: Sequence[Callable[[], object]], timing: TimingSettings,
                     clock: Clock = time.perf_counter_ns) -> list[LatencyStats]:
    """Time several callables, one window each in turn, each until its own stopping rule; garbage
    collection is off meanwhile so it cannot land in a sample."""
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        timers = [_Timer(run, timing, clock) for run in runs]
        for t in timers:
            t.warm_up()
        active = list(timers)
        while active:
            for t in active:
                t.window(discard_first=len(timers) > 1)
            active = [t for t in active if not t.finished()]
        return [t.stats() for t in timers]
    finally:
        if gc_was_enabled:
            gc.enable()


def time_callable(run: Callable[[], object], timing: TimingSettings,
                  clock: Clock = time.perf_counter_ns) -> LatencyStats:
    return time_interleaved([run], timing, clock)[0]
