"""End-to-end measurement in a fresh pinned process, its cache, and clear errors for what cannot run."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nas.errors import LatencyError
from nas.latency import Measurement, Runtime, measure, measure_many
from nas.latency._runtimes import _REGISTRY
from tests.latency_support import QUICK_ORT, QUICK_TORCH, sqlite_url, tiny_network


def _sane(m: Measurement) -> None:
    s = m.stats
    assert 0 < s.p10_ms <= s.median_ms <= s.p90_ms
    assert s.runs >= 3 and s.median_ms < 100


def test_a_measurement_reports_median_p10_p90_and_runs_from_a_fresh_pinned_process(tmp_path: Path) -> None:
    m = measure(tiny_network(), QUICK_ORT, database_url=sqlite_url(tmp_path))
    _sane(m)
    assert not m.cached and m.resolution == 96 and m.profile == "quick-ort"
    assert m.conditions["fresh_process"] and m.conditions["pid"] != os.getpid()
    assert m.conditions["cpus"] == sorted(os.sched_getaffinity(0))[-1:]
    assert m.hardware["fingerprint"] == m.fingerprint and "cpu_model" in m.hardware


def test_the_second_measurement_of_a_network_is_served_from_the_cache(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)
    first = measure(tiny_network(), QUICK_ORT, database_url=url)
    again = measure(tiny_network(), QUICK_ORT, database_url=url)
    assert again.cached and again.stats == first.stats
    assert again.conditions == first.conditions and again.hardware == first.hardware


def test_the_cache_is_keyed_by_resolution_and_profile_and_can_be_bypassed(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)
    base = measure(tiny_network(), QUICK_ORT, database_url=url)
    at_128, twice = measure_many([tiny_network(), tiny_network()], QUICK_ORT, 128, database_url=url)
    assert not at_128.cached and at_128.resolution == 128
    assert twice.stats == at_128.stats  # the same network twice in one call is timed once
    assert not measure(tiny_network(), QUICK_TORCH, database_url=url).cached
    fresh = measure(tiny_network(), QUICK_ORT, database_url=url, use_cache=False)
    assert not fresh.cached and fresh.stats != base.stats
    assert measure(tiny_network(), QUICK_ORT, database_url=url).stats == fresh.stats


def test_pytorch_eager_measures_the_same_network(tmp_path: Path) -> None:
    _sane(measure(tiny_network(), QUICK_TORCH, database_url=sqlite_url(tmp_path)))


def test_a_network_too_big_for_the_profile_gets_a_clear_error(tmp_path: Path) -> None:
    small_device = QUICK_ORT.model_copy(update={"name": "mcu", "max_memory_mb": 0.1})
    with pytest.raises(LatencyError, match=r"needs \d+\.\d MB at resolution 96.*mcu allows 0.1 MB"):
        measure(tiny_network(), small_device, database_url=sqlite_url(tmp_path))


def test_a_profile_whose_runtime_is_not_available_here_gets_a_clear_error(tmp_path: Path) -> None:
    class Missing(Runtime):
        name = "missing-accelerator"

        @classmethod
        def unavailable_reason(cls) -> str | None:
            return "no accelerator driver found"

        def prepare(self, part):  # type: ignore[no-untyped-def]
            raise AssertionError("never prepared")

    _REGISTRY[Missing.name] = Missing
    try:
        profile = QUICK_ORT.model_copy(update={"name": "npu", "runtime": Missing.name})
        with pytest.raises(LatencyError, match="profile npu cannot run here: no accelerator driver found"):
            measure(tiny_network(), profile, database_url=sqlite_url(tmp_path))
    finally:
        del _REGISTRY[Missing.name]


def test_timings_are_scaled_to_the_reference_speed_of_a_canary_timed_beside_them(tmp_path: Path) -> None:
    """On a shared machine the host's speed drifts: each timing is multiplied by reference / canary,
    where the reference is the canary of the profile's first measuring process; the raw median is kept."""
    from nas.latency import _cache, fingerprint

    url = sqlite_url(tmp_path)
    first = measure(tiny_network(), QUICK_ORT, database_url=url)
    c = first.conditions
    assert c["canary_ms"] > 0.3 and c["speed_factor"] == 1.0  # the first process's canary became the reference
    assert first.stats.median_ms == pytest.approx(c["raw_median_ms"])
    _cache._CANARY_REFS.clear()
    slower_host = QUICK_ORT.model_copy(update={"name": "quick-ort-slow-ref"})  # same fingerprint settings
    _cache.canary_reference(url, slower_host.name, fingerprint(slower_host), 2 * c["canary_ms"])
    again = measure(tiny_network(), slower_host, database_url=url)
    a = again.conditions
    assert a["speed_factor"] == pytest.approx(2 * c["canary_ms"] / a["canary_ms"], rel=1e-4)
    assert again.stats.median_ms == pytest.approx(a["raw_median_ms"] * a["speed_factor"], rel=1e-4)
    assert again.stats.p10_ms <= again.stats.median_ms <= again.stats.p90_ms


