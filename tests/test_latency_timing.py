"""The timing loop and its statistics, on a fake clock (deterministic, no real timing)."""

from __future__ import annotations

import itertools

import pytest

from nas.latency import TimingSettings, time_callable, time_interleaved
from nas.latency._timing import median_ci_rel, quiet_runs, summarize


class FakeClock:
    """A clock that advances only when the timed callable 'runs', by durations from a cycle."""

    def __init__(self, durations_ms: list[float]) -> None:
        self.now_ns = 0
        self.durations = itertools.cycle(durations_ms)
        self.calls = 0

    def clock(self) -> int:
        return self.now_ns

    def run(self) -> None:
        self.calls += 1
        self.now_ns += int(next(self.durations) * 1e6)


FAST = TimingSettings(warmup_runs=5, warmup_seconds=0.0, min_runs=20, max_runs=500, max_seconds=10, target_ci=0.01,
                      min_windows=1)


def test_a_perfectly_stable_callable_stops_after_the_minimum_runs() -> None:
    fake = FakeClock([2.0])
    stats = time_callable(fake.run, FAST, clock=fake.clock)
    assert stats.runs == 20 and fake.calls == 25  # 5 warm-up runs are not samples
    assert stats.median_ms == stats.p10_ms == stats.p90_ms == pytest.approx(2.0)


def test_a_noisy_callable_gets_more_runs_until_the_median_is_pinned_down() -> None:
    fake = FakeClock([1.0, 1.3, 0.8, 1.1, 2.5, 0.9, 1.0, 1.2, 1.05, 0.95])
    stats = time_callable(fake.run, FAST, clock=fake.clock)
    assert 20 < stats.runs <= 500
    assert stats.p10_ms <= stats.median_ms <= stats.p90_ms


def test_even_a_stable_callable_is_sampled_at_several_moments() -> None:
    fake = FakeClock([2.0])
    settings = FAST.model_copy(update={"min_windows": 6, "window_runs": 5})
    assert time_callable(fake.run, settings, clock=fake.clock).windows == 6


def test_run_and_time_caps_bound_the_loop() -> None:
    fake = FakeClock([1.0, 5.0])  # bimodal: the median's interval never narrows
    capped = TimingSettings(warmup_runs=0, min_runs=5, max_runs=40, max_seconds=10, target_ci=0.001)
    assert time_callable(fake.run, capped, clock=fake.clock).runs == 40
    slow = FakeClock([100.0])
    timed = TimingSettings(warmup_runs=1, min_runs=50, max_runs=1000, max_seconds=0.5, target_ci=0.001,
                           window_runs=1)
    assert time_callable(slow.run, timed, clock=slow.clock).runs == 5


def test_warm_up_lasts_at_least_its_duration() -> None:
    fake = FakeClock([1.0])
    settings = TimingSettings(warmup_runs=2, warmup_seconds=0.05, min_runs=10, target_ci=0.5, min_windows=1)
    time_callable(fake.run, settings, clock=fake.clock)
    assert fake.calls == 50 + 10


def test_by_default_the_median_of_all_runs_is_reported_as_a_plain_loop_would() -> None:
    """Two modes 12% apart (as one VM kind's runs sit): a plain loop reports the slower one, where most runs
    are; so does the default statistic, while the quiet median would report the faster one, 12% lower."""
    settings = TimingSettings(warmup_runs=0, warmup_seconds=0, min_runs=20, max_runs=100, target_ci=0.01,
                              window_runs=10, min_windows=1)
    fake = FakeClock([1.0] * 4 + [1.12] * 6)
    stats = time_callable(fake.run, settings, clock=fake.clock)
    assert settings.statistic == "median" and stats.median_ms == pytest.approx(1.12) == stats.all_median_ms
    assert stats.disturbed == pytest.approx(0.6)  # the runs outside the quiet band, whatever is reported
    fake = FakeClock([1.0] * 4 + [1.12] * 6)
    quiet = time_callable(fake.run, settings.model_copy(update={"statistic": "quiet-median"}), clock=fake.clock)
    assert quiet.median_ms == pytest.approx(1.0) and quiet.disturbed == pytest.approx(0.6)


