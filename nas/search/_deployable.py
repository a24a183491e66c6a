"""What is measured is what is deployed: the best network in its device's format, with provenance.

The device profile's runtime names the file it times (``Runtime.deployed``: ``best.tflite`` for LiteRT,
``best.int8.tflite`` for LiteRT int8, ``best.xml`` + ``best.bin`` for OpenVINO, ``best.int8.onnx`` for
ONNX Runtime int8, ``best.onnx`` for ONNX Runtime, ``best.pt`` for PyTorch eager). It is written by
``nas.export.export_artifact``, the function the latency runtimes and ``nas arch export`` use, from the
trained weights; int8 calibrated on images of the search's proxy dataset. ``best.provenance.json`` says
which search, trial and architecture it is, on which device, runtime and library versions, how it was
quantized, and the latency that was judged with its statistic and spread. Nothing is timed here: the
latency is the device's own (a driver never times, ``nas.latency._guard``).
"""

from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nas.arch import Architecture
from nas.search._context import SearchContext
from nas.service.artifacts import BEST_PROVENANCE

if TYPE_CHECKING:
    import optuna

    from nas.latency import DeviceProfile

PROVENANCE = BEST_PROVENANCE
QUANTIZATION = {"onnx": "static post-training QDQ (onnxruntime.quantization, MinMax, int8 weights per channel, "
                        "uint8 activations)",
                "tflite": "full-integer post-training PT2E (litert-torch, symmetric int8 per channel, static "
                          "activations)"}
STATISTICS = {"median": "median of all runs after warm-up (nas.latency._timing), spread p10-p90 of the same runs",
              "quiet-median": "median of the quiet runs (nas.latency._timing), spread p10-p90 of the same runs"}
TIMED_FILE = "; the file timed had this architecture, resolution, format and batch"


def deployable_names(fmt: str | None, int8: bool, stem: str = "best") -> list[str]:
    """The artifact names of the device's file(s), the one to load first; ``fmt`` None: PyTorch (best.pt)."""
    if fmt is None:
        return [f"{stem}.pt"]
    if fmt == "onnx":
        return [f"{stem}.int8.onnx"] if int8 else [f"{stem}.onnx"]
    if fmt == "openvino":
        return [f"{stem}.xml", f"{stem}.bin"]
    return [f"{stem}.int8.tflite" if int8 else f"{stem}.tflite"]


def export_deployable(ctx: SearchContext, best: optuna.trial.FrozenTrial, arch: Architecture, model: Any,
                      written: dict[str, Path], search_id: str | None = None) -> tuple[list[str], dict[str, Any]]:
    """Write the device's file(s) for the trained ``model`` into the run folder (unless among ``written``,
    the files already there by artifact name) and the provenance; returns (artifact names, provenance)."""
    from nas.latency import load_profile
    from nas.latency._artifacts import calibration_spec, deployed_format

    profile = load_profile(ctx.spec.device)
    deployed = deployed_format(profile)
    fmt, int8 = deployed if deployed is not None else (None, False)
    names = deployable_names(fmt, int8)
    calibration: dict[str, Any] | None = None
    if names[0] not in written:
        from nas.export import calibration_inputs, export_artifact

        inputs = None
        if int8:
            images = calibration_spec(profile.options)["images"]
            inputs = calibration_inputs(arch, ctx.spec.proxy.dataset, images, batch=profile.batch)
            calibration = {"dataset": ctx.spec.proxy.dataset.model_dump(mode="json"), "images": len(inputs) *
                           profile.batch, "split": "the proxy dataset's training images, then validation, in order"}
        assert fmt is not None  # PyTorch's file, best.pt, is always among ``written``
        written[names[0]] = export_artifact(arch, ctx.run_dir / names[0], fmt, int8=int8, model=model,
                                            calibration=inputs, batch=profile.batch)
        for extra in names[1:]:
            written[extra] = ctx.run_dir / extra
    provenance = _provenance(ctx, best, arch, profile, fmt, int8, calibration, names, written, search_id)
    (ctx.run_dir / PROVENANCE).write_text(json.dumps(provenance, indent=2) + "\n")
    written[PROVENANCE] = ctx.run_dir / PROVENANCE
    return [*names, PROVENANCE], provenance


def _provenance(ctx: SearchContext, best: optuna.trial.FrozenTrial, arch: Architecture, profile: DeviceProfile,
                fmt: str | None, int8: bool, calibration: dict[str, Any] | None, names: list[str],
                written: dict[str, Path], search_id: str | None) -> dict[str, Any]:
    import hashlib

    a = best.user_attrs
    latency = dict(a.get("latency") or {})
    statistic = (STATISTICS[profile.timing.statistic] + TIMED_FILE if latency.get("source") == "measured"
                 else "lookup-table prediction (sum of parts, calibrated)")
    return {
        "search": search_id or ctx.study.study_name, "study": ctx.study.study_name, "trial": best.number,
        "architecture": {"hash": arch.hash, "string": a.get("arch_string"), "resolution": arch.resolution},
        "device": {"profile": profile.name, "runtime": profile.runtime, "threads": profile.threads,
                   "batch": profile.batch, "settings": profile.settings_hash(),
                   "fingerprint": latency.get("fingerprint")},
        "format": fmt or "pytorch", "int8": int8,
        "files": {name: {"sha256": hashlib.sha256(written[name].read_bytes()).hexdigest(),
                         "size": written[name].stat().st_size} for name in names},
        "versions": deployed_versions(profile, fmt),
        "quantization": {"method": QUANTIZATION[str(fmt)], "calibration": calibration} if int8 else None,
        "latency": {"ms": latency.get("ms"), "source": latency.get("source"), "statistic": statistic,
                    "p10_ms": latency.get("p10_ms"), "p90_ms": latency.get("p90_ms"), "runs": latency.get("runs")},
        "accuracy": a.get("accuracy"), "proxy_dataset": ctx.spec.proxy.dataset.name,
    }


def deployed_versions(profile: DeviceProfile, fmt: str | None) -> dict[str, str]:
    """The versions of the libraries that wrote and run a file of ``fmt`` for ``profile``."""
    from nas.latency._runtimes import _REGISTRY

    packages = ("torch", "onnx", "onnxruntime", *_REGISTRY[profile.runtime].libraries) if fmt else ("torch",)
    if fmt == "openvino":
        packages = (*packages, "openvino")
    return {p: _version(p) for p in dict.fromkeys(packages)}


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "absent"
