"""ONNX Runtime with int8 models: static QDQ post-training quantization (``nas.export_int8``).

Networks are the cached artifact of ``nas arch export --format onnx --int8`` (``_artifacts``); stem, block
and head parts are their directly written ONNX graphs quantized the same way, calibrated on seeded noise
(their latency does not depend on the values). Options as for ``onnxruntime``, plus ``calibration`` /
``calibration_images`` for networks (``_artifacts.calibration_spec``).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from nas.latency._artifacts import calibration_spec, network_artifact
from nas.latency._parts import Part
from nas.latency._runtimes import OrtRuntime, register_runtime


@register_runtime
class OrtInt8Runtime(OrtRuntime):
    name = "onnxruntime-int8"
    deploys = ("onnx", True)
    # Measured (docs/latency.md): QLinearAveragePool (ShuffleNet V1's shortcut) costs far more per element
    # than a copy, MLAS's int8 GEMMs slow down when a group's channels are not multiples of 4, and its int8
    # depthwise convolutions pay for channels rounded up to 16, and take a slow path (2-3x per MAC) when the
    # channels are not a multiple of 16.
    ops_features = ("avgpool_elems", "unaligned_macs", "unaligned_elems", "dw_pad_macs", "dw_unaligned_macs")

    def network_model(self, part: Part) -> bytes:
        return network_artifact(part.spec, "onnx", int8=True, batch=self.profile.batch,
                                calibration=calibration_spec(self.profile.options)).read_bytes()

    def model(self, part: Part) -> tuple[bytes, tuple[int, ...]]:
        model, shape = super().model(part)
        if part.kind == "network":
            return model, shape
        import numpy as np

        from nas.export_int8 import quantize_onnx

        rng = np.random.default_rng(0)
        calibration = [rng.standard_normal(shape, dtype=np.float32) for _ in range(4)]
        with tempfile.TemporaryDirectory() as tmp:
            return quantize_onnx(model, Path(tmp) / "int8.onnx", calibration).read_bytes(), shape
