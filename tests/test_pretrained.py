"""``nas arch import-weights``: torchvision's MobileNetV3 weights give torchvision's outputs in our network.

The fixture (tests/fixtures/torchvision, written by benchmarks/torchvision_fixture.py in a side venv
with torchvision) is a seeded, randomly initialised ``mobilenet_v3_small(num_classes=10)`` with random
BatchNorm statistics, its state dict in fp16, a fixed input and torchvision's eval-mode logits computed
from those same fp16 weights. torchvision itself is not needed here.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from nas.arch import load_architecture
from nas.errors import WeightsError
from nas.export import load_state
from nas.pretrained import import_torchvision, map_key, mapped_state, read_state_dict

FIXTURES = Path(__file__).parent / "fixtures" / "torchvision"
WEIGHTS = FIXTURES / "mobilenet_v3_small_c10.pth"
IO = torch.load(FIXTURES / "mobilenet_v3_small_c10.io.pt", weights_only=True)


def logits(model: torch.nn.Module) -> torch.Tensor:
    with torch.no_grad():
        return model.eval()(IO["input"].float())


def nas(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "nas", *args], capture_output=True, text=True, timeout=300)


def test_imported_weights_reproduce_torchvisions_outputs_through_the_state_file(tmp_path: Path) -> None:
    result = nas("arch", "import-weights", str(WEIGHTS), "--out", str(tmp_path / "small.pt"))
    assert result.returncode == 0, result.stderr
    assert "mobilenetv3-small-1.0" in result.stdout and "10 classes" in result.stdout

    arch, model, provenance = load_state(tmp_path / "small.pt")
    assert arch.space == "mobilenetv3-small" and arch.num_classes == 10
    assert arch.hash == load_architecture("mobilenetv3-small-1.0").with_(num_classes=10).hash
    assert (arch.bn.eps, arch.bn.momentum) == (1e-3, 0.01)
    assert provenance["imported_from"] == "torchvision" and provenance["tensors"] == 244
    assert provenance["architecture"] == "mobilenetv3-small-1.0" and len(provenance["sha256"]) == 64
    assert float((logits(model) - IO["logits"]).abs().max()) <= 1e-5


def test_the_published_batchnorm_eps_is_what_makes_the_outputs_match() -> None:
    """Same weights, PyTorch's default eps: measurably different logits (the test above would notice)."""
    _, model, _ = import_torchvision(WEIGHTS)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.eps = 1e-5
    assert float((logits(model) - IO["logits"]).abs().max()) > 1e-4


def test_the_key_mapping_is_a_renaming() -> None:
    assert map_key("features.0.1.running_var", 11, 3) == "stem.0.1.running_var"
    assert map_key("features.4.block.2.fc1.weight", 11, 3) == "blocks.3.body.2.fc1.weight"
    assert map_key("features.12.0.weight", 11, 3) == "head_conv.0.weight"
    assert map_key("classifier.3.bias", 11, 3) == "classifier.3.bias"
    assert map_key("classifier.3.bias", 11, 2) == "classifier.2.bias"
    assert map_key("features.13.0.weight", 11, 3) is None
    assert map_key("fc.weight", 11, 3) is None


def test_weights_for_another_network_name_the_key_that_does_not_fit() -> None:
    with pytest.raises(WeightsError, match=r"key 'features\.1\.block\.1\.fc1\.weight' has no counterpart"):
        import_torchvision(WEIGHTS, "mobilenetv3-large-1.0")
    with pytest.raises(WeightsError, match=r"key 'features\.2\.block\.0\.0\.weight' has shape \[72, 16, 1, 1\], "
                                           r"but 'blocks\.1\.body\.0\.0\.weight'.* has \[56, 16, 1, 1\]"):
        import_torchvision(WEIGHTS, "mobilenetv3-small-0.75")
    with pytest.raises(WeightsError, match="not a torchvision MobileNetV3 layout: head"):
        import_torchvision(WEIGHTS, "mobilenetv2-1.0")


