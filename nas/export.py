"""Export a built network as a deployable artifact (ONNX, int8 ONNX, TFLite, int8 TFLite, OpenVINO IR) and
to a PyTorch state file with provenance.

The latency runtimes (``nas.latency``) time exactly what ``export_artifact`` writes, so a number measured
on a device profile is the number of the file a user deploys.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from nas.arch import Architecture
from nas.errors import ExportError

if TYPE_CHECKING:
    import torch

    from nas.data import DatasetSpec

Format = Literal["onnx", "tflite", "openvino"]
FORMATS: tuple[Format, ...] = ("onnx", "tflite", "openvino")
SUFFIX: dict[str, str] = {"onnx": ".onnx", "tflite": ".tflite", "openvino": ".xml"}
INT8_FORMATS = ("onnx", "tflite")
CALIBRATION_IMAGES = 16


def calibration_inputs(arch: Architecture, dataset: DatasetSpec | None = None, n: int = CALIBRATION_IMAGES,
                       batch: int = 1) -> list[torch.Tensor]:
    """``n`` images at the network's resolution, in batches of ``batch``, for post-training quantization:
    the proxy dataset's (normalised as in training) or, without one, seeded standard-normal noise, which
    gives the same latency but worse accuracy."""
    import torch

    if dataset is None:
        g = torch.Generator().manual_seed(0)
        images = torch.randn(n, 3, arch.resolution, arch.resolution, generator=g)
    else:
        from nas.data import load_dataset

        spec = dataset.model_copy(update={"resolution": arch.resolution, "subset": max(n, 2) if
                                          dataset.subset is None else dataset.subset})
        data = load_dataset(spec)
        images = torch.cat([data.train_x, data.val_x])[:n]
    return [images[i:i + batch] for i in range(0, len(images) - batch + 1, batch)]


def fresh_model(arch: Architecture, seed: int = 0) -> Any:
    """``arch``'s module with seeded initial weights, in eval mode: an untrained network exports to the
    same file every time (the latency runtimes and ``nas arch export`` agree byte for byte)."""
    import torch

    from nas.builder import build_model

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build_model(arch).eval()


def export_artifact(arch: Architecture, path: Path, fmt: str, *, int8: bool = False, model: Any = None,
                    calibration: list[torch.Tensor] | None = None, batch: int = 1) -> Path:
    """Write ``arch`` (or a trained ``model`` of it) in ``fmt``, int8-quantized if asked (calibrated on
    ``calibration``, by default ``calibration_inputs(arch)``). Returns the file to load (for OpenVINO the
    ``.xml``, with its ``.bin`` beside it)."""
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r}; known: {', '.join(FORMATS)}")
    if int8 and fmt not in INT8_FORMATS:
        raise ExportError(f"int8 export is available for {' and '.join(INT8_FORMATS)}, not {fmt}")
    if int8 and calibration is None:
        calibration = calibration_inputs(arch, batch=batch)
    if model is None:
        model = fresh_model(arch)
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "tflite":
        from nas.export_litert import export_tflite

        return export_tflite(arch, path, model=model, calibration=calibration if int8 else None, batch=batch)
    if fmt == "openvino":
        return export_openvino(arch, path, model=model, batch=batch)
    if not int8:
        return export_onnx(arch, path, model=model)
    from nas.export_int8 import quantize_onnx

    fp32 = export_onnx(arch, path.with_name(f"{path.stem}.fp32.onnx"), model=model)
    try:
        return quantize_onnx(fp32, path, calibration or [])
    finally:
        fp32.unlink(missing_ok=True)


def export_openvino(arch: Architecture, path: Path, *, model: Any = None, batch: int = 1) -> Path:
    """OpenVINO IR (``.xml`` + ``.bin``) converted from the ONNX export, weights kept in fp32, input shape
    static ``[batch, 3, R, R]`` (what the profile compiles; ``benchmark_app`` runs it without ``-shape``)."""
    from nas._openvino import import_openvino

    ov = import_openvino()
    xml = path.with_suffix(".xml")
    onnx_path = export_onnx(arch, xml.with_name(f"{xml.stem}.src.onnx"), model=model)
    try:
        converted = ov.convert_model(str(onnx_path))
        converted.reshape([batch, 3, arch.resolution, arch.resolution])
        ov.save_model(converted, str(xml), compress_to_fp16=False)
    except Exception as exc:  # OpenVINO raises its own untyped errors
        raise ExportError(f"OpenVINO conversion of {arch.hash} failed: {exc}") from exc
    finally:
        onnx_path.unlink(missing_ok=True)
    return xml


def export_onnx(arch: Architecture, path: Path, *, model: Any = None, opset: int = 17) -> Path:
    """Write ``arch`` (or an already trained ``model`` of it) as ONNX with input ``input`` [N,3,R,R].

    Uses the TorchScript exporter (about 20x faster than the dynamo one on these graphs, which matters
    when profiling thousands of blocks) with a dynamic batch axis.
    """
    import torch

    module = (model if model is not None else fresh_model(arch)).eval()
    dummy = torch.randn(1, 3, arch.resolution, arch.resolution)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(module, (dummy,), str(path), input_names=["input"], output_names=["logits"],
                              dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
                              opset_version=opset, dynamo=False)
    except Exception as exc:  # the exporter raises many unrelated types
        raise ExportError(f"ONNX export of {arch.hash} failed: {exc}") from exc
    return path


def check_onnx(arch: Architecture, path: Path, model: Any, atol: float = 1e-4, rtol: float = 1e-3) -> float:
    """Largest absolute difference between ONNX Runtime and PyTorch on one random input; raises above
    ``atol + rtol x`` the largest output magnitude. Relative too because float32 rounding grows with the
    logits: a NetAdapt-trained best network differed by 1.7e-3 and failed its whole finished search on an
    absolute 1e-4, while an export bug shows as differences of the order of the outputs themselves."""
    import numpy as np
    import onnxruntime as ort
    import torch

    x = torch.randn(2, 3, arch.resolution, arch.resolution, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = model.eval()(x).numpy()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {"input": x.numpy()})[0]
    diff = float(np.max(np.abs(got - expected)))
    tolerance = atol + rtol * float(np.max(np.abs(expected)))
    if not diff <= tolerance:  # NaN fails too
        raise ExportError(f"ONNX output differs from PyTorch by {diff:.2e} (> {tolerance:.2e})")
    return diff


def export_state(arch: Architecture, path: Path, *, model: Any = None, provenance: dict[str, Any] | None = None
                 ) -> Path:
    """A ``torch.save`` file holding the architecture JSON, the state dict and provenance, so
    ``load_state`` rebuilds the exact module without this library's version guessing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(state_bytes(arch, model=model, provenance=provenance))
    return path


def state_bytes(arch: Architecture, *, model: Any = None, provenance: dict[str, Any] | None = None) -> bytes:
    """The content of an ``export_state`` file, for storing as an artifact (``nas.service.artifacts``)."""
    import io

    import torch

    from nas.builder import build_model

    module = model if model is not None else build_model(arch)
    buffer = io.BytesIO()
    torch.save({"architecture": arch.model_dump(mode="json"), "state_dict": module.state_dict(),
                "provenance": provenance or {}}, buffer)
    return buffer.getvalue()


def load_state(source: Path | bytes, name: str | None = None) -> tuple[Architecture, Any, dict[str, Any]]:
    """Rebuild the module of a state file, given as a path or as its content (an artifact); ``name`` is
    what error messages call it."""
    import io

    import torch

    from nas.arch import parse_architecture
    from nas.builder import build_model

    data = io.BytesIO(source) if isinstance(source, bytes) else source
    blob = torch.load(data, map_location="cpu", weights_only=True)
    arch = parse_architecture(blob["architecture"],
                              source=name or (str(source) if isinstance(source, Path) else "state file"))
    model = build_model(arch)
    model.load_state_dict(blob["state_dict"])
    return arch, model, json.loads(json.dumps(blob.get("provenance", {})))
