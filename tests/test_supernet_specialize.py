"""Specialising a trained supernet for a device and T: accuracy predictor (fitted once, then cached),
regularized evolution on predictors only, the best few measured on the device. Real parts throughout: a
tiny supernet trained on digits, a latency table timed with ONNX Runtime, real measurements. The space is
tiny (8 networks, 9 table parts) so that the table and the measurements take a minute on a busy machine;
the evolution itself is tested on mobilenetv3-small with known objectives."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from nas.arch import parse_architecture
from nas.latency import LatencyPredictor, build_table, measure_many
from nas.supernet import load_supernet, parse_supernet_spec, train_supernet
from nas.supernet._evolution import evolve
from nas.supernet._specialize import SpecializeSettings, predictor_path, specialize

from .latency_support import QUICK_ORT, QUICK_PROFILE_YAML

REPO = Path(__file__).resolve().parents[1]
MICRO_SPACE = """
name: micro
resolution: [96]
num_classes: 10
width: [1.0]
stem: {channels: 16, kernel: 3, stride: 2, activation: [relu]}
stages:
  - {block: [mbconv], channels: 16, stride: 2, depth: [1], expansion: [3, 6], kernel: [3, 5], se: [false],
     activation: [relu], groups: [1]}
  - {block: [mbconv], channels: 24, stride: 2, depth: [1], expansion: [3], kernel: [3], se: [false, true],
     activation: [hswish], groups: [1]}
