"""``nas latency validate``: the predictor scored against fresh measurements, from an empty database."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from nas.arch import from_string
from nas.latency import _cache, calibration_networks
from nas.latency._validate import accuracy, host_noise
from nas.spaces import load_space
from tests.latency_support import QUICK_PROFILE_YAML, TINY_SPACE


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    devices = tmp_path / "devices"
    devices.mkdir()
    # CPU 0: the built-in profiles' measurements queue on CPU 1's lock, for minutes when the host is shared.
    (devices / "quick.yaml").write_text(QUICK_PROFILE_YAML + "cpus: [0]\n")
    (tmp_path / "tiny.yaml").write_text(TINY_SPACE)
    return {**os.environ, "NAS_DEVICES_DIR": str(devices), "NAS_HOME": str(tmp_path / "home"),
            "NAS_DATABASE_URL": f"sqlite:///{tmp_path / 'latency.db'}",
            "NAS_ARTIFACT_CACHE": str(tmp_path / "artifacts"),
            # A cache smaller than the fresh networks' files: the plain loop must still find every one of
            # them (with a cache of 32 files, `--n 50` failed after nine minutes of measuring).
            "NAS_ARTIFACT_CACHE_MB": "0.001"}


def validate(env: dict[str, str], tmp_path: Path) -> dict:  # type: ignore[type-arg]
    result = subprocess.run([sys.executable, "-m", "nas", "latency", "validate", "--device", "quick", "--space",
                             str(tmp_path / "tiny.yaml"), "--n", "5", "--calibrate", "4", "--json"],
                            capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def errors(data: dict, key: str) -> list[float]:  # type: ignore[type-arg]
    return [r["predicted_ms"] / r[key] - 1 for r in data["networks"]]


def test_validate_builds_the_table_then_scores_fresh_networks_against_both_references(
        env: dict[str, str], tmp_path: Path) -> None:
    data = validate(env, tmp_path)
    build = data["build"]
    assert build["parts_timed"] > 0 and build["calibrated_now"] == 4 and build["seconds"] > 0
    calibration = {a.hash for a in calibration_networks(load_space(str(tmp_path / "tiny.yaml")), 96, 4)}
    hashes = [r["arch_hash"] for r in data["networks"]]
    assert len(set(hashes)) == 5 and not calibration & set(hashes)
    assert data["plain_runs"] == 200 and data["plain_rounds"] == 5
    speed = data["host"].pop("speed")
    assert data["host"] == host_noise([r["plain_ms"] for r in data["networks"]],
                                      [r["plain_quiet_ms"] for r in data["networks"]],
                                      [r["project_ms"] for r in data["networks"]])
    # the canary's network timed in the plain loop's rounds, against the speed the project's figures are scaled to
    assert speed["reference_canary_ms"] == _cache.stored_canary_reference(
        env["NAS_DATABASE_URL"], "quick", data["fingerprint"])
    assert speed["ratio"] == pytest.approx(speed["plain_canary_ms"] / speed["reference_canary_ms"])
    at_reference = [r["predicted_ms"] / (r["plain_ms"] / speed["ratio"]) - 1 for r in data["networks"]]
    assert data["references"]["plain_at_reference_speed"]["within_10"] == sum(abs(e) <= 0.1 for e in at_reference) / 5
    # what the fit was made from, with both statistics, for an offline refit (benchmarks/refit_statistic.py)
    assert data["statistic"] == "quiet-median" and len(data["calibration_measurements"]) == 4
    assert all(c["all_median_ms"] >= c["quiet_median_ms"] == pytest.approx(c["median_ms"])
               for c in data["calibration_measurements"])
    assert all(from_string(r["architecture"]).hash == r["arch_hash"] for r in data["networks"])
    assert all(r["plain_other_cpus"] >= 0 for r in data["networks"])
    # the project's statistic over the plain loop's own runs: the median of its lower part
    assert all(0 < r["plain_quiet_ms"] <= r["plain_ms"] for r in data["networks"])
    assert all(r["project_all_ms"] >= r["project_ms"] > 0 for r in data["networks"])  # and the project's converse
    for name, key in (("plain", "plain_ms"), ("project", "project_ms")):
        ref, errs = data["references"][name], errors(data, key)
        assert ref["within_10"] == sum(abs(e) <= 0.10 for e in errs) / 5
        assert ref["mape"] == pytest.approx(100 * statistics.fmean(abs(e) for e in errs))
        assert abs(ref["worst"][0]["error"]) == pytest.approx(max(abs(e) for e in errs))
        # A fitted calibration: the table is in the measurements' range (loose: the plain loop has no defence
        # against the other test worker, which once moved this median error to +54%).
        assert abs(ref["bias"]) < 1.0

    # A calibration three times too steep: the same fresh networks, measured again, all miss by ~+200%.
    url = env["NAS_DATABASE_URL"]
    for cal in _cache.get_calibrations(url, "quick", data["fingerprint"]):
        _cache.put_calibration(url, "quick", data["fingerprint"], cal["scope"], cal["resolution"],
                               slope=3 * cal["slope"], intercept_ms=3 * cal["intercept_ms"],
                               ms_per_mparam=3 * cal["ms_per_mparam"],
                               slope_per_mparam=3 * (cal["slope_per_mparam"] or 0.0), points=cal["points"])
    wrong = validate(env, tmp_path)
    assert wrong["build"]["parts_timed"] == 0 and wrong["build"]["calibrated_now"] == 0
    assert [r["arch_hash"] for r in wrong["networks"]] == hashes
    # Every part of the calibration is linear, so each prediction is exactly three times the first one.
    for before, after in zip(data["networks"], wrong["networks"], strict=True):
        assert after["predicted_ms"] == pytest.approx(3 * before["predicted_ms"], rel=1e-6)
    for name in ("plain", "project"):
        assert wrong["references"][name]["within_10"] == 0
        assert wrong["references"][name]["bias"] > data["references"][name]["bias"] + 0.5
    assert data["references"]["plain"]["within_10"] >= wrong["references"]["plain"]["within_10"]


def test_accuracy_ranks_and_shares() -> None:
    report = accuracy([1.0, 2.0, 3.3, 4.0], [1.0, 2.1, 3.0, 5.0], ["a", "b", "c", "d"])
    assert report["within_5"] == 0.5 and report["within_10"] == 0.75 and report["kendall_tau"] == 1.0
    assert [w["arch_hash"] for w in report["worst"]][:2] == ["d", "c"]
    assert report["mape"] == pytest.approx(100 * (0 + 0.1 / 2.1 + 0.1 + 0.2) / 4)


def test_a_run_whose_references_disagree_or_whose_loop_was_disturbed_is_flagged() -> None:
    """Figures of two validate runs (2026-12-01): a quiet one, and one whose plain loop's all-runs median
    sat 20% above its quiet-run median (the predictor then scored 23% within +-10% against it)."""
    quiet = host_noise(plain=[1.0, 2.0, 3.0], plain_quiet=[0.99, 1.97, 2.95], project=[1.02, 1.95, 3.1])
    assert quiet["all_over_quiet"] == pytest.approx(2.0 / 1.97) and quiet["references_within_10"] == 1.0
    assert not quiet["disturbed"]
    noisy = host_noise(plain=[1.0, 2.0, 3.0], plain_quiet=[0.8, 1.7, 2.5], project=[0.85, 1.95, 3.0])
    assert noisy["all_over_quiet"] == pytest.approx(1.2) and noisy["disturbed"]
    apart = host_noise(plain=[1.0, 2.0, 3.0], plain_quiet=[0.99, 1.98, 2.97], project=[0.8, 2.0, 3.0])
    assert apart["references_within_10"] == pytest.approx(2 / 3) and apart["disturbed"]


def test_validate_builds_a_per_operator_predictor_and_scores_networks_it_was_not_fitted_on(
        env: dict[str, str], tmp_path: Path) -> None:
    devices = Path(env["NAS_DEVICES_DIR"])
    (devices / "quick.yaml").write_text(QUICK_PROFILE_YAML + "cpus: [0]\npredictor: ops\npredictor_networks: 8\n")
    data = validate(env, tmp_path)
    assert data["predictor"] == "ops" and data["calibration"]["model"] == "ops"
    assert data["build"]["calibrated_now"] == 8 and data["build"]["parts_timed"] == 0
    fitted = {a.hash for a in calibration_networks(load_space(str(tmp_path / "tiny.yaml")), 96, 8)}
    hashes = {r["arch_hash"] for r in data["networks"]}
    assert len(hashes) == 5 and not fitted & hashes
    errs = errors(data, "project_ms")
    assert data["references"]["project"]["within_10"] == sum(abs(e) <= 0.10 for e in errs) / 5

    # Measured once, the five join the device's fit: a second run must score five others.
    again = validate(env, tmp_path)
    assert again["build"]["calibrated_now"] == 0 and not hashes & {r["arch_hash"] for r in again["networks"]}


def test_the_plain_loop_can_interleave_files_in_rounds_and_still_times_each_file_runs_times(tmp_path: Path) -> None:
    """One plain loop per file did not repeat on a quiet VM (42% within +-10% twenty minutes later): host
    drift between files. In rounds, each file is visited once per round in a shuffled order."""
    from nas.export import export_onnx
    from nas.latency._plain import interleaved_timing

    space = load_space(str(_tiny_space(tmp_path)))
    paths = [export_onnx(space.sample(seed=seed, num_classes=10).with_(resolution=32), tmp_path / f"{seed}.onnx")
             for seed in range(3)]
    visits: list[str] = []

    class Recorder:
        def __enter__(self) -> None:
            visits.append("visit")

        def __exit__(self, *exc: object) -> None:
            return None

    times = interleaved_timing(paths, runs=11, warmup=2, rounds=4, lock=Recorder)
    assert [len(t) for t in times] == [11, 11, 11] and all(x > 0 for t in times for x in t)
    assert len(visits) == 3 * 4  # each file once per round, under the measuring lock
    lines = subprocess.run([sys.executable, "-m", "nas.latency._plain", *map(str, paths), "--runs", "6",
                            "--rounds", "3", "--warmup", "1", "--json"],
                           capture_output=True, text=True, check=True, timeout=300).stdout.splitlines()
    assert [json.loads(line)["latency"]["runs"] for line in lines] == [6, 6, 6]


def test_the_plain_loop_holds_one_model_at_a_time_as_a_users_loop_does(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With all 100 files of a validation loaded in one process, ShuffleNet int8 networks timed 8-11%
    slower than interleaved six at a time (docs/latency.md): each visit loads its file and drops it after."""
    import weakref

    from nas.export import export_onnx
    from nas.latency import _plain

    space = load_space(str(_tiny_space(tmp_path)))
    paths = [export_onnx(space.sample(seed=seed, num_classes=10).with_(resolution=32), tmp_path / f"{seed}.onnx")
             for seed in range(3)]
    alive: list[weakref.ref[object]] = []
    most = []
    real = _plain.load_runner

    def counted(path: Path, threads: int = 1):  # type: ignore[no-untyped-def]
        run, x = real(path, threads)
        alive[:] = [r for r in alive if r() is not None]
        most.append(len(alive) + 1)
        alive.append(weakref.ref(run))
        return run, x

    monkeypatch.setattr(_plain, "load_runner", counted)
    _plain.interleaved_timing(paths, runs=8, warmup=1, rounds=4)
    assert len(most) == 3 * 4 and max(most) == 1


def _tiny_space(tmp_path: Path) -> Path:
    path = tmp_path / "tiny-space.yaml"
    path.write_text(TINY_SPACE)
    return path
