"""End-to-end measurement in a fresh pinned process, its cache, and clear errors for what cannot run."""

from __future__ import annotations

import os
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
