"""What is measured is what is deployed: a search writes its best network in its device's format, beside
best.onnx, with provenance, and that file runs in its own runtime with the trained network's predictions.

Real runtimes throughout: the LiteRT interpreter (ai-edge-litert), OpenVINO's Core and ONNX Runtime load
the file a one-trial ``nas run``-style search wrote; its top-1 on a few proxy images is compared with the
PyTorch network rebuilt from best.pt (exactly for fp32 up to float rounding, most images for int8).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from nas.search import run_search, write_outputs
from nas.service.artifacts import list_artifacts, read_artifact

from .search_helpers import tiny_spec

# device -> (file the device times, its companions, runtime that loads it, int8). Each device is a built-in
# profile timed briefly (``tests/fixtures/devices``): the file deployed depends on the runtime and its options,
# which they share, not on how long a timing takes.
DEVICES = {
    "test-litert-quick": ("best.tflite", [], "litert", False),
    "test-litert-int8-quick": ("best.int8.tflite", [], "litert", True),
    "test-openvino-quick": ("best.xml", ["best.bin"], "openvino", False),
    "test-ort-int8-quick": ("best.int8.onnx", [], "onnxruntime", True),
    "test-ort-quick": ("best.onnx", [], "onnxruntime", False),
}


def _images(arch: Any, n: int = 16) -> np.ndarray:
    """Proxy (digits) validation images at the deployment resolution, normalised as in training."""
    from nas.data import DatasetSpec, load_dataset

    data = load_dataset(DatasetSpec(kind="digits", resolution=arch.resolution, subset=300))
    return data.val_x[:n].numpy().astype(np.float32)


def _run_litert(path: Path, x: np.ndarray) -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path), num_threads=1)
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    logits = []
    for image in x:
        nhwc = image.transpose(1, 2, 0)[None]
        if inp["dtype"] != np.float32:
            scale, zero = inp["quantization"]
            info = np.iinfo(inp["dtype"])
            nhwc = np.clip(np.round(nhwc / scale) + zero, info.min, info.max).astype(inp["dtype"])
        interpreter.set_tensor(inp["index"], nhwc)
        interpreter.invoke()
        y = interpreter.get_tensor(out["index"]).astype(np.float32)
        if out["dtype"] != np.float32:
            scale, zero = out["quantization"]
            y = (y - zero) * scale
        logits.append(y[0])
    return np.stack(logits)


def _run_openvino(path: Path, x: np.ndarray) -> np.ndarray:
    import openvino as ov

    compiled = ov.Core().compile_model(str(path), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    return np.concatenate([compiled(image[None])[0] for image in x])


def _run_onnx(path: Path, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return np.concatenate([session.run(None, {"input": image[None]})[0] for image in x])


RUNNERS = {"litert": _run_litert, "openvino": _run_openvino, "onnxruntime": _run_onnx}


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'nas.db'}"


@pytest.mark.parametrize("device", list(DEVICES))
def test_the_best_network_is_written_in_its_devices_format_and_runs_there_like_pytorch(
        device: str, db: str, tmp_path: Path) -> None:
    import torch

    run = tmp_path / "run"
    from nas.export import load_state

    name, companions, runtime, int8 = DEVICES[device]
    spec = tiny_spec(name=f"deploy-{device}", device=device, budget={"trials": 1}, export_onnx=True,
                     latency={"mode": "measured", "resolution": 64, "target_ms": 5.0})
    ctx = run_search(spec, storage_url=db, run_dir=run)
    result = write_outputs(ctx)
    best = result["best"]

    # Beside best.onnx and best.pt, in the run folder and as artifacts of the study.
    assert result["artifacts"]["deployable"] == name and result["artifacts"]["provenance"] == "best.provenance.json"
    assert Path(result["files"]["deployable"]) == run / name
    stored = {a.name: a for a in list_artifacts(db, ctx.study.study_name)}
    for file in ("best.onnx", "best.pt", name, *companions, "best.provenance.json"):
        assert (run / file).is_file(), file
        assert stored[file].sha256 == hashlib.sha256((run / file).read_bytes()).hexdigest(), file

    # Provenance: which search, trial, architecture, device, runtime, quantization and latency.
    provenance = json.loads(read_artifact(db, ctx.study.study_name, "best.provenance.json"))
    assert provenance == json.loads((run / "best.provenance.json").read_text())
    assert list(provenance["files"]) == [name, *companions]
    assert provenance["trial"] == best["trial"] and provenance["architecture"]["hash"] == best["arch_hash"]
    assert provenance["architecture"]["resolution"] == 64
    assert provenance["device"]["profile"] == device and provenance["int8"] is int8
    assert all(v != "absent" for v in provenance["versions"].values()), provenance["versions"]
    latency = provenance["latency"]
    assert latency["source"] == "measured" and latency["ms"] == best["latency_ms"]
    assert latency["p10_ms"] <= latency["ms"] <= latency["p90_ms"] and latency["runs"] >= 3
    assert "median" in latency["statistic"]
    if int8:
        calibration = provenance["quantization"]["calibration"]
        assert calibration["dataset"]["kind"] == "digits" and calibration["images"] > 0
    else:
        assert provenance["quantization"] is None

    # The file runs in its runtime and predicts what the trained PyTorch network predicts.
    arch, model, _ = load_state(run / "best.pt")
    x = _images(arch)
    with torch.no_grad():
        expected = model.eval()(torch.from_numpy(x)).numpy()
    got = RUNNERS[runtime](run / name, x)
    assert got.shape == expected.shape
    agree = float(np.mean(got.argmax(1) == expected.argmax(1)))
    if int8:
        assert agree >= 0.75, f"int8 top-1 agrees on {agree:.0%} of the images"
    else:
        assert agree == 1.0
        assert float(np.max(np.abs(got - expected))) < 1e-3 + 1e-3 * float(np.max(np.abs(expected)))