def test_a_network_timed_while_the_host_ran_far_below_its_reference_speed_is_timed_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """Scaling by the canary is right for drift of a few percent; a VM just after a burst on every core ran
    10x slower for minutes. A reference planted at a fifth of this host's canary makes every group look 5x
    slow: it is timed again after a pause until the profile's wait is spent, then kept, scaled, and marked."""
    from nas.latency import _cache, _measure, fingerprint

    url = sqlite_url(tmp_path)
    first = measure(tiny_network(), QUICK_ORT, database_url=url)
    assert "retimed" not in first.conditions["load"]  # at its reference speed: timed once
    monkeypatch.setattr(_measure, "SLOW_HOST_PAUSE", 0.3)
    fast_ref = QUICK_ORT.model_copy(update={"name": "quick-ort-fast-ref",
                                            "timing": QUICK_ORT.timing.model_copy(update={"slow_host_wait": 1.0})})
    _cache.canary_reference(url, fast_ref.name, fingerprint(fast_ref), first.conditions["canary_ms"] / 5)
    with caplog.at_level("WARNING", logger="nas.latency._measure"):
        slow = measure(tiny_network(), fast_ref, database_url=url)
    load = slow.conditions["load"]
    assert load["retimed"] >= 1 and load["slow_canary_ms"] > 0
    assert "quick-ort-fast-ref: 1 of 1 parts were timed while the host ran" in caplog.text
    assert slow.conditions["speed_factor"] == pytest.approx(0.2, rel=0.5)  # kept, scaled by the canary


def test_a_fresh_databases_canary_reference_is_the_median_of_its_first_process_not_one_timing(
        tmp_path: Path) -> None:
    """One canary timing fixed the level of a whole database: on fresh databases the first was once 1.5x the
    later ones and once their minimum. So the first process's groups vote: the reference is their median."""
    from nas.latency import _cache, fingerprint
    from nas.latency._measure import WorkerRun
    from nas.latency._timing import LatencyStats

    url = sqlite_url(tmp_path)
    stats = LatencyStats.from_dict({"median_ms": 1.0, "p10_ms": 0.9, "p90_ms": 1.1, "mean_ms": 1.0,
                                    "min_ms": 0.8, "runs": 30, "ci_rel": 0.01, "windows": 1, "disturbed": 0.0})
    first = WorkerRun([stats, stats, stats, "failed"], {}, [{}] * 4, [3.0, 1.0, 2.0, 9.0])
    _cache._CANARY_REFS.clear()
    factors = [factor for _, factor in first.normalised(url, QUICK_ORT, fingerprint(QUICK_ORT))]
    assert factors == pytest.approx([2.0 / 3.0, 2.0, 1.0, 1.0])  # reference 2.0; the failed part is not scaled
    later = WorkerRun([stats], {}, [{}], [4.0])
    (scaled_stats, factor), = later.normalised(url, QUICK_ORT, fingerprint(QUICK_ORT))
    assert factor == pytest.approx(0.5) and scaled_stats.median_ms == pytest.approx(0.5)  # the reference stays


