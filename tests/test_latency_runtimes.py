"""The deployment runtimes (LiteRT fp32/int8 with XNNPACK, OpenVINO, ONNX Runtime int8): each times a
real converted network in the measuring process, and table parts where it supports them.

Conversions are real and slow (litert-torch takes 10-30 s per network here), so the networks are tiny
and the artifact cache is shared by the tests of this module.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from nas.latency import BUILT_IN, DeviceProfile, fingerprint_info, list_profiles, measure
from nas.latency._measure import run_parts
from nas.latency._parts import network_parts
from nas.latency._runtimes import runtime_unavailable_reason
from tests.latency_support import QUICK, sqlite_url, tiny_network

NEW = {"cpu-litert-1t": "litert", "cpu-litert-int8-1t": "litert-int8", "cpu-openvino-1t": "openvino",
       "cpu-ort-int8-1t": "onnxruntime-int8"}


@pytest.fixture(scope="module", autouse=True)
def artifact_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("artifacts")
    old = os.environ.get("NAS_ARTIFACT_CACHE")
    os.environ["NAS_ARTIFACT_CACHE"] = str(path)
    yield path
    if old is None:
        del os.environ["NAS_ARTIFACT_CACHE"]
    else:
        os.environ["NAS_ARTIFACT_CACHE"] = old


def quick(runtime: str) -> DeviceProfile:
    return DeviceProfile(name=f"quick-{runtime}", runtime=runtime, timing=QUICK, table_timing=QUICK,
                         speed_canary=False, options={"calibration_images": 2})


def test_the_built_in_profiles_name_their_runtime_and_are_available_here() -> None:
    names = [p.name for p in list_profiles()]
    for name, runtime in NEW.items():
        profile = BUILT_IN[name]
        assert (profile.runtime, profile.threads, profile.batch) == (runtime, 1, 1)
        assert name in names and runtime_unavailable_reason(runtime) is None


def test_runtime_library_versions_join_the_fingerprint_of_their_profiles_only() -> None:
    litert = fingerprint_info(BUILT_IN["cpu-litert-1t"])
    assert set(litert["runtime_libraries"]) == {"litert-torch", "ai-edge-litert"}
    assert set(fingerprint_info(BUILT_IN["cpu-openvino-1t"])["runtime_libraries"]) == {"openvino"}
    assert "runtime_libraries" not in fingerprint_info(BUILT_IN["cpu-ort-1t"])  # its stored tables stay valid


@pytest.mark.parametrize("runtime", ["litert", "litert-int8", "openvino", "onnxruntime-int8"])
def test_each_runtime_measures_a_converted_network_in_a_fresh_process(runtime: str, tmp_path: Path,
                                                                       artifact_cache: Path) -> None:
    m = measure(tiny_network(64), quick(runtime), database_url=sqlite_url(tmp_path))
    s = m.stats
    assert 0 < s.p10_ms <= s.median_ms <= s.p90_ms < 100 and s.runs >= 10
    assert m.conditions["fresh_process"] and m.conditions["threads"] == 1
    suffix = {"litert": ".tflite", "litert-int8": ".tflite", "openvino": ".xml", "onnxruntime-int8": ".onnx"}
    cached = [p.name for p in artifact_cache.iterdir() if p.name.startswith(tiny_network(64).hash)]
    assert any(n.endswith(suffix[runtime]) and ("int8" in n) == runtime.endswith("int8") for n in cached)


@pytest.mark.parametrize("value", ["2GB", "-1", "nan"])
def test_a_bad_cache_budget_is_an_error_naming_the_variable(value: str, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from nas.errors import SettingsError
    from nas.latency._artifacts import _prune

    monkeypatch.setenv("NAS_ARTIFACT_CACHE_MB", value)
    with pytest.raises(SettingsError, match=f"NAS_ARTIFACT_CACHE_MB: Input should be .*got '{value}'"):
        _prune(tmp_path, keep=tmp_path / "x.onnx")


@pytest.mark.parametrize("runtime", ["openvino", "onnxruntime-int8"])
def test_openvino_and_ort_int8_time_lookup_table_parts_too(runtime: str) -> None:
    parts = network_parts(tiny_network(64))
    run = run_parts(quick(runtime), parts[:3], timing=QUICK)
    assert all(not isinstance(r, str) and r.median_ms > 0 for r in run.results), run.results


def test_an_empty_cache_variable_means_the_default_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    import tempfile

    from nas.latency._artifacts import cache_dir

    monkeypatch.setenv("NAS_ARTIFACT_CACHE", "")  # as a shell's `NAS_ARTIFACT_CACHE= nas ...` sets it
    assert cache_dir() == Path(tempfile.gettempdir()) / "nas-artifacts"


def test_the_artifact_cache_keeps_the_most_recently_used_files_within_its_size_budget(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from nas.latency._artifacts import _prune

    monkeypatch.setenv("NAS_ARTIFACT_CACHE_MB", str(3 / 2**20))  # 3 bytes
    for age, name in enumerate(["new.tflite", "mid.xml", "old.onnx", "older.onnx"]):
        (tmp_path / name).write_bytes(b"x")
        os.utime(tmp_path / name, (1e9 - age, 1e9 - age))
    (tmp_path / "mid.bin").write_bytes(b"w")  # counts with its .xml: new + mid fill the 3 bytes
    _prune(tmp_path, keep=tmp_path / "older.onnx")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mid.bin", "mid.xml", "new.tflite", "older.onnx"]


def test_the_artifact_cache_holds_a_hundred_networks_so_validate_does_not_convert_them_twice(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``nas latency validate --n 100`` times each file in the project's process, then in a plain loop;
    with a cap of 32 files the first 68 were converted again (LiteRT: 10-15 s each)."""
    from nas.latency._artifacts import _prune

    monkeypatch.delenv("NAS_ARTIFACT_CACHE_MB", raising=False)
    for i in range(140):
        (tmp_path / f"net{i}.tflite").write_bytes(b"x" * 10_000)  # the default budget is in MB
        _prune(tmp_path, keep=tmp_path / f"net{i}.tflite")
    assert len(list(tmp_path.iterdir())) == 140


@pytest.mark.parametrize("runtime", ["openvino", "onnxruntime-int8"])
def test_a_calibrated_lookup_table_builds_and_predicts_on_openvino_and_ort_int8(runtime: str,
                                                                                 tmp_path: Path) -> None:
    """The predictor's machinery is runtime-agnostic; its accuracy on these devices is not measured here."""
    from nas.latency import LatencyPredictor, build_table
    from tests.latency_support import tiny_space

    url, space, profile = sqlite_url(tmp_path), tiny_space(tmp_path), quick(runtime)
    report = build_table(profile, space, database_url=url, calibration_networks=2)
    assert report.entries > 10 and not report.failed and report.measured == report.entries
    predicted = LatencyPredictor.from_database(profile, database_url=url).predict(space.sample(seed=3))
    assert 0 < predicted < 100