head: {channels: 64, activation: [hswish]}
"""


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    root = tmp_path_factory.mktemp("specialize")
    (root / "micro.yaml").write_text(MICRO_SPACE)
    spec = parse_supernet_spec({"name": "micro", "space": str(root / "micro.yaml"),
                                "dataset": {"kind": "digits", "resolution": 32, "subset": 300},
                                "recipe": {"epochs": 1, "batch_size": 48, "resolution": 32, "threads": 1,
                                           "bn_recalibration": 96},
                                "sandwich": {"random": 1}})
    train_supernet(spec, root / "supernet")
    url = f"sqlite:///{root / 'latency.db'}"
    loaded = load_supernet(str(root / "supernet" / "supernet.pt"))
    build_table(QUICK_ORT, loaded.net.space, database_url=url, calibration_networks=0, output=root / "table.json")
    predictor = LatencyPredictor.from_file(root / "table.json")
    space = loaded.net.space
    every = {a.hash: a for a in (space.sample(seed=i, num_classes=10) for i in range(64))}
    assert len(every) == 8
    measured = measure_many(list(every.values()), QUICK_ORT, database_url=url)  # cached: finalists reuse them
    return {"root": root, "url": url, "file": str(root / "supernet" / "supernet.pt"), "predictor": predictor,
            "target": statistics.median(m.stats.median_ms for m in measured)}


def test_evolution_beats_random_sampling_at_equal_count_and_keeps_only_candidates_within_target() -> None:
    from nas.spaces import load_space

    space = load_space("mobilenetv3-small")

    def accuracy(archs):  # type: ignore[no-untyped-def]  # a known objective: wider and deeper is better
        return [sum(b.mid for _, _, b in a.blocks()) / 1000 for a in archs]

    def latency(arch):  # type: ignore[no-untyped-def]
        return sum(b.mid * b.kernel for _, _, b in arch.blocks()) / 1000

    target = statistics.median(latency(space.sample(seed=i)) for i in range(200))
    found = evolve(space, 10, accuracy, latency, target, candidates=2000, seed=1)
    assert found.scored == 2000 and found.best and all(s.latency_ms <= target for s in found.best)
    assert [s.accuracy for s in found.best] == sorted((s.accuracy for s in found.best), reverse=True)
    randoms = [space.sample(seed=10_000 + i) for i in range(2000)]
    best_random = max(a for a, arch in zip(accuracy(randoms), randoms, strict=True) if latency(arch) <= target)
    assert found.best[0].accuracy > best_random


def test_specialising_measures_a_winner_within_t_and_reuses_the_fitted_predictor(setup: dict[str, object]) -> None:
    loaded = load_supernet(str(setup["file"]))
    target = float(setup["target"])  # type: ignore[arg-type]
    predictor: LatencyPredictor = setup["predictor"]  # type: ignore[assignment]
    settings = SpecializeSettings(samples=16, calibration=96, candidates=600, finalists=3, population=8,
                                  sample_size=3)

    def measure(archs):  # type: ignore[no-untyped-def]
        return measure_many(archs, QUICK_ORT, database_url=str(setup["url"]))

    first = specialize(loaded, predictor.predict, measure, target, settings)
    assert first.predictor["cached"] is False and predictor_path(loaded, settings).is_file()
    assert first.scored >= 600 and first.scored_per_second > 0
    assert first.winner is not None and first.winner.measured["median_ms"] <= target
    assert all(first.winner.oneshot_accuracy >= f.oneshot_accuracy for f in first.finalists if f.within(target))
    assert set(first.phases) >= {"load_data", "accuracy_predictor", "evolution", "measure_finalists", "total"}

    again = specialize(loaded, predictor.predict, measure, target * 1.5, settings)  # a new T: no refit
    assert again.predictor["cached"] is True
    assert again.phases["accuracy_predictor"] < first.phases["accuracy_predictor"] / 5
    assert again.winner is not None and again.winner.measured["median_ms"] <= target * 1.5


def test_the_cli_prints_the_winner_and_the_time_of_each_phase(setup: dict[str, object], tmp_path: Path) -> None:
    devices = tmp_path / "devices"
    devices.mkdir()
    (devices / "quick-ort.yaml").write_text(QUICK_PROFILE_YAML)
    env = {k: v for k, v in os.environ.items() if not k.startswith("NAS_")}
    env.update({"NAS_HOME": str(tmp_path), "NAS_DEVICES_DIR": str(devices), "NAS_DATABASE_URL": str(setup["url"]),
                "PYTHONPATH": str(REPO)})
    target = float(setup["target"])  # type: ignore[arg-type]
    got = subprocess.run([sys.executable, "-m", "nas", "supernet", "specialize", str(setup["file"]),
                          "--device", "quick-ort", "--target-ms", f"{target:.4f}",
                          "--table", str(Path(str(setup["root"])) / "table.json"), "--samples", "16",
                          "--candidates", "500", "--finalists", "2", "-o", str(tmp_path / "winner.json"), "-q"],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert got.returncode == 0, got.stderr
    result = json.loads(got.stdout)
    assert result["winner"]["measured"]["median_ms"] <= float(f"{target:.4f}")
    assert result["candidates_scored"] >= 500 and "candidates/s" not in got.stdout
    assert "evolution" in result["phase_seconds"] and "scored" in got.stderr and "winner" in got.stderr
    winner = parse_architecture(json.loads((tmp_path / "winner.json").read_text()))
    assert winner.hash == result["winner"]["arch_hash"]
    assert yaml.safe_load(QUICK_PROFILE_YAML)["runtime"] == "onnxruntime"


def test_the_cli_specialises_for_a_device_whose_predictor_is_per_operator_costs(
        setup: dict[str, object], tmp_path: Path) -> None:
    """LiteRT, OpenVINO and the int8 profiles predict with per-operator costs fitted on measured networks,
    not with a lookup table: without --table the CLI uses whichever predictor the profile names (it read
    only tables, and stopped with "the table has no entry" on every such device)."""
    devices = tmp_path / "devices"
    devices.mkdir()
    (devices / "ops-ort.yaml").write_text(QUICK_PROFILE_YAML
                                          + "speed_canary: false\npredictor: ops\npredictor_networks: 8\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("NAS_")}
    env.update({"NAS_HOME": str(tmp_path), "NAS_DEVICES_DIR": str(devices),
                "NAS_DATABASE_URL": f"sqlite:///{tmp_path / 'ops.db'}", "PYTHONPATH": str(REPO)})
    space = str(Path(str(setup["root"])) / "micro.yaml")
    built = subprocess.run([sys.executable, "-m", "nas", "latency", "profile", "--device", "ops-ort", "--space", space,
                            "--resolution", "96", "--json"], cwd=REPO, env=env, capture_output=True, text=True,
                           timeout=600)
    assert built.returncode == 0, built.stderr
    assert json.loads(built.stdout.strip().splitlines()[-1])["approach"] == "ops"
    target = 2 * float(setup["target"])  # type: ignore[arg-type]
    got = subprocess.run([sys.executable, "-m", "nas", "supernet", "specialize", str(setup["file"]),
                          "--device", "ops-ort", "--target-ms", f"{target:.4f}", "--samples", "16",
                          "--candidates", "200", "--finalists", "2", "-q"],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert got.returncode == 0, got.stderr
    result = json.loads(got.stdout)
    assert result["winner"]["measured"]["median_ms"] <= float(f"{target:.4f}")
    assert 0 < result["winner"]["predicted_ms"] < 100
