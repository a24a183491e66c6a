"""A trained network in its device's deployed format, with provenance: the file the device profile times.

``nas train --device D`` (and ``POST /trainings`` with ``device``) writes ``model.tflite`` /
``model.int8.tflite`` / ``model.xml`` + ``model.bin`` / ``model.int8.onnx`` beside model.pt and
model.onnx, through ``nas.export.export_artifact`` (what the latency runtimes and ``nas arch export`` use),
int8 calibrated on the training dataset's images; ``model.provenance.json`` says what it is.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from nas.arch import Architecture
from nas.data import DatasetSpec

PROVENANCE = "model.provenance.json"


def export_for_device(arch: Architecture, model: Any, out_dir: Path, device: str, dataset: DatasetSpec,
                      provenance: dict[str, Any]) -> dict[str, str]:
    """Write the device's file(s) and the provenance; returns {artifact name: path}. A device whose runtime
    runs PyTorch modules (``torch-eager``) deploys model.pt itself: only the provenance is written."""
    from nas.latency import load_profile
    from nas.latency._artifacts import calibration_spec, deployed_format
    from nas.search._deployable import QUANTIZATION, deployable_names, deployed_versions

    profile = load_profile(device)
    deployed = deployed_format(profile)
    fmt, int8 = deployed if deployed is not None else (None, False)
    names = deployable_names(fmt, int8, stem="model")
    calibration = None
    if names[0] not in ("model.pt", "model.onnx"):  # those two train_network has just written
        from nas.export import calibration_inputs, export_artifact

        inputs = None
        if int8:
            images = calibration_spec(profile.options)["images"]
            inputs = calibration_inputs(arch, dataset, images, batch=profile.batch)
            calibration = {"dataset": dataset.model_dump(mode="json"), "images": len(inputs) * profile.batch,
                           "split": "the training dataset's training images, then validation, in order"}
        assert fmt is not None
        export_artifact(arch, out_dir / names[0], fmt, int8=int8, model=model, calibration=inputs,
                        batch=profile.batch)
    written = {name: out_dir / name for name in names}
    record = {
        **provenance,
        "device": {"profile": profile.name, "runtime": profile.runtime, "threads": profile.threads,
                   "batch": profile.batch, "settings": profile.settings_hash()},
        "format": fmt or "pytorch", "int8": int8,
        "files": {name: {"sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "size": path.stat().st_size}
                  for name, path in written.items()},
        "versions": deployed_versions(profile, fmt),
        "quantization": {"method": QUANTIZATION[str(fmt)], "calibration": calibration} if int8 else None,
    }
    (out_dir / PROVENANCE).write_text(json.dumps(record, indent=2) + "\n")
    return {**{name: str(path) for name, path in written.items()}, PROVENANCE: str(out_dir / PROVENANCE)}
