"""OpenVINO's CPU plugin: ONNX -> OpenVINO IR, compiled with the profile's threads and the latency hint.

Networks are the cached IR that ``nas arch export --format openvino`` writes (``_artifacts``), reshaped
to the profile's batch; stem, block and head parts are their directly written ONNX graphs
(``_onnx_graphs``), read by OpenVINO's ONNX frontend. Inference precision is f32 unless the profile's
``config`` says otherwise: on CPUs with bf16 units OpenVINO would otherwise switch to bf16, and the
profile would time a different network than the fp32 one it names. Options: ``config`` (extra
compile properties, e.g. ``{INFERENCE_PRECISION_HINT: bf16}``).
"""

from __future__ import annotations

import importlib.util
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nas.errors import LatencyError
from nas.latency._artifacts import network_artifact
from nas.latency._parts import Part
from nas.latency._runtimes import Runtime, part_graph, register_runtime


@register_runtime
class OpenVinoRuntime(Runtime):
    name = "openvino"
    deploys = ("openvino", False)
    libraries = ("openvino",)

    @classmethod
    def unavailable_reason(cls) -> str | None:
        return None if importlib.util.find_spec("openvino") else "openvino is not installed"

    def compile_config(self) -> dict[str, Any]:
        return {"INFERENCE_NUM_THREADS": self.profile.threads, "PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1,
                "INFERENCE_PRECISION_HINT": "f32", **self.profile.options.get("config", {})}

    def prepare(self, part: Part) -> Callable[[], object]:
        import numpy as np

        from nas._openvino import import_openvino

        ov = import_openvino()

        core = ov.Core()
        try:
            if part.kind == "network":
                res = part.spec["resolution"]
                shape: tuple[int, ...] = (self.profile.batch, 3, res, res)
                model = core.read_model(str(network_artifact(part.spec, "openvino", batch=self.profile.batch)))
            else:
                graph, shape = part_graph(part, self.profile.batch)
                with tempfile.TemporaryDirectory() as tmp:
                    path = Path(tmp) / "part.onnx"
                    path.write_bytes(graph)
                    model = core.read_model(str(path))
            model.reshape(list(shape))
            compiled = core.compile_model(model, "CPU", self.compile_config())
            request = compiled.create_infer_request()
            request.set_input_tensor(ov.Tensor(np.random.default_rng(0).standard_normal(shape, dtype=np.float32)))
            request.infer()
        except LatencyError:
            raise
        except Exception as exc:  # OpenVINO raises its own untyped errors
            raise LatencyError(f"OpenVINO cannot run this {part.kind} on {self.profile.name}: {exc}") from exc

        def run() -> object:
            request.start_async()
            return request.wait()

        return run
