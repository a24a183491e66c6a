"""A search with ``proxy.supernet``: every trial is evaluated one-shot with the supernet's weights instead
of being trained, and the winner is exported from those weights."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from optuna.trial import TrialState

from nas.arch import parse_architecture
from nas.errors import SpecError
from nas.export import load_state
from nas.search import run_search, write_outputs
from nas.supernet import evaluate_subnet, load_supernet, oneshot_data, parse_supernet_spec, train_supernet

from .search_helpers import tiny_spec


@pytest.fixture(scope="module")
def supernet_file(tmp_path_factory: pytest.TempPathFactory) -> str:
    out = tmp_path_factory.mktemp("supernet")
    spec = parse_supernet_spec({"name": "s", "dataset": {"kind": "digits", "resolution": 32, "subset": 300},
                                "recipe": {"epochs": 1, "batch_size": 48, "resolution": 32, "threads": 1,
                                           "bn_recalibration": 96},
                                "sandwich": {"random": 0}})
    train_supernet(spec, out)
    return str(out / "supernet.pt")


def test_trials_are_evaluated_one_shot_with_the_supernets_weights_and_the_winner_exported(
        tmp_path: Path, supernet_file: str) -> None:
    spec = tiny_spec(name="oneshot", strategy={"name": "evolution", "options": {"population_size": 2}},
                     budget={"trials": 4}, export_onnx=True,
                     proxy={"supernet": supernet_file, "recipe": {"epochs": 1, "resolution": 32, "threads": 1,
                                                                 "bn_recalibration": 96}})
    ctx = run_search(spec, storage_url=f"sqlite:///{tmp_path / 'nas.db'}", run_dir=tmp_path / "run")
    trials = ctx.study.get_trials(states=(TrialState.COMPLETE,))
    assert len(trials) == 4
    loaded = load_supernet(supernet_file)
    calib_x, val_x, val_y = oneshot_data(loaded, 96)
    for t in trials:
        assert t.user_attrs["epochs_run"] == 0
        arch = parse_architecture(t.user_attrs["architecture"])
        assert t.user_attrs["accuracy"] == evaluate_subnet(loaded.net, arch, calib_x, val_x, val_y).accuracy
    result = write_outputs(ctx)
    _, _, provenance = load_state(Path(result["files"]["state"]))
    assert provenance["supernet"] == supernet_file and "one-shot" in provenance["weights"]
    assert Path(result["files"]["onnx"]).is_file()


def test_an_empty_supernet_reference_is_refused_naming_the_field() -> None:
    with pytest.raises(SpecError, match="proxy.supernet"):
        tiny_spec(proxy={"supernet": ""})


def test_nas_run_refuses_an_unknown_supernet_before_starting(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(tiny_spec(proxy={"supernet": "nope"}).model_dump(mode="json")))
    done = subprocess.run([sys.executable, "-m", "nas", "run", str(spec), "-q"], capture_output=True, text=True,
                          env={**os.environ, "NAS_HOME": str(tmp_path)}, timeout=300)
    assert done.returncode == 2 and "unknown supernet 'nope'" in done.stderr
