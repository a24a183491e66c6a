"""LiteRT (TensorFlow Lite) with XNNPACK, the CPU path of Android phones: float32 and full-integer int8.

Networks are converted by ``nas.export.export_artifact`` (``litert-torch``, cached per machine by
``_artifacts``), so the file timed is the file ``nas arch export --format tflite`` writes. Stem, block and
head parts are converted one by one, which is correct but slow (about 10 s each): per-part lookup tables
for LiteRT are not built this way at scale. Profile options: ``xnnpack`` (default true), and for int8
``calibration`` / ``calibration_images`` (``_artifacts.calibration_spec``).
"""

from __future__ import annotations

import importlib.util
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nas.errors import LatencyError
from nas.latency._artifacts import calibration_spec, network_artifact
from nas.latency._parts import Part
from nas.latency._runtimes import Runtime, _torch_module, register_runtime


def interpreter_input(interpreter: Any, seed: int = 0) -> Any:
    """A random NHWC input for the interpreter's first input, quantized when that input is int8."""
    import numpy as np

    detail = interpreter.get_input_details()[0]
    x = np.random.default_rng(seed).standard_normal(tuple(detail["shape"])).astype(np.float32)
    if detail["dtype"] == np.float32:
        return x
    scale, zero = detail["quantization"]
    info = np.iinfo(detail["dtype"])
    return np.clip(np.round(x / scale) + zero, info.min, info.max).astype(detail["dtype"])


@register_runtime
class LiteRtRuntime(Runtime):
    """``ai-edge-litert``'s interpreter with the profile's threads and the XNNPACK delegate (its default)."""

    name = "litert"
    deploys = ("tflite", False)
    libraries = ("litert-torch", "ai-edge-litert")
    int8 = False

    @classmethod
    def unavailable_reason(cls) -> str | None:
        missing = [p for p, m in (("ai-edge-litert", "ai_edge_litert"), ("litert-torch", "litert_torch"))
                   if importlib.util.find_spec(m) is None]
        return f"{' and '.join(missing)} not installed" if missing else None

    def artifact(self, part: Part, directory: Path) -> Path:
        """The ``.tflite`` file of ``part``: a network's cached deployable file, else a fresh conversion."""
        if part.kind == "network":
            return network_artifact(part.spec, "tflite", int8=self.int8, batch=self.profile.batch,
                                    calibration=calibration_spec(self.profile.options))
        import torch

        from nas.export_litert import convert_module

        module, shape = _torch_module(part, self.profile.batch)
        g = torch.Generator().manual_seed(0)
        calibration = [torch.randn(*shape, generator=g) for _ in range(4)] if self.int8 else None
        return convert_module(module, torch.randn(*shape, generator=g), directory / "part.tflite", calibration)

    def prepare(self, part: Part) -> Callable[[], object]:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        resolver = (OpResolverType.AUTO if self.profile.options.get("xnnpack", True)
                    else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
        with tempfile.TemporaryDirectory() as tmp:
            path = self.artifact(part, Path(tmp))
            try:
                interpreter = Interpreter(model_path=str(path), num_threads=self.profile.threads,
                                          experimental_op_resolver_type=resolver)
                interpreter.allocate_tensors()
                interpreter.set_tensor(interpreter.get_input_details()[0]["index"], interpreter_input(interpreter))
                interpreter.invoke()
            except Exception as exc:  # the interpreter raises RuntimeError/ValueError with its reasons
                raise LatencyError(f"LiteRT cannot run this {part.kind} on {self.profile.name}: {exc}") from exc
        return interpreter.invoke


@register_runtime
class LiteRtInt8Runtime(LiteRtRuntime):
    """LiteRT with the full-integer int8 model (post-training quantization, calibrated)."""

    name = "litert-int8"
    deploys = ("tflite", True)
    int8 = True
    # int8 HARD_SWISH costs about ten times a float one per element (offline on 90 networks per space:
    # held-out within +-10% 90% -> 100% for MobileNetV3-Small, 80% -> 96% for ShuffleNet).
    ops_features = ("int8_hswish_elems", "float_hswish_elems")  # instead of the shared hswish_elems
