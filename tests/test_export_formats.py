"""What is measured is what is deployed: ``nas arch export --format onnx|tflite|openvino [--int8]`` writes
the artifact a device profile times; a plain timing loop runs it, and its outputs match PyTorch's
(float32 within 1e-4; int8 loosely: the same top-1 class on most inputs, logits strongly correlated).

Real conversions (litert-torch takes 10-30 s per network here), so the network is tiny and each format
is converted once.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from nas.arch import save_architecture
from nas.builder import build_model
from nas.data import DatasetSpec
from nas.errors import ExportError
from nas.export import calibration_inputs, export_artifact
from nas.latency._artifacts import calibration_spec, network_artifact
from nas.latency._parts import network_part
from nas.latency._plain import load_predictor, plain_timing
from nas.latency._profiles import BUILT_IN
from tests.latency_support import tiny_network
from tests.test_export import randomised

ARCH = tiny_network(64)


def digits(n: int) -> torch.Tensor:
    """Real images (scikit-learn's digits at 64x64, normalised as for training): a random network's
    logits on them are not all alike, so top-1 agreement means something."""
    return torch.cat(calibration_inputs(ARCH, DatasetSpec(kind="digits"), n))


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    return randomised(build_model(ARCH))


@pytest.mark.parametrize(("fmt", "int8"), [("onnx", False), ("openvino", False), ("tflite", False),
                                           ("onnx", True), ("tflite", True)])
def test_the_exported_artifact_runs_in_a_plain_loop_and_agrees_with_pytorch(
        fmt: str, int8: bool, model: torch.nn.Module, tmp_path: Path) -> None:
    calibration = [x[None] for x in digits(16)] if int8 else None
    path = export_artifact(ARCH, tmp_path / f"m.{fmt}", fmt, int8=int8, model=model, calibration=calibration)
    times = plain_timing(path, runs=5, warmup=1)
    assert len(times) == 5 and all(t > 0 for t in times)

    x = digits(40)
    with torch.no_grad():
        expected = model(x).numpy()
    predict = load_predictor(path)
    got = np.concatenate([predict(x[i:i + 1].numpy()) for i in range(len(x))])
    assert got.shape == expected.shape
    if not int8:
        assert np.abs(got - expected).max() <= 1e-4 * max(1.0, np.abs(expected).max())
    else:
        agree = (got.argmax(1) == expected.argmax(1)).mean()
        corr = np.corrcoef(got.ravel(), expected.ravel())[0, 1]
        assert agree >= 0.7 and corr >= 0.9, (agree, corr)


def test_int8_is_refused_for_openvino_with_the_formats_that_have_it(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="int8 export is available for onnx and tflite, not openvino"):
        export_artifact(ARCH, tmp_path / "m.xml", "openvino", int8=True)


def nas(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "nas", *args], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "NAS_ARTIFACT_CACHE": os.environ.get("NAS_ARTIFACT_CACHE", "")})


def test_export_for_a_device_writes_the_very_file_that_device_times(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NAS_ARTIFACT_CACHE", str(tmp_path / "cache"))
    save_architecture(ARCH, tmp_path / "arch.json")
    out = tmp_path / "deployed.onnx"
    result = nas("arch", "export", str(tmp_path / "arch.json"), "--device", "cpu-ort-int8-1t", "-o", str(out))
    assert result.returncode == 0, result.stderr
    profile = BUILT_IN["cpu-ort-int8-1t"]
    timed = network_artifact(network_part(ARCH).spec, "onnx", int8=True,
                             calibration=calibration_spec(profile.options))
    assert out.read_bytes() == timed.read_bytes()


def test_openvino_export_writes_the_ir_pair_and_bad_requests_are_one_line_errors(tmp_path: Path) -> None:
    save_architecture(ARCH, tmp_path / "arch.json")
    result = nas("arch", "export", str(tmp_path / "arch.json"), "--format", "openvino", "-o", str(tmp_path / "m.xml"))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "m.xml").is_file() and (tmp_path / "m.bin").is_file()
    bad = nas("arch", "export", str(tmp_path / "arch.json"), "--format", "openvino", "--int8", "-o",
              str(tmp_path / "q.xml"))
    assert bad.returncode == 2
    assert bad.stderr.strip() == "error: int8 export is available for onnx and tflite, not openvino"
    torch_device = nas("arch", "export", str(tmp_path / "arch.json"), "--device", "cpu-torch-1t", "-o",
                       str(tmp_path / "x"))
    assert torch_device.returncode == 2 and "runs PyTorch modules: export --state instead" in torch_device.stderr
