"""The timing loop and its statistics: warm-up, windows of runs, adaptive repeats, quiet-run median.

Why not the plain median: on a shared or virtualised CPU the machine alternates, every few
milliseconds, between its normal speed and a slow mode (here 1.6-2x slower for about half the time,
with nothing else running in the VM: the host's other tenants). The median of all runs then measures
the host's load more than the network, and differs by 10-20% between two processes. Runs disturbed
that way only ever get slower, so the statistics (median, p10, p90) are taken over the *quiet* runs:
those within ``quiet_tolerance`` of a low quantile (the 2nd percentile) of all runs. ``disturbed`` is
the share set aside. Timing stops once the 95% confidence interval of the quiet median
(distribution-free, from order statistics) is narrower than ``target_ci`` after at least
``min_windows`` windows of runs (moments sampled), or at a run or time cap. Several parts can be timed
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
    quiet_tolerance: float = Field(default=0.1, gt=0, description="Quiet runs: <= (1 + this) x 2nd percentile.")
    wait_for_quiet: float = Field(default=5.0, ge=0, description=(
        "Seconds to wait, before timing, for other processes to use less than `busy_cpus` CPUs."))
    busy_cpus: float = Field(default=0.3, ge=0)


# Table entries are many and small: short windows, few of them; the sum over ~20 entries averages noise.
# A fresh session needs ~10 runs before its timings settle (allocator growth, first-touch page faults).
TABLE_TIMING = TimingSettings(warmup_runs=10, warmup_seconds=0.0, min_runs=10, max_runs=60,
                              max_seconds=0.06, target_ci=0.02, window_runs=5, min_windows=4, wait_for_quiet=0.5)


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
    disturbed: float = 0.0
    # The median of every run, disturbed or not: what a user's plain loop reports. Not stored with a cached
    # measurement (None there); ``nas latency validate`` compares it with the plain loop.
    all_median_ms: float | None = None

    @property
    def spread(self) -> float:
        """(p90 - p10) / median: how wide the distribution of quiet runs is."""
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


def quiet_runs(runs: Sequence[float], tolerance: float) -> list[float]:
    """Sorted runs within ``tolerance`` of the 2nd percentile (the minimum below 50 runs)."""
    xs = sorted(runs)
    limit = _quantile(xs, 0.02 if len(xs) >= 50 else 0.0) * (1 + tolerance)
    return [x for x in xs if x <= limit]


def summarize(windows: Sequence[Sequence[float]], tolerance: float = math.inf) -> LatencyStats:
    runs = [x for w in windows for x in w]
    xs = quiet_runs(runs, tolerance)
    return LatencyStats(
        median_ms=_quantile(xs, 0.5), p10_ms=_quantile(xs, 0.1), p90_ms=_quantile(xs, 0.9),
        mean_ms=sum(xs) / len(xs), min_ms=xs[0], runs=len(runs), ci_rel=median_ci_rel(xs),
        windows=len(windows), disturbed=1 - len(xs) / len(runs), all_median_ms=_quantile(sorted(runs), 0.5),
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
        xs = quiet_runs([x for w in self.windows for x in w], t.quiet_tolerance)
        return len(xs) >= t.min_runs and median_ci_rel(xs) <= t.target_ci

    def stats(self) -> LatencyStats:
        return summarize(self.windows, self.timing.quiet_tolerance)


def time_interleaved(runs: Sequence[Callable[[], object]], timing: TimingSettings,
                     clock: Clock = time.perf_counter_ns, follower: int | None = None) -> list[LatencyStats]:
    """Time several callables, one window each in turn, each until its own stopping rule; garbage
    collection is off meanwhile so it cannot land in a sample. The ``follower`` (a speed canary) keeps
    timing a window per round until every other callable has stopped, so it sees the same moments."""
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        timers = [_Timer(run, timing, clock) for run in runs]
        for t in timers:
            t.warm_up()
        follow = timers[follower] if follower is not None else None
        active = list(timers)
        while active:
            for t in active:
                t.window(discard_first=len(timers) > 1)
            leaders = [t for t in active if t is not follow and not t.finished()]
            active = leaders + ([follow] if follow is not None and leaders else [])
        return [t.stats() for t in timers]
    finally:
        if gc_was_enabled:
            gc.enable()


def time_callable(run: Callable[[], object], timing: TimingSettings,
                  clock: Clock = time.perf_counter_ns) -> LatencyStats:
    return time_interleaved([run], timing, clock)[0]
