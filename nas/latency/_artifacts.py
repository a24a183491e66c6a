"""Deployable artifacts of whole networks for the runtimes, converted once per machine and reused.

A LiteRT conversion takes 10-15 s and an int8 one more, far longer than timing the result, and the
speed canary is the same network in every measuring process. So a network's artifact is written by
``nas.export.export_artifact`` (exactly what ``nas arch export`` writes) into a per-user cache directory,
keyed by everything that changes the file: architecture, resolution, batch, format, int8 and its
calibration, and the converting libraries' versions. Files are written beside and renamed, so a
concurrent process never reads half a file.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nas.settings import get_settings

if TYPE_CHECKING:
    from nas.latency._profiles import DeviceProfile

_CONVERTERS = ("torch", "onnxruntime", "litert-torch", "ai-edge-litert", "openvino")


def cache_dir() -> Path:
    """``NAS_ARTIFACT_CACHE`` or a directory under the system's temporary directory."""
    return get_settings().artifact_cache or Path(tempfile.gettempdir()) / "nas-artifacts"


def _versions() -> dict[str, str]:
    out = {}
    for name in _CONVERTERS:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "absent"
    return out


def calibration_spec(options: dict[str, Any]) -> dict[str, Any]:
    """The int8 calibration a profile asks for: ``calibration`` (a proxy dataset spec, e.g.
    ``{kind: digits}`` or ``{kind: cifar10, path: ...}``; ``none`` for seeded noise) and
    ``calibration_images``."""
    data = options.get("calibration", {"kind": "digits"})
    return {"dataset": None if data in (None, "none") else dict(data),
            "images": int(options.get("calibration_images", 8))}


def deployed_format(profile: DeviceProfile) -> tuple[str, bool] | None:
    """``(format, int8)`` of the file ``profile`` times, or None for a runtime that runs PyTorch modules."""
    from nas.latency._runtimes import _REGISTRY

    return _REGISTRY[profile.runtime].deployed(profile.options)


def network_artifact(spec: dict[str, Any], fmt: str, *, int8: bool = False, batch: int = 1,
                     calibration: dict[str, Any] | None = None) -> Path:
    """The cached artifact of the network part ``spec`` (``nas.latency._parts.network_part``),
    converted on first use."""
    from nas.arch import parse_architecture
    from nas.latency._fingerprint import METHOD

    arch = parse_architecture(spec["arch"])
    if arch.resolution != spec["resolution"]:
        arch = arch.with_(resolution=spec["resolution"])
    calib = calibration if int8 else None
    body = {"arch": arch.hash, "resolution": arch.resolution, "batch": batch, "format": fmt, "int8": int8,
            "calibration": calib, "versions": _versions(), "method": METHOD}
    tag = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]
    from nas.export import SUFFIX

    suffix = SUFFIX[fmt]
    final = cache_dir() / f"{arch.hash}-r{arch.resolution}-b{batch}-{fmt}{'-int8' if int8 else ''}-{tag}{suffix}"
    if final.is_file():
        os.utime(final)  # recently used: kept by ``_prune``
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(dir=final.parent, prefix=".tmp-"))
    try:
        from nas.export import calibration_inputs, export_artifact

        inputs = None
        if int8 and calib is not None:
            from nas.data import DatasetSpec

            dataset = DatasetSpec.model_validate(calib["dataset"]) if calib["dataset"] else None
            inputs = calibration_inputs(arch, dataset, calib["images"], batch=batch)
        written = export_artifact(arch, scratch / f"model{suffix}", fmt, int8=int8, calibration=inputs, batch=batch)
        if fmt == "openvino":  # the .bin first: a reader that finds the .xml finds its weights
            os.replace(written.with_suffix(".bin"), final.with_suffix(".bin"))
        os.replace(written, final)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    _prune(final.parent, keep=final)
    return final


def _prune(directory: Path, keep: Path) -> None:
    """Keep the most recently used artifacts up to ``NAS_ARTIFACT_CACHE_MB`` (default 8192) in all. The
    budget is in bytes, not files: a search measures thousands of networks, each file up to tens of MB,
    yet ``nas latency validate --n 100`` times a hundred files twice (project, then plain loop), and a
    budget of a few dozen files made it convert every LiteRT network again (10-15 s each)."""
    budget = get_settings().artifact_cache_mb * 2**20
    used: list[tuple[float, int, Path]] = []
    for path in directory.iterdir():
        if path.suffix != ".bin" and not path.name.startswith("."):
            weights = path.with_suffix(".bin") if path.suffix == ".xml" else None  # OpenVINO's .bin
            try:
                st = path.stat()
                extra = weights.stat().st_size if weights is not None and weights.exists() else 0
            except FileNotFoundError:  # pruned by a concurrent process
                continue
            used.append((st.st_mtime, st.st_size + extra, path))
    total = 0
    for _, size, old in sorted(used, reverse=True):
        total += size
        if total > budget and old != keep:
            old.unlink(missing_ok=True)
            if old.suffix == ".xml":
                old.with_suffix(".bin").unlink(missing_ok=True)


_POOL: list[Any] = []  # one pool of converting processes per measuring process, started on first need


def _converter_started(cpus: list[int]) -> None:
    """A converting process runs on every CPU of the profile and ends with the measuring process that
    started it (a killed ``nas latency validate`` left two converting LiteRT files for 11 minutes)."""
    from nas.latency._worker import _end_with_parent

    _end_with_parent(os.getppid())
    if cpus and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, cpus)


def prefetch_networks(specs: list[dict[str, Any]], fmt: str, *, int8: bool, batch: int,
                      calibration: dict[str, Any] | None, cpus: list[int]) -> None:
    """Convert the networks' artifacts on every CPU in ``cpus``, before they are timed. The measuring
    process is pinned to the profile's CPU and converts under the timing lock otherwise: LiteRT's 10-15 s
    per network, one at a time on one core, while every other measurement on that core waits. A job's
    networks are all converted before its first is timed: converting each group of four just before
    timing it put the timings amid conversion bursts on both cores."""
    if len(specs) <= 1 or len(cpus) <= 1:
        return  # nothing to run side by side: ``prepare`` converts as before
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from functools import partial

    if not _POOL:
        _POOL.append(ProcessPoolExecutor(max_workers=len(cpus), mp_context=multiprocessing.get_context("spawn"),
                                         initializer=_converter_started, initargs=(cpus,)))
    convert = partial(_try_artifact, fmt=fmt, int8=int8, batch=batch, calibration=calibration)
    list(_POOL[0].map(convert, specs))


def _try_artifact(spec: dict[str, Any], **kwargs: Any) -> None:
    """A network that fails to convert here is converted again by ``prepare``, which reports it per part."""
    try:
        network_artifact(spec, **kwargs)
    except Exception:  # noqa: BLE001, S110 (reported by ``prepare``)
        pass
