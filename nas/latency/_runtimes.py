"""Runtimes: how a part (network, block, stem, head) is run on a device profile.

Adding a runtime is one file: subclass ``Runtime``, set ``name``, implement ``prepare`` (and
``unavailable_reason`` if it needs something this machine may lack), decorate it with
``@register_runtime``, and name the module in ``_RUNTIME_MODULES`` below. A TorchScript or CUDA runtime
only changes ``prepare``; the remote runner (``_rt_remote``) overrides ``measure`` instead, shipping the
exported models and parsing the device's timings, and the rest (caching, tables, calibration) stays
unchanged. Built in here: ONNX Runtime and PyTorch eager; in their own files: LiteRT (``_rt_litert``),
OpenVINO (``_rt_openvino``), ONNX Runtime int8 (``_rt_ort_int8``) and the remote runner.
"""

from __future__ import annotations

import importlib.util
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from nas.errors import LatencyError
from nas.latency._parts import Part
from nas.latency._timing import LatencyStats, TimingSettings, time_interleaved

if TYPE_CHECKING:
    from nas.latency._profiles import DeviceProfile

_REGISTRY: dict[str, type[Runtime]] = {}


def register_runtime(cls: type[Runtime]) -> type[Runtime]:
    _REGISTRY[cls.name] = cls
    return cls


def runtime_names() -> list[str]:
    return sorted(_REGISTRY)


def runtime_unavailable_reason(name: str) -> str | None:
    """Why the registered runtime ``name`` cannot run here (a library missing), or None."""
    return _REGISTRY[name].unavailable_reason()


def runtime_for(profile: DeviceProfile) -> Runtime:
    return _REGISTRY[profile.runtime](profile)


class Runtime(ABC):
    """Turns a ``Part`` into a zero-argument callable that runs it once, as deployed.

    Contract: ``prepare`` does all one-off work (export, session creation, input allocation), so the
    callable does exactly one inference and nothing else. Instances live in the measuring subprocess,
    after it has been pinned to the profile's CPUs and ``configure`` has set the thread counts.
    """

    name: ClassVar[str]
    libraries: ClassVar[tuple[str, ...]] = ()  # packages whose versions join the fingerprint (``_fingerprint``)
    deploys: ClassVar[tuple[str, bool] | None] = None  # (nas.export format, int8) of the file it times
    local: ClassVar[bool] = True  # times on this machine (False: a remote device; no speed canary, no waiting)
    # Costs the ``ops`` predictor fits beyond its shared ones (``_pred_ops.RUNTIME_FEATURES``), for kernels
    # this runtime runs at another rate: chosen by measurement per runtime so other devices' fits stay as validated.
    ops_features: ClassVar[tuple[str, ...]] = ()

    def __init__(self, profile: DeviceProfile) -> None:
        self.profile = profile

    @classmethod
    def unavailable_reason(cls) -> str | None:
        """None when this runtime can run here, else a one-line reason."""
        return None

    @classmethod
    def deployed(cls, options: dict[str, Any]) -> tuple[str, bool] | None:
        """``(format, int8)`` of the artifact this runtime times (``nas arch export --device``)."""
        return cls.deploys

    @classmethod
    def check_options(cls, options: dict[str, Any]) -> None:
        """Raise ``LatencyError`` if a profile's ``options`` are malformed for this runtime; called when
        the profile is loaded, so a bad file is reported before anything is timed."""
        return None

    def configure(self) -> None:  # noqa: B027 (a hook with a default body, like Optuna's samplers)
        """Set the runtime's thread counts; called once per process before any ``prepare``."""

    def prefetch(self, parts: Sequence[Part], cpus: list[int]) -> None:
        """Produce the networks' deployable files on ``cpus`` (all the process may use) before ``prepare``
        runs pinned under the timing lock; runtimes that convert slowly override this."""
        deployed = self.deployed(self.profile.options)
        specs = [p.spec for p in parts if p.kind == "network" and not p.spec.get("onnx_path")]
        if deployed is None or deployed == ("onnx", False) or not specs:
            return  # PyTorch modules and plain ONNX export take well under a second
        from nas.latency._artifacts import calibration_spec, prefetch_networks

        prefetch_networks(specs, deployed[0], int8=deployed[1], batch=self.profile.batch,
                          calibration=calibration_spec(self.profile.options), cpus=cpus)

    @abstractmethod
    def prepare(self, part: Part) -> Callable[[], object]: ...

    def measure(self, parts: Sequence[Part], timing: TimingSettings, canary: Part | None = None
                ) -> list[LatencyStats | str]:
        """Time ``parts`` (a small group, all prepared at once) interleaved; a part that cannot be
        prepared gets its error message instead of statistics. With a ``canary`` (``_canary``), its
        statistics come last, timed alongside until every part has stopped."""
        everything = [*parts, canary] if canary is not None else list(parts)
        prepared: list[Callable[[], object] | str] = []
        for part in everything:
            try:
                prepared.append(self.prepare(part))
            except Exception as exc:  # reported per part; the others are still timed
                prepared.append(f"{type(exc).__name__}: {exc}")
        runs = [p for p in prepared if not isinstance(p, str)]
        follower = len(runs) - 1 if canary is not None and not isinstance(prepared[-1], str) else None
        stats = iter(time_interleaved(runs, timing, follower=follower) if runs else [])
        return [p if isinstance(p, str) else next(stats) for p in prepared]