def test_a_dedicated_device_profile_can_switch_the_canary_off(tmp_path: Path) -> None:
    dedicated = QUICK_ORT.model_copy(update={"name": "dedicated", "speed_canary": False})
    m = measure(tiny_network(), dedicated, database_url=sqlite_url(tmp_path))
    assert m.conditions["canary_ms"] is None and m.conditions["speed_factor"] == 1.0
    assert m.stats.median_ms == m.conditions["raw_median_ms"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's")
def test_a_measuring_process_ends_when_its_caller_is_killed(tmp_path: Path) -> None:
    """A killed caller must not leave its measuring process behind, holding or awaiting a CPU's lock: here the
    lock is held by the test, so the measuring process waits on it until its caller is killed."""
    from nas.latency._worker import cpu_lock

    caller_code = ("from nas.latency._measure import run_parts\n"
                   "from nas.latency._parts import network_part\n"
                   "from tests.latency_support import QUICK_ORT, tiny_network\n"
                   "run_parts(QUICK_ORT, [network_part(tiny_network(), 96)])\n")
    with cpu_lock(QUICK_ORT.pinned_cpus()):
        caller = subprocess.Popen([sys.executable, "-c", caller_code], cwd=Path(__file__).parent.parent)
        try:
            worker = _child_of(caller.pid, "nas.latency._worker", timeout=60)
            _wait_blocked_on_a_lock(worker, timeout=60)  # it has said it is ready and waits for the CPU
            caller.kill()
            caller.wait()
            deadline = time.monotonic() + 10
            while _running(worker) and time.monotonic() < deadline:
                time.sleep(0.1)
            assert not _running(worker), "the measuring process outlived its killed caller"
        finally:
            caller.kill()
            caller.wait()


def _child_of(pid: int, marker: str, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
            if marker in Path(f"/proc/{child}/cmdline").read_bytes().decode(errors="replace"):
                return int(child)
        time.sleep(0.1)
    raise AssertionError(f"no {marker} process under {pid} within {timeout} s")


def _wait_blocked_on_a_lock(pid: int, timeout: float) -> None:
    """Until ``/proc/locks`` lists ``pid`` as waiting (a line marked ``->``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any("->" in line and f" {pid} " in line for line in Path("/proc/locks").read_text().splitlines()):
            return
        time.sleep(0.1)
    raise AssertionError(f"process {pid} did not wait for a lock within {timeout} s")


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the kernel's parent-death signal is Linux's")
def test_a_converting_process_ends_with_the_measuring_process_that_started_it(tmp_path: Path) -> None:
    """The measuring process converts files in a pool of its own; killed, it must not leave that pool
    converting for minutes (as a killed `nas latency validate` once did)."""
    parent = subprocess.Popen([sys.executable, "-c", """
import multiprocessing, sys, time
from concurrent.futures import ProcessPoolExecutor
from nas.latency._artifacts import _converter_started
if __name__ == "__main__":
    pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_converter_started, initargs=([],))
    print(pool.submit(__import__("os").getpid).result(), flush=True)
    pool.submit(time.sleep, 120)
    time.sleep(120)
"""], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    parent.kill()
    parent.wait(10)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            return
        if Path(f"/proc/{child}/stat").read_text().split()[2] == "Z":
            return  # ended, not yet reaped
        time.sleep(0.1)
    os.kill(child, 9)
    raise AssertionError("the converting process outlived the one that started it")


def test_the_canary_is_read_in_the_statistic_the_profile_reports_whether_beside_networks_or_parts() -> None:
    """Table parts are timed with the quiet median and networks with the median of all runs, but one reference
    canary serves both: so the canary's figure is the profile's network statistic either way."""
    from nas.latency._canary import canary_figure
    from nas.latency._timing import summarize

    beside_parts = summarize([[1.0, 1.0, 1.0, 1.12, 1.12, 1.12, 1.12]], tolerance=0.1, statistic="quiet-median")
    assert beside_parts.median_ms == pytest.approx(1.0)
    assert canary_figure(beside_parts, "median") == pytest.approx(1.12)
    assert canary_figure(beside_parts, "quiet-median") == pytest.approx(1.0)
