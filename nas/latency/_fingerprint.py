"""Hardware fingerprint recorded with every measurement and table entry.

Latencies only transfer between machines with the same CPU, core count, library builds and profile
settings (nn-Meter #83: users' numbers disagreed because affinity, frequency and builds differed), so
all of those go into a short hash that is part of every cache key. Library versions come from package
metadata, so computing a fingerprint never imports torch or onnxruntime.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
from functools import lru_cache
from importlib import metadata
from typing import Any

from nas.latency._profiles import DeviceProfile

_LIBRARIES = ("torch", "onnxruntime", "numpy")
# Bumped whenever what a stored number means changes (how parts are timed, which runs count).
METHOD = 6  # 6: whole networks report the median of all runs (was: of the quiet runs), nas.latency._timing;
# a job's networks are all converted before the first is timed; a group timed on a host far below its
# reference speed is timed again (nas.latency._measure.run_parts_at_speed)


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "absent"


@lru_cache(maxsize=1)
def hardware_info() -> dict[str, Any]:
    """What this machine is, independent of any profile."""
    return {
        "cpu_model": _cpu_model(),
        "logical_cpus": os.cpu_count() or 0,
        "machine": platform.machine(),
        "system": platform.system(),
        "python": platform.python_version(),
        **{f"{lib}_version": _version(lib) for lib in _LIBRARIES},
    }


def fingerprint_info(profile: DeviceProfile) -> dict[str, Any]:
    """Hardware info plus the profile's timing-relevant settings, and the short hash of both."""
    from nas.latency._runtimes import _REGISTRY

    info = {**hardware_info(), "profile": profile.name, "profile_settings": profile.settings_hash(),
            "method": METHOD}
    extra = _REGISTRY[profile.runtime].libraries  # only runtimes that name them: older fingerprints stay valid
    if extra:
        info["runtime_libraries"] = {lib: _version(lib) for lib in extra}
    body = {k: v for k, v in info.items() if k not in ("profile", "python")}
    info["fingerprint"] = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:12]
    return info


def fingerprint(profile: DeviceProfile) -> str:
    return str(fingerprint_info(profile)["fingerprint"])
