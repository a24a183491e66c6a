"""Training a supernet for real on digits (tiny settings): sandwich steps, checkpoints, exact resume after
Ctrl-C, and the ``nas supernet`` commands in a subprocess."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from nas.errors import SupernetError
from nas.supernet import SupernetSpec, load_supernet, parse_supernet_spec, train_supernet

TINY = {"name": "tiny", "space": "mobilenetv3-small", "dataset": {"kind": "digits", "resolution": 32, "subset": 300},
        "recipe": {"epochs": 2, "batch_size": 48, "lr": 0.05, "resolution": 32, "bn_recalibration": 96,
                   "threads": 1, "seed": 3},
        "sandwich": {"random": 1}, "largest_epochs": 1}


def tiny(**changes: object) -> SupernetSpec:
    return parse_supernet_spec({**TINY, **changes})


def test_training_runs_the_largest_alone_then_sandwiches_and_saves_a_loadable_supernet(tmp_path: Path) -> None:
    seen: list[tuple[int, str]] = []
    summary = train_supernet(tiny(), tmp_path, on_progress=lambda p: seen.append((p.step, p.phase)))
    steps_per_epoch = summary["steps"] // 2
    assert summary["steps"] == 2 * steps_per_epoch > 0
    phases = dict(seen)
    assert phases[1] == "largest" and phases[summary["steps"]] == "sandwich"
    assert [h["epoch"] for h in summary["history"]] == [1, 2]
    assert all(0.0 <= h["largest"] <= 1.0 and 0.0 <= h["smallest"] <= 1.0 for h in summary["history"])
    loaded = load_supernet(str(tmp_path / "supernet.pt"))
    assert loaded.meta["fingerprint"] == tiny().fingerprint and loaded.net.num_classes == 10


def test_progressive_shrinking_over_groups_then_the_uniform_rule_run_in_their_epochs(tmp_path: Path) -> None:
    seen: list[tuple[int, str]] = []
    spec = tiny(recipe={**TINY["recipe"], "epochs": 3}, dense_epochs=1,  # type: ignore[dict-item]
                sandwich={"random": 1, "rule": "uniform"})
    summary = train_supernet(spec, tmp_path, on_progress=lambda p: seen.append((p.step, p.phase)))
    per_epoch = summary["steps"] // 3
    phases = dict(seen)
    assert [phases[per_epoch], phases[2 * per_epoch], phases[3 * per_epoch]] == ["largest", "uniform-dense", "uniform"]
    assert spec.fingerprint != tiny(recipe={**TINY["recipe"], "epochs": 3}).fingerprint  # type: ignore[dict-item]


def test_ctrl_c_saves_a_checkpoint_and_the_resumed_run_ends_with_the_same_weights(tmp_path: Path) -> None:
    whole = train_supernet(tiny(), tmp_path / "whole")

    def interrupt_at_step_3(p) -> None:  # type: ignore[no-untyped-def]
        if p.step == 3:
            os.kill(os.getpid(), signal.SIGINT)  # as a terminal's Ctrl-C: handled after this step

    with pytest.raises(KeyboardInterrupt):
        train_supernet(tiny(), tmp_path / "cut", on_progress=interrupt_at_step_3)
    saved = torch.load(tmp_path / "cut" / "checkpoint.pt", weights_only=True)
    assert saved["state"]["step"] == 3
    resumed = train_supernet(tiny(), tmp_path / "cut")
    assert resumed["steps"] == whole["steps"]
    a = load_supernet(str(tmp_path / "whole" / "supernet.pt")).net.state_dict()
    b = load_supernet(str(tmp_path / "cut" / "supernet.pt")).net.state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), [k for k in a if not torch.equal(a[k], b[k])][:3]


def test_a_checkpoint_from_another_spec_is_not_resumed_silently(tmp_path: Path) -> None:
    spec = tiny(recipe={**TINY["recipe"], "epochs": 1}, largest_epochs=0)  # type: ignore[dict-item]
    train_supernet(spec, tmp_path)
    other = tiny(recipe={**TINY["recipe"], "epochs": 1, "lr": 0.01}, largest_epochs=0)  # type: ignore[dict-item]
    with pytest.raises(SupernetError, match="different spec"):
        train_supernet(other, tmp_path)


def test_spec_errors_name_the_field() -> None:
    from nas.errors import SpecError

    with pytest.raises(SpecError, match="largest_epochs"):
        tiny(largest_epochs=2)
    with pytest.raises(SpecError, match="sandwich.random"):
        tiny(sandwich={"random": -1})
    with pytest.raises(SpecError, match="sandwich.random"):
        tiny(sandwich={"random": 0, "rule": "uniform"})
    with pytest.raises(SpecError, match="dense_epochs"):
        tiny(dense_epochs=1)  # with largest_epochs 1, no epoch would be left for the group choices


def _nas(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NAS_HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "nas", *args], env=env, capture_output=True, text=True, timeout=600)


def test_the_cli_trains_evaluates_one_shot_and_extracts_a_subnet(tmp_path: Path) -> None:
    spec = tmp_path / "tiny.yaml"
    spec.write_text(yaml.safe_dump({**TINY, "largest_epochs": 0, "recipe": {**TINY["recipe"], "epochs": 1}}))
    trained = _nas(tmp_path, "supernet", "train", str(spec), "-q", "--name", "cli")
    assert trained.returncode == 0, trained.stderr
    out = json.loads(trained.stdout)
    assert out["name"] == "cli" and Path(out["file"]).is_file()
    shown = _nas(tmp_path, "arch", "sample", "--space", "mobilenetv3-small", "--seed", "4", "--classes", "10")
    assert shown.returncode == 0, shown.stderr
    arch_file = tmp_path / "a.json"
    arch_file.write_text(shown.stdout)
    scored = _nas(tmp_path, "supernet", "eval", "cli", str(arch_file), "--calibration", "64")
    assert scored.returncode == 0, scored.stderr
    assert 0.0 <= json.loads(scored.stdout)["accuracy"] <= 1.0
    state = tmp_path / "sub.pt"
    extracted = _nas(tmp_path, "supernet", "extract", "cli", str(arch_file), "-o", str(state))
    assert extracted.returncode == 0, extracted.stderr
    from nas.export import load_state

    _, _, provenance = load_state(state)
    assert provenance["supernet"].endswith("supernet.pt")
    fitted = _nas(tmp_path, "supernet", "predictor", "cli", "--samples", "8", "-q")
    assert fitted.returncode == 0, fitted.stderr
    report = json.loads(fitted.stdout)
    assert report["samples"] == 8 and Path(report["file"]).name == "predictor.json"
    missing = _nas(tmp_path, "supernet", "eval", "nope", str(arch_file))
    assert missing.returncode == 2 and "unknown supernet 'nope'" in missing.stderr


def test_the_shipped_supernet_specs_load() -> None:
    from nas.supernet import load_supernet_spec

    shipped = sorted((Path(__file__).resolve().parents[1] / "search_spaces" / "supernets").glob("*.yaml"))
    assert shipped
    for path in shipped:
        assert load_supernet_spec(path).space


def test_a_shorter_run_of_a_shipped_spec_says_how_and_takes_its_overrides() -> None:
    from nas.errors import SpecError
    from nas.supernet import load_supernet_spec

    path = Path(__file__).resolve().parents[1] / "search_spaces" / "supernets" / "digits-small.yaml"
    with pytest.raises(SpecError, match=r"largest_epochs: 5 must be below recipe.epochs \(2\); .*--largest-epochs"):
        load_supernet_spec(path, epochs=2)
    short = load_supernet_spec(path, name="short", epochs=2, largest_epochs=1)
    assert (short.name, short.recipe.epochs, short.largest_epochs) == ("short", 2, 1)
    with pytest.raises(SpecError, match="largest_epochs"):
        load_supernet_spec(path, epochs=2, largest_epochs=2)  # overrides are validated like the file
