"""Device profiles: which runtime, how many threads, which batch, and how to time on it.

A profile is the unit a latency is quoted for. Six are built in (one per runtime, all on this machine's
CPU, one thread, batch 1; their names say the runtime and ``int8`` where quantized); users add more as YAML files
(one profile per file) in ``search_spaces/devices/`` or in the directory named by ``NAS_DEVICES_DIR``.
Everything in a profile that can change a timing is folded into the hardware fingerprint
(``nas.latency._fingerprint``), so editing a profile never silently reuses stale cached latencies.
"""

from __future__ import annotations

import hashlib
import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from nas._documents import first_error
from nas.errors import LatencyError, NotFoundError
from nas.latency._timing import TABLE_TIMING, TimingSettings
from nas.paths import search_spaces_dir


class DeviceProfile(BaseModel):
    """A named target: runtime + threads + batch (+ runtime options). See the module docstring."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")
    runtime: str = Field(description="A registered runtime: onnxruntime, torch-eager, ...")
    threads: int = Field(default=1, ge=1, le=256)
    batch: int = Field(default=1, ge=1, le=1024)
    description: str = ""
    cpus: list[int] | None = Field(
        default=None, description="CPUs to pin the measuring process to; None: the last `threads` allowed CPUs."
    )
    options: dict[str, Any] = Field(default_factory=dict, description="Runtime-specific options.")
    max_memory_mb: float | None = Field(
        default=None, gt=0, description="Networks whose weights + peak activations exceed this cannot run."
    )
    timing: TimingSettings = Field(default=TimingSettings(), description="For whole networks.")
    table_timing: TimingSettings = Field(default=TABLE_TIMING, description="For lookup-table entries.")
    speed_canary: bool = Field(default=True, description=(
        "Time a fixed canary network beside every group of parts and scale to its reference speed "
        "(nas.latency._canary): for shared machines whose speed drifts. Off for a dedicated device."))
    predictor: str = Field(default="lut", description=(
        "How latency is predicted (nas.latency._predictors): lut (every part timed alone) or ops "
        "(per-operator costs fitted on whole networks measured on the device)."))
    predictor_networks: int | None = Field(default=None, ge=2, le=10_000, description=(
        "Networks measured end to end per space and resolution to fit the predictor (its calibration); "
        "default: the approach's own (lut 24, ops 40)."))
    source: str = Field(default="built-in", exclude=True)

    @field_validator("predictor")
    @classmethod
    def _known_predictor(cls, value: str) -> str:
        from nas.latency._predictors import approach_names

        if value not in approach_names():
            raise ValueError(f"unknown predictor {value!r}; known: {', '.join(approach_names())}")
        return value

    @field_validator("runtime")
    @classmethod
    def _known_runtime(cls, value: str) -> str:
        from nas.latency._runtimes import runtime_names

        if value not in runtime_names():
            raise ValueError(f"unknown runtime {value!r}; known: {', '.join(runtime_names())}")
        return value

    @model_validator(mode="after")
    def _runtime_options(self) -> DeviceProfile:
        from nas.latency._runtimes import _REGISTRY

        try:
            _REGISTRY[self.runtime].check_options(self.options)
        except LatencyError as exc:
            raise ValueError(str(exc)) from None
        return self

    def settings_hash(self) -> str:
        """Hash of what changes the expected value of a timing (runtime, threads, batch, options, the
        statistic a network's timing reports); not of how long to time, where, or what to call the profile.
        The lookup-table parts' statistic is left out: a calibrated sum absorbs their level."""
        body = self.model_dump(mode="json", include={"runtime": True, "threads": True, "batch": True, "options": True,
                                                     "speed_canary": True, "timing": {"statistic"}})
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:12]

    def pinned_cpus(self) -> list[int]:
        """The CPUs a measurement runs on, so concurrent measurements can serialise on them."""
        if self.cpus:
            return sorted(self.cpus)
        allowed = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
        return allowed[-self.threads:] if allowed else []