def test_the_quiet_median_sets_aside_runs_slowed_by_a_burst_of_other_load() -> None:
    fake = FakeClock([1.0] * 30 + [1.6] * 20)  # three quiet windows of 10 runs, then two disturbed
    settings = TimingSettings(warmup_runs=0, warmup_seconds=0, min_runs=50, max_runs=100, target_ci=0.001,
                              window_runs=10, min_windows=1, statistic="quiet-median")
    stats = time_callable(fake.run, settings, clock=fake.clock)
    assert stats.median_ms == stats.p90_ms == pytest.approx(1.0)
    assert (stats.runs, stats.windows) == (70, 7)  # 50 quiet runs suffice
    assert stats.disturbed == pytest.approx(20 / 70)
    assert stats.all_median_ms == pytest.approx(1.0)  # 50 of 70 runs quiet: the plain median is quiet too


def test_the_plain_median_of_all_runs_is_kept_beside_the_quiet_one() -> None:
    stats = summarize([[1.0, 1.01, 1.02, 1.5, 1.6, 1.7, 1.8]], tolerance=0.1)
    assert stats.median_ms == pytest.approx(1.01) and stats.all_median_ms == pytest.approx(1.5)


def test_quiet_runs_are_those_near_the_fastest_few() -> None:
    runs = [1.0, 1.02, 1.05, 1.3, 1.9, 1.04, 2.2]
    assert quiet_runs(runs, 0.1) == [1.0, 1.02, 1.04, 1.05]


def test_interleaved_parts_take_turns_and_drop_the_cold_first_run_of_each_window() -> None:
    shared = FakeClock([0.0])
    calls = {"a": 0, "b": 0}

    def part(name: str, ms: float):  # type: ignore[no-untyped-def]
        def run() -> None:
            calls[name] += 1
            shared.now_ns += int(ms * 1e6)
        return run

    settings = TimingSettings(warmup_runs=2, warmup_seconds=0, min_runs=10, window_runs=5, target_ci=0.01,
                              min_windows=1)
    a, b = time_interleaved([part("a", 1.0), part("b", 2.0)], settings, clock=shared.clock)
    assert (a.median_ms, b.median_ms) == (pytest.approx(1.0), pytest.approx(2.0))
    assert a.runs == b.runs == 10 and calls == {"a": 2 + 2 * 6, "b": 2 + 2 * 6}


def test_summary_quantiles_interpolate_like_numpy() -> None:
    stats = summarize([[float(x) for x in range(1, 11)]])
    assert (stats.median_ms, stats.p10_ms, stats.p90_ms, stats.runs) == (5.5, 1.9, 9.1, 10)
    assert stats.spread == pytest.approx((9.1 - 1.9) / 5.5)


def test_the_median_interval_narrows_with_more_samples() -> None:
    noisy = [1.0 + 0.1 * ((i * 7919) % 11) / 10 for i in range(400)]
    assert median_ci_rel(sorted(noisy[:400])) < median_ci_rel(sorted(noisy[:40]))


def test_a_follower_keeps_timing_until_every_other_part_has_stopped() -> None:
    """The speed canary (the follower) must see the same moments as the parts it scales."""
    shared = FakeClock([0.0])
    calls = {"quick": 0, "slow": 0, "canary": 0}

    def part(name: str, durations: list[float]):  # type: ignore[no-untyped-def]
        cycle = itertools.cycle(durations)

        def run() -> None:
            calls[name] += 1
            shared.now_ns += int(next(cycle) * 1e6)
        return run

    settings = TimingSettings(warmup_runs=0, warmup_seconds=0, min_runs=10, window_runs=5, target_ci=0.01,
                              min_windows=2, max_runs=400)
    quick, slow, canary = time_interleaved(
        [part("quick", [1.0]), part("slow", [1.0, 1.5, 2.0, 3.0]), part("canary", [1.0])], settings,
        clock=shared.clock, follower=2)
    assert quick.windows == 2 and slow.windows > quick.windows  # the noisy part needed more windows
    assert canary.windows == slow.windows  # the canary (stable, done after 2) followed until the end
