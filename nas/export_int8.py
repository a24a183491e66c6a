"""ONNX -> int8 ONNX by static post-training quantization in ONNX Runtime's QDQ format.

QDQ (QuantizeLinear/DequantizeLinear pairs around each quantized operator) is the format ONNX Runtime's
CPU provider fuses into integer kernels and other runtimes import; weights int8 per channel, activations
uint8 (the x86 kernels' fast path), ranges from MinMax calibration on real inputs. Inputs and outputs
stay float32, so the quantized model is a drop-in replacement.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nas.errors import ExportError


def quantize_onnx(source: Path | bytes, out: Path, calibration: Sequence[Any]) -> Path:
    """Write the int8 QDQ version of the float ONNX model ``source`` (a file or its bytes) to ``out``,
    calibrated on ``calibration`` (input batches, tensors or arrays, shaped like the model's input)."""
    import numpy as np
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    batches = [np.ascontiguousarray(np.asarray(b, dtype=np.float32)) for b in calibration]
    if not batches:
        raise ExportError("int8 quantization needs at least one calibration batch")

    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "float.onnx"
        if isinstance(source, bytes):
            src.write_bytes(source)
        else:
            src.write_bytes(Path(source).read_bytes())
        name = onnx.load(str(src), load_external_data=False).graph.input[0].name

        class _Reader(CalibrationDataReader):
            def __init__(self) -> None:
                self._feeds = iter([{name: b} for b in batches])

            def get_next(self) -> dict[str, Any] | None:
                return next(self._feeds, None)

        pre = Path(tmp) / "pre.onnx"
        try:
            quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
            out.parent.mkdir(parents=True, exist_ok=True)
            quantize_static(str(pre), str(out), _Reader(), quant_format=QuantFormat.QDQ,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=True)
        except Exception as exc:  # the quantizer raises many unrelated types
            raise ExportError(f"int8 quantization failed: {type(exc).__name__}: {exc}") from exc
    return out
