"""Device profiles and hardware fingerprints."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from nas.errors import LatencyError, NotFoundError
from nas.latency import BUILT_IN, fingerprint, fingerprint_info, list_profiles, load_profile


def test_built_in_profiles_are_ort_and_torch_on_one_thread_with_batch_one() -> None:
    ort, torch = load_profile("cpu-ort-1t"), load_profile("cpu-torch-1t")
    assert (ort.runtime, ort.threads, ort.batch) == ("onnxruntime", 1, 1)
    assert (torch.runtime, torch.threads, torch.batch) == ("torch-eager", 1, 1)
    assert [p.name for p in list_profiles()][:2] == ["cpu-ort-1t", "cpu-torch-1t"]


def test_an_unknown_profile_is_a_not_found_error_naming_the_known_ones() -> None:
    with pytest.raises(NotFoundError, match="unknown device profile 'tpu-v9'.*cpu-ort-1t"):
        load_profile("tpu-v9")


def test_user_profiles_come_from_yaml_files_and_take_the_file_name_by_default(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "edge-box.yaml").write_text("runtime: onnxruntime\nthreads: 2\nbatch: 4\n")
    monkeypatch.setenv("NAS_DEVICES_DIR", str(tmp_path))
    profile = load_profile("edge-box")
    assert (profile.threads, profile.batch, profile.source) == (2, 4, str(tmp_path / "edge-box.yaml"))
    assert "edge-box" in [p.name for p in list_profiles()]
    assert load_profile(str(tmp_path / "edge-box.yaml")) == profile


def test_a_malformed_profile_names_the_file_and_the_field(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "bad.yaml").write_text("runtime: tensorrt\n")
    monkeypatch.setenv("NAS_DEVICES_DIR", str(tmp_path))
    with pytest.raises(LatencyError, match=r"bad.yaml: runtime: unknown runtime 'tensorrt'"):
        load_profile("bad")


def test_a_user_profile_cannot_shadow_a_built_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "x.yaml").write_text("name: cpu-ort-1t\nruntime: torch-eager\n")
    monkeypatch.setenv("NAS_DEVICES_DIR", str(tmp_path))
    with pytest.raises(LatencyError, match="built-in"):
        list_profiles()


def test_the_fingerprint_records_cpu_cores_and_library_versions() -> None:
    info = fingerprint_info(BUILT_IN["cpu-ort-1t"])
    assert {"cpu_model", "logical_cpus", "torch_version", "onnxruntime_version", "numpy_version"} <= set(info)
    assert info["logical_cpus"] >= 1 and len(info["fingerprint"]) == 12
    assert fingerprint(BUILT_IN["cpu-ort-1t"]) == info["fingerprint"]


def test_settings_that_change_timings_change_the_fingerprint_but_timing_budgets_do_not() -> None:
    base = BUILT_IN["cpu-ort-1t"]
    two_threads = base.model_copy(update={"threads": 2})
    longer = base.model_copy(update={"timing": base.timing.model_copy(update={"max_seconds": 9.0})})
    assert fingerprint(two_threads) != fingerprint(base)
    assert fingerprint(longer) == fingerprint(base)
    assert fingerprint(BUILT_IN["cpu-torch-1t"]) != fingerprint(base)


def test_the_shipped_example_profile_loads() -> None:
    assert load_profile("cpu-ort-2t").threads == 2


def test_importing_the_latency_package_does_not_import_torch_or_any_runtime() -> None:
    code = ("import sys, nas.latency; print(any(m in sys.modules for m in "
            "('torch', 'onnxruntime', 'openvino', 'ai_edge_litert', 'litert_torch')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