def _architecture(spec: dict[str, Any]) -> Any:
    from nas.arch import parse_architecture

    arch = parse_architecture(spec["arch"])
    return arch if arch.resolution == spec["resolution"] else arch.with_(resolution=spec["resolution"])


@register_runtime
class OrtRuntime(Runtime):
    """ONNX Runtime, CPU execution provider. Networks go through ``nas.export.export_onnx`` (what users
    deploy); single parts are written directly as ONNX (``_onnx_graphs``), which is 50x faster."""

    name = "onnxruntime"
    deploys = ("onnx", False)
    _LEVELS = {"all": "ORT_ENABLE_ALL", "extended": "ORT_ENABLE_EXTENDED", "basic": "ORT_ENABLE_BASIC",
               "disabled": "ORT_DISABLE_ALL"}

    @classmethod
    def unavailable_reason(cls) -> str | None:
        return None if importlib.util.find_spec("onnxruntime") else "onnxruntime is not installed"

    def _session(self, model: bytes) -> Any:
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.intra_op_num_threads = self.profile.threads
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.log_severity_level = 3
        level = self.profile.options.get("graph_optimization", "all")
        if level not in self._LEVELS:
            raise LatencyError(f"profile {self.profile.name}: graph_optimization must be one of {list(self._LEVELS)}")
        so.graph_optimization_level = getattr(ort.GraphOptimizationLevel, self._LEVELS[level])
        for key, value in self.profile.options.get("session_config", {}).items():
            so.add_session_config_entry(str(key), str(value))
        try:
            return ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
        except Exception as exc:  # ORT raises its own untyped errors
            raise LatencyError(f"ONNX Runtime cannot load this graph on {self.profile.name}: {exc}") from exc

    def network_model(self, part: Part) -> bytes:
        """The network's ONNX model as deployed (``nas.export.export_onnx``), or the file ``onnx_path``."""
        from nas.export import export_onnx

        path = Path(part.spec["onnx_path"]) if part.spec.get("onnx_path") else None
        if path is not None and path.is_file():
            return path.read_bytes()
        with tempfile.TemporaryDirectory() as tmp:
            return export_onnx(_architecture(part.spec), Path(tmp) / "net.onnx").read_bytes()

    def model(self, part: Part) -> tuple[bytes, tuple[int, ...]]:
        """The ONNX model this runtime runs for ``part`` and its input shape."""
        if part.kind == "network":
            res = part.spec["resolution"]
            return self.network_model(part), (self.profile.batch, 3, res, res)
        return part_graph(part, self.profile.batch)

    def prepare(self, part: Part) -> Callable[[], object]:
        import numpy as np

        model, shape = self.model(part)
        session = self._session(model)
        name = session.get_inputs()[0].name
        feed = {name: np.random.default_rng(0).standard_normal(shape, dtype=np.float32)}
        run = session.run
        try:
            run(None, feed)
        except Exception as exc:
            raise LatencyError(f"ONNX Runtime cannot run this {part.kind} on {self.profile.name}: {exc}") from exc
        return lambda: run(None, feed)


