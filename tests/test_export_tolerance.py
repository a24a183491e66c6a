"""check_onnx judges ONNX Runtime against PyTorch relative to the logits' scale, and still catches a wrong graph."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from nas.arch import load_architecture
from nas.builder import build_model
from nas.errors import ExportError
from nas.export import check_onnx, export_onnx


def _model(scale: float):  # type: ignore[no-untyped-def]
    arch = load_architecture("mobilenetv3-small-0.75").with_(num_classes=10, resolution=64)
    torch.manual_seed(0)
    model = build_model(arch).eval()
    with torch.no_grad():
        last = model.classifier[-1]
        last.weight.mul_(scale)
        last.bias.add_(scale * 0.01)
    return arch, model


def test_a_network_with_huge_logits_passes_when_only_float_rounding_differs(tmp_path: Path) -> None:
    arch, model = _model(1e6)  # logits around 1e3-1e4, as after a few epochs or with inherited weights
    with torch.no_grad():
        assert model(torch.randn(2, 3, 64, 64)).abs().max() > 100
    path = export_onnx(arch, tmp_path / "m.onnx", model=model)
    assert check_onnx(arch, path, model) >= 0.0


def test_a_graph_of_another_network_still_fails(tmp_path: Path) -> None:
    arch, model = _model(1.0)
    path = export_onnx(arch, tmp_path / "m.onnx", model=model)
    _, other = _model(1.0)
    with torch.no_grad():
        other.classifier[-1].bias.add_(1.0)
    with pytest.raises(ExportError, match="differs from PyTorch"):
        check_onnx(arch, path, other)
