"""The timing loop and its statistics: warm-up, windows of runs, adaptive repeats, the reported median.

What is reported (``TimingSettings.statistic``): by default the **median of all runs** after warm-up,
the statistic a user's own timing loop or a device's benchmark binary reports, so the two can be
compared. The alternative, ``quiet-median``, takes the statistics (median, p10, p90) over the *quiet* runs
only: those within ``quiet_tolerance`` of a low quantile (the 2nd percentile) of all runs, since runs
disturbed by other load only ever get slower. It is steadier under bursts (lookup-table parts, timed a
few dozen runs each, use it), but on some hosts a process's runs sit in two modes a few percent apart
and the quiet median is then 3-10% under what a plain loop reports (measured, docs/latency.md).
``disturbed`` is the share of runs outside the quiet band, whichever statistic is reported. Timing stops
once the 95% confidence interval of the reported median (distribution-free, from order statistics) is
narrower than ``target_ci`` after at least ``min_windows`` windows of runs (moments sampled), or at a
run or time cap. Several parts can be timed interleaved, one window each in turn, so a burst hits all of
them instead of a few.
"""

from __future__ import annotations

import gc
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Clock = Callable[[], int]
Statistic = Literal["median", "quiet-median"]


class TimingSettings(BaseModel):
    """How long to time: warm-up, then windows of runs until the quiet median is pinned down or a cap."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    warmup_runs: int = Field(default=10, ge=0)
    warmup_seconds: float = Field(default=0.2, ge=0)
    statistic: Statistic = Field(default="median", description=(
        "`median`: of all runs after warm-up (what a plain timing loop reports); `quiet-median`: of the runs "
        "within quiet_tolerance of the 2nd percentile (steadier under bursts, lower than a plain loop's)."))
    min_runs: int = Field(default=30, ge=3, description="Runs (of the statistic) needed before stopping.")
    max_runs: int = Field(default=3000, ge=3)
    max_seconds: float = Field(default=4.0, gt=0, description="Cap on the time spent running one part.")
    target_ci: float = Field(default=0.005, gt=0, lt=1)
    window_runs: int = Field(default=10, ge=1)
    min_windows: int = Field(default=20, ge=1, description="Windows needed before stopping: moments sampled.")
    quiet_tolerance: float = Field(default=0.1, gt=0, description="Quiet runs: <= (1 + this) x 2nd percentile.")
    wait_for_quiet: float = Field(default=5.0, ge=0, description=(
        "Seconds to wait, before timing, for other processes to use less than `busy_cpus` CPUs."))
    busy_cpus: float = Field(default=0.3, ge=0)
    slow_host: float = Field(default=2.0, gt=1, description=(
        "A group timed while the speed canary ran over this many times its reference is timed again (other "
        "processes' load slows it by tens of percent; a throttled host by several times)."))
    slow_host_wait: float = Field(default=240.0, ge=0, description=(
        "Seconds per measuring call to wait for the host to come back to speed; then a slow group's "
        "timings are kept, scaled by the canary."))


# Table entries are many and small: short windows, few of them; the sum over ~20 entries averages noise.
# A fresh session needs ~10 runs before its timings settle (allocator growth, first-touch page faults).
# Their quiet median: a burst in one of a part's few windows would move an all-runs median.
TABLE_TIMING = TimingSettings(warmup_runs=10, warmup_seconds=0.0, min_runs=10, max_runs=60,
                              max_seconds=0.06, target_ci=0.02, window_runs=5, min_windows=4, wait_for_quiet=0.5,
                              statistic="quiet-median")


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
    # The median of every run, disturbed or not (what a user's plain loop reports), and of the quiet runs,
    # whichever statistic is reported. Not stored with a cached measurement (None there); ``nas latency
    # validate`` compares them with the plain loop.
    all_median_ms: float | None = None
    quiet_median_ms: float | None = None

    @property
    def spread(self) -> float:
        """(p90 - p10) / median: how wide the distribution of the statistic's runs is."""
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


def counted_runs(runs: Sequence[float], tolerance: float, statistic: Statistic) -> list[float]:
    """The sorted runs the statistic is taken over."""
    return sorted(runs) if statistic == "median" else quiet_runs(runs, tolerance)


def summarize(windows: Sequence[Sequence[float]], tolerance: float = math.inf,
              statistic: Statistic = "quiet-median") -> LatencyStats:
    runs = [x for w in windows for x in w]
    xs = counted_runs(runs, tolerance, statistic)
    quiet = xs if statistic == "quiet-median" else quiet_runs(runs, tolerance)
    return LatencyStats(
        median_ms=_quantile(xs, 0.5), p10_ms=_quantile(xs, 0.1), p90_ms=_quantile(xs, 0.9),
        mean_ms=sum(xs) / len(xs), min_ms=xs[0], runs=len(runs), ci_rel=median_ci_rel(xs),
        windows=len(windows), disturbed=1 - len(quiet) / len(runs), all_median_ms=_quantile(sorted(runs), 0.5),
        quiet_median_ms=_quantile(quiet, 0.5),
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
        xs = counted_runs([x for w in self.windows for x in w], t.quiet_tolerance, t.statistic)
        return len(xs) >= t.min_runs and median_ci_rel(xs) <= t.target_ci

    def stats(self) -> LatencyStats:
        return summarize(self.windows, self.timing.quiet_tolerance, self.timing.statistic)


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
