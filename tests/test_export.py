"""Export: the ONNX model agrees with PyTorch in ONNX Runtime; the state file rebuilds the same module."""

from __future__ import annotations

import pytest
import torch

from nas.arch import load_architecture
from nas.builder import build_model
from nas.export import check_onnx, export_onnx, export_state, load_state
from nas.spaces import load_space


def randomised(model: torch.nn.Module) -> torch.nn.Module:
    """Non-trivial weights and BN statistics, so agreement is not agreement on near-zero outputs."""
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.2)
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
    return model.eval()


@pytest.mark.parametrize("name", ["mobilenetv3-small-1.0", "shufflenetv1-g8", "shufflenetv2-1.0", "mobilenetv2-1.0"])
def test_onnx_output_matches_pytorch_within_1e_4(tmp_path, name: str) -> None:  # type: ignore[no-untyped-def]
    arch = load_architecture(name).with_(resolution=96, num_classes=10)
    model = randomised(build_model(arch))
    path = export_onnx(arch, tmp_path / "m.onnx", model=model)
    with torch.no_grad():
        assert model(torch.randn(1, 3, 96, 96)).abs().max() > 1e-2, "outputs must be non-trivial"
    assert check_onnx(arch, path, model, atol=1e-4) <= 1e-4


def test_large_logits_are_judged_relative_to_their_size_and_a_wrong_export_still_fails(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A trained network's logits can be large; float32 rounding grows with them. (A NetAdapt search's best
    network differed by 1.7e-3 and the search failed at its very end on an absolute 1e-4.)"""
    from nas.errors import ExportError

    arch = load_architecture("mobilenetv3-small-1.0").with_(resolution=96, num_classes=10)
    model = randomised(build_model(arch))
    with torch.no_grad():
        model.classifier[-1].weight.mul_(1e4)  # logits in the thousands, same network otherwise
    path = export_onnx(arch, tmp_path / "big.onnx", model=model)
    diff = check_onnx(arch, path, model)
    assert diff > 1e-4, "an absolute 1e-4 would have refused this faithful export"
    with torch.no_grad():
        scale = float(model(torch.randn(2, 3, 96, 96)).abs().max())
        assert scale > 100, "the logits are large"
        model.classifier[-1].bias.add_(0.02 * scale)  # now PyTorch and the ONNX file disagree by 2 %
    with pytest.raises(ExportError, match="ONNX output differs from PyTorch"):
        check_onnx(arch, path, model)


def test_sampled_grouped_networks_export_too(tmp_path) -> None:  # type: ignore[no-untyped-def]
    arch = load_space("shufflenet").sample(seed=11, num_classes=10).with_(resolution=64)
    model = randomised(build_model(arch))
    assert check_onnx(arch, export_onnx(arch, tmp_path / "s.onnx", model=model), model) <= 1e-4


@pytest.mark.parametrize("space", ["shufflenet", "mobilenetv3-large"])
def test_exported_networks_hold_no_shape_arithmetic(tmp_path, space: str) -> None:  # type: ignore[no-untyped-def]
    """Channel shuffles and splits export with constant shapes: a Shape/Gather/Concat chain per shuffle
    cost 3-10% of a network at 128x128 in ONNX Runtime and was not in the latency table's part graphs."""
    import onnx

    grouped = [load_space(space).sample(seed=s, num_classes=10).with_(resolution=64) for s in range(8)]
    arch = max(grouped, key=lambda a: sum(b.groups > 1 for stage in a.stages for b in stage))
    assert any(b.groups > 1 for stage in arch.stages for b in stage), "the test needs a channel shuffle"
    path = export_onnx(arch, tmp_path / "n.onnx")
    ops = {node.op_type for node in onnx.load(str(path)).graph.node}
    assert "Transpose" in ops, "a shuffle is there"
    assert not ops & {"Shape", "Gather", "Unsqueeze", "Slice", "Div"}
    model = randomised(build_model(arch))
    assert check_onnx(arch, export_onnx(arch, tmp_path / "m.onnx", model=model), model) <= 1e-4  # batch 2


def test_state_file_rebuilds_an_identical_module_with_provenance(tmp_path) -> None:  # type: ignore[no-untyped-def]
    arch = load_architecture("mobilenetv3-small-0.75").with_(num_classes=10)
    model = randomised(build_model(arch))
    export_state(arch, tmp_path / "m.pt", model=model, provenance={"device": "cpu-ort-1t"})
    loaded_arch, loaded, provenance = load_state(tmp_path / "m.pt")
    x = torch.randn(2, 3, 64, 64)
    assert loaded_arch == arch and provenance == {"device": "cpu-ort-1t"}
    with torch.no_grad():
        assert torch.equal(loaded.eval()(x), model(x))
