"""The measuring subprocess: ``python -m nas.latency._worker`` (JSON job on stdin, JSON lines on stdout).

Runs in a fresh process so no state of the caller (its thread pools, allocator, imported libraries)
leaks into a timing. It pins itself to the profile's CPUs, sets the runtime's thread counts, and holds
an exclusive lock per CPU set while preparing and timing each part, so two measurements on the same
cores never overlap. Job: ``{"profile": {...}, "timing": {...}, "parts": [{"kind": ...}, ...]}``.
Output: one ``{"ready": true, "conditions": {...}}`` line, then per part ``{"index": i, "ok": true,
"stats": {...}}`` or ``{"index": i, "ok": false, "error": "..."}``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def lock_path(cpus: list[int]) -> Path:
    tag = "-".join(map(str, cpus)) or "any"
    return Path(tempfile.gettempdir()) / f"nas-latency-cpu{tag}.lock"


@contextlib.contextmanager
def cpu_lock(cpus: list[int]) -> Iterator[None]:
    with open(lock_path(cpus), "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def main() -> int:
    job = json.loads(sys.stdin.read())
    from nas.latency._parts import Part
    from nas.latency._profiles import DeviceProfile
    from nas.latency._runtimes import runtime_for
    from nas.latency._timing import TimingSettings

    profile = DeviceProfile.model_validate(job["profile"])
    cpus = [int(c) for c in job.get("cpus") or profile.pinned_cpus()]
    if cpus and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, cpus)
    timing = TimingSettings.model_validate(job["timing"]) if job.get("timing") else profile.timing
    runtime = runtime_for(profile)
    runtime.configure()
    _emit({"ready": True, "conditions": {
        "fresh_process": True, "pid": os.getpid(), "cpus": cpus, "threads": profile.threads,
        "batch": profile.batch, "load_average": list(os.getloadavg()),
    }})
    for index, data in enumerate(job["parts"]):
        try:
            with cpu_lock(cpus):
                stats = runtime.measure_part(Part.from_json(data), timing)
            _emit({"index": index, "ok": True, "stats": stats.to_dict()})
        except Exception as exc:  # reported to the caller, which raises a LatencyError
            _emit({"index": index, "ok": False, "error": f"{type(exc).__name__}: {exc}"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