BUILT_IN: dict[str, DeviceProfile] = {
    p.name: p
    for p in (
        DeviceProfile(name="cpu-ort-1t", runtime="onnxruntime", threads=1, batch=1,
                      description="ONNX Runtime CPU execution provider, 1 intra-op thread, batch 1"),
        DeviceProfile(name="cpu-torch-1t", runtime="torch-eager", threads=1, batch=1,
                      description="PyTorch eager on the CPU, 1 thread, batch 1, inference mode"),
        DeviceProfile(name="cpu-litert-1t", runtime="litert", threads=1, batch=1,
                      predictor="ops",
                      description="LiteRT (TFLite) with XNNPACK, float32, 1 thread, batch 1: a phone CPU's path"),
        DeviceProfile(name="cpu-litert-int8-1t", runtime="litert-int8", threads=1, batch=1,
                      predictor="ops",
                      description="LiteRT with XNNPACK, full-integer int8 (PTQ on digits), 1 thread, batch 1"),
        DeviceProfile(name="cpu-openvino-1t", runtime="openvino", threads=1, batch=1,
                      predictor="ops",
                      description="OpenVINO CPU plugin, f32, latency hint, 1 inference thread, batch 1"),
        DeviceProfile(name="cpu-ort-int8-1t", runtime="onnxruntime-int8", threads=1, batch=1,
                      predictor="ops", predictor_networks=80,
                      description="ONNX Runtime CPU, int8 static QDQ (PTQ on digits), 1 thread, batch 1"),
    )
}


def devices_dirs() -> list[Path]:
    """Where user profiles are read from: the shipped directory, then ``NAS_DEVICES_DIR`` (later wins)."""
    from nas.settings import get_settings

    extra = get_settings().devices_dir
    return [search_spaces_dir() / "devices", *([extra] if extra else [])]


def _read_profile(path: Path) -> DeviceProfile:
    stat = path.stat()
    return _parse_profile(path, stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=256)
def _parse_profile(path: Path, mtime_ns: int, size: int) -> DeviceProfile:
    """Parsed once per file version: the API validates the device of every submission against these
    files, and parsing YAML each time cost about a millisecond per request."""
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise LatencyError(f"{path}: invalid YAML: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(data, dict):
        raise LatencyError(f"{path}: a device profile must be a YAML mapping")
    data.setdefault("name", path.stem)
    try:
        profile = DeviceProfile.model_validate({**data, "source": str(path)})
    except ValidationError as exc:
        loc, reason = first_error(exc)
        raise LatencyError(f"{path}: {loc}: {reason}") from None
    if profile.name in BUILT_IN:
        raise LatencyError(f"{path}: name {profile.name!r} is a built-in profile; choose another name")
    return profile


def user_profiles() -> dict[str, DeviceProfile]:
    found: dict[str, DeviceProfile] = {}
    for directory in devices_dirs():
        if directory.is_dir():
            for path in sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")]):
                profile = _read_profile(path)
                found[profile.name] = profile
    return found


def list_profiles() -> list[DeviceProfile]:
    """Built-in profiles first, then user profiles by name."""
    users = user_profiles()
    return [*BUILT_IN.values(), *(users[n] for n in sorted(users))]


def load_profile(name_or_file: str | DeviceProfile) -> DeviceProfile:
    """A profile by name (built-in or user YAML) or from a YAML file path."""
    if isinstance(name_or_file, DeviceProfile):
        return name_or_file
    if name_or_file in BUILT_IN:
        return BUILT_IN[name_or_file]
    path = Path(name_or_file)
    if path.suffix in (".yaml", ".yml"):
        if not path.is_file():
            raise NotFoundError("device profile file", str(path))
        return _read_profile(path)
    users = user_profiles()
    if name_or_file in users:
        return users[name_or_file]
    raise NotFoundError("device profile", name_or_file, [*BUILT_IN, *users])

