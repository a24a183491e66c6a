"""``nas latency`` and ``nas devices`` as a user runs them (a quick-timing profile keeps them fast)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from nas.arch import load_architecture, save_architecture
from nas.latency import network_keys
from nas.spaces import load_space
from tests.latency_support import QUICK_PROFILE_YAML, TINY_SPACE


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    devices = tmp_path / "devices"
    devices.mkdir()
    (devices / "quick.yaml").write_text(QUICK_PROFILE_YAML)
    return {**os.environ, "NAS_DEVICES_DIR": str(devices), "NAS_HOME": str(tmp_path / "home"),
            "NAS_DATABASE_URL": ""}


def nas(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([sys.executable, "-m", "nas", *args], capture_output=True, text=True, env=env,
                            timeout=300)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def test_measure_json_prints_median_p10_p90_and_runs(env: dict[str, str]) -> None:
    data = json.loads(nas(env, "latency", "measure", "mobilenetv3-small-0.75", "--device", "quick",
                          "--resolution", "96", "--json").stdout)
    assert 0 < data["p10_ms"] <= data["median_ms"] <= data["p90_ms"] and data["runs"] >= 3
    assert data["resolution"] == 96 and data["profile"] == "quick" and data["cached"] is False


def test_predict_json_prints_the_prediction_timing_missing_parts_on_demand(env: dict[str, str]) -> None:
    data = json.loads(nas(env, "latency", "predict", "mobilenetv3-small-0.75", "-d", "quick", "-r", "96",
                          "--json").stdout)
    distinct_parts = len(set(network_keys(load_architecture("mobilenetv3-small-0.75"), 96)))
    assert data["predicted_ms"] > 0 and data["parts_timed_now"] == distinct_parts + 1  # + call overhead
    assert data["calibrated"] is False and data["resolution"] == 96
    again = json.loads(nas(env, "latency", "predict", "mobilenetv3-small-0.75", "-d", "quick", "-r", "96",
                           "--json").stdout)
    assert again["parts_timed_now"] == 0 and again["predicted_ms"] == data["predicted_ms"]


def test_profile_builds_a_calibrated_table_that_predict_reads_back(env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "tiny.yaml").write_text(TINY_SPACE)
    table = tmp_path / "tiny-table.json"
    report = json.loads(nas(env, "latency", "profile", "--device", "quick", "--space", str(tmp_path / "tiny.yaml"),
                            "--calibrate", "3", "--output", str(table), "--json").stdout)
    assert report["entries"] > 10 and report["calibration"]["scope"] == "tiny" and table.is_file()
    arch = tmp_path / "a.json"
    save_architecture(load_space(str(tmp_path / "tiny.yaml")).sample(seed=5), arch)
    from_file = json.loads(nas(env, "latency", "predict", str(arch), "-d", "quick", "--table", str(table),
                               "--json").stdout)
    from_db = json.loads(nas(env, "latency", "predict", str(arch), "-d", "quick", "--json").stdout)
    assert from_file["calibrated"] and from_file["predicted_ms"] == pytest.approx(from_db["predicted_ms"], rel=1e-4)


def test_devices_list_shows_the_built_in_and_user_profiles(env: dict[str, str]) -> None:
    rows = json.loads(nas(env, "devices", "list", "--json").stdout)
    assert {"cpu-ort-1t", "cpu-torch-1t", "quick"} <= {r["name"] for r in rows}
    assert all(r["available"] for r in rows)
    assert "cpu-ort-1t" in nas(env, "devices", "list").stdout


def test_an_unknown_device_is_a_one_line_error_with_exit_code_2(env: dict[str, str]) -> None:
    result = nas(env, "latency", "measure", "mobilenetv3-small-1.0", "--device", "pixel-9", check=False)
    assert result.returncode == 2
    assert result.stderr.strip() == "error: unknown device profile 'pixel-9' (known: cpu-litert-1t, " \
        "cpu-litert-int8-1t, cpu-openvino-1t, cpu-ort-1t, cpu-ort-2t, cpu-ort-int8-1t, cpu-torch-1t, quick)"