def test_a_mismatched_or_missing_tensor_is_named(tmp_path: Path) -> None:
    state = read_state_dict(WEIGHTS)
    arch = load_architecture("mobilenetv3-small-1.0").with_(num_classes=10)
    wrong = {**state, "features.3.block.1.1.weight": torch.ones(5)}
    with pytest.raises(WeightsError, match=r"'features\.3\.block\.1\.1\.weight' has shape \[5\]"):
        mapped_state(wrong, arch, "f.pth")
    missing = {k: v for k, v in state.items() if k != "features.5.block.2.fc2.bias"}
    with pytest.raises(WeightsError, match=r"1 tensor\(s\) .* the first 'blocks\.4\.body\.2\.fc2\.bias'"):
        mapped_state(missing, arch, "f.pth")
    torch.save({"module.fc.weight": torch.ones(2, 2)}, tmp_path / "other.pth")
    with pytest.raises(WeightsError, match="classifier.3.weight"):
        import_torchvision(tmp_path / "other.pth")
    no_match = {**state, "classifier.0.weight": torch.ones(1000, 576)}  # wider hidden layer than any reference
    torch.save(no_match, tmp_path / "wide.pth")
    with pytest.raises(WeightsError, match="match no MobileNetV3 reference"):
        import_torchvision(tmp_path / "wide.pth")


@pytest.mark.parametrize(("content", "message"), [
    (b"not a torch file", "not a state dict written by torch.save"),
    ({"input": torch.ones(1), "model": "mobilenet"}, "'model' holds a str"),
    ([torch.ones(1)], "found list"),
])
def test_files_that_are_not_state_dicts_are_refused_clearly(tmp_path: Path, content: object, message: str) -> None:
    path = tmp_path / "w.pth"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        torch.save(content, path)
    result = nas("arch", "import-weights", str(path), "--out", str(tmp_path / "s.pt"))
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert result.stderr.startswith("error: ") and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "s.pt").exists()


def test_a_state_file_of_this_project_is_not_imported_again(tmp_path: Path) -> None:
    from nas.export import export_state

    export_state(load_architecture("mobilenetv3-small-0.75"), tmp_path / "ours.pt")
    with pytest.raises(WeightsError, match="already one of this project's state files"):
        import_torchvision(tmp_path / "ours.pt")


def test_netadapt_seed_fine_tunes_given_weights_with_a_fresh_classifier_for_the_proxy_classes(tmp_path: Path) -> None:
    """MobileNetV3's NetAdapt started from a trained network: ``seed_weights`` is that network's state file.
    ImageNet's 1000-way classifier does not fit the 10 digits, so only it starts fresh."""
    from nas.export import export_state
    from nas.search import run_search
    from nas.strategies._netadapt import STATE

    from .search_helpers import tiny_spec

    pretrained = load_architecture("mobilenetv3-small-0.75")  # 1000 classes, as torchvision ships it
    export_state(pretrained, tmp_path / "pretrained.pt", provenance={"imported_from": "torchvision"})
    tensors = len(torch.load(tmp_path / "pretrained.pt", weights_only=True)["state_dict"])
    spec = tiny_spec(name="netadapt-pretrained", latency={"mode": "measured", "resolution": 128, "target_ms": 0.01},
                     strategy={"name": "netadapt", "options": {"seed": "mobilenetv3-small-0.75", "final_epochs": 1,
                                                               "seed_weights": str(tmp_path / "pretrained.pt")}},
                     budget={"trials": 2})
    ctx = run_search(spec, storage_url=f"sqlite:///{tmp_path / 'nas.db'}", run_dir=tmp_path / "run")
    seed, final = ctx.study.trials
    assert seed.user_attrs["netadapt_kind"] == "seed" and final.user_attrs["netadapt_kind"] == "final"
    assert seed.user_attrs["inherited"] == tensors - 2, "all but the output layer's weight and bias"
    assert ctx.study.user_attrs[STATE]["phase"] == "done"


def test_netadapt_refuses_seed_weights_of_another_network(tmp_path: Path) -> None:
    import optuna

    from nas.errors import SearchError
    from nas.export import export_state
    from nas.search import run_search

    from .search_helpers import tiny_spec

    export_state(load_architecture("mobilenetv3-small-1.0"), tmp_path / "other.pt")
    (tmp_path / "junk.pt").write_text("junk")
    for path, message in ((tmp_path / "other.pt", "not the seed network"), (tmp_path / "junk.pt", "not a state file"),
                          (tmp_path / "none.pt", "no file")):
        spec = tiny_spec(name=f"netadapt-{path.stem}",
                         latency={"mode": "measured", "resolution": 128, "target_ms": 0.01},
                         strategy={"name": "netadapt", "options": {"seed": "mobilenetv3-small-0.75",
                                                                   "seed_weights": str(path)}},
                         budget={"trials": 2})
        with pytest.raises(SearchError, match=f"strategy.options.seed_weights: .*{message}"):
            run_search(spec, storage_url=f"sqlite:///{tmp_path / 'nas.db'}", run_dir=tmp_path / path.stem)
        study = optuna.load_study(study_name=spec.name, storage=f"sqlite:///{tmp_path / 'nas.db'}")
        assert study.trials == [], "refused before a trial was asked: no trial left running"