def part_graph(part: Part, batch: int) -> tuple[bytes, tuple[int, ...]]:
    """A stem, block, head or identity part written directly as ONNX (``_onnx_graphs``) and its input shape."""
    from nas.arch import Block, Head, Stem
    from nas.latency import _onnx_graphs as graphs

    s = part.spec
    if part.kind == "block":
        return graphs.block_graph(s["cin"], s["size"], Block.model_validate(s["block"]), batch)
    if part.kind == "stem":
        return graphs.stem_graph(Stem.model_validate(s["stem"]), s["resolution"], batch)
    if part.kind == "head":
        return graphs.head_graph(Head.model_validate(s["head"]), s["cin"], s["size"], s["num_classes"], batch)
    return graphs.identity_graph(batch)


@register_runtime
class TorchEagerRuntime(Runtime):
    """PyTorch eager mode in ``inference_mode``, modules built by ``nas.builder``."""

    name = "torch-eager"

    @classmethod
    def unavailable_reason(cls) -> str | None:
        return None if importlib.util.find_spec("torch") else "torch is not installed"

    def configure(self) -> None:
        import torch

        torch.set_num_threads(self.profile.threads)
        try:
            torch.set_num_interop_threads(1)
        except RuntimeError:  # already set in this process
            pass

    def prepare(self, part: Part) -> Callable[[], object]:
        import torch

        module, shape = _torch_module(part, self.profile.batch)
        module.eval()
        x = torch.randn(*shape, generator=torch.Generator().manual_seed(0))

        def run() -> object:
            with torch.inference_mode():
                return module(x)

        try:
            run()
        except Exception as exc:
            raise LatencyError(f"PyTorch cannot run this {part.kind} on {self.profile.name}: {exc}") from exc
        return run


def _torch_module(part: Part, batch: int) -> tuple[Any, tuple[int, ...]]:
    """The ``nas.builder`` module of a part and its input shape; stem and head come from a carrier network
    so they are exactly the builder's layers."""
    from torch import nn

    from nas.arch import Architecture, Block, BlockType, Head, Stem
    from nas.builder import build_block, build_model

    s = part.spec
    if part.kind == "network":
        arch = _architecture(s)
        return build_model(arch), (batch, 3, arch.resolution, arch.resolution)
    if part.kind == "identity":
        return nn.ReLU(), (batch, 8, 1, 1)
    if part.kind == "stem":
        stem = Stem.model_validate(s["stem"])
        carrier = Architecture(stem=stem, stages=[[Block(type=BlockType.mbconv, out=8, mid=8)]], head=Head())
        return build_model(carrier).stem, (batch, 3, s["resolution"], s["resolution"])
    cin = s["cin"]
    if part.kind == "block":
        module: Any = build_block(cin, Block.model_validate(s["block"]))
    else:
        carrier = Architecture(stem=Stem(channels=cin), stages=[[Block(type=BlockType.mbconv, out=cin, mid=cin)]],
                               head=Head.model_validate(s["head"]), num_classes=s["num_classes"])
        net = build_model(carrier)

        class _HeadOnly(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.head_conv, self.classifier = net.head_conv, net.classifier

            def forward(self, x: Any) -> Any:
                x = nn.functional.adaptive_avg_pool2d(self.head_conv(x), 1).flatten(1)
                return self.classifier(x)

        module = _HeadOnly()
    return module, (batch, cin, s["size"], s["size"])


# Runtimes in their own files register themselves on import (at the end: they subclass ``Runtime``).
_RUNTIME_MODULES = ("_rt_litert", "_rt_openvino", "_rt_ort_int8", "_rt_remote")
for _module in _RUNTIME_MODULES:
    importlib.import_module(f"nas.latency.{_module}")
