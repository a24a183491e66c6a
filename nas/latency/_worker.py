"""The measuring subprocess: ``python -m nas.latency._worker`` (JSON job on stdin, JSON lines on stdout).

Runs in a fresh process so no state of the caller (its thread pools, allocator, imported libraries)
leaks into a timing. It pins itself to the profile's CPUs, sets the runtime's thread counts, and holds
an exclusive lock per CPU set while preparing and timing each group of parts (timed interleaved), so
two measurements on the same cores never overlap.
Job: ``{"profile": {...}, "timing": {...}, "group": n, "parent": pid, "parts": [{"kind": ...}, ...],
"canary": part|null}``; the process ends when its parent (the caller) does.
Output: one ``{"ready": true, "conditions": {...}}`` line, then per part ``{"index": i, "ok": true,
"stats": {...}, "canary_ms": x|null}`` (raw, the canary's median in the part's group) or
``{"index": i, "ok": false, "error": "..."}``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sys
import tempfile
import time
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


class LoadMeter:
    """CPU time other processes (and the hypervisor) took while we timed, from ``/proc/stat``: a timing
    taken while the rest of the machine was busy is recorded as such."""

    def __init__(self) -> None:
        self.tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        self.start = self._read()

    def _read(self) -> tuple[float, float, float, float]:
        try:
            with open("/proc/stat") as fh:
                fields = [int(v) for v in fh.readline().split()[1:9]]
        except (OSError, ValueError):
            fields = [0] * 8
        user, nice, system, _idle, _iowait, irq, softirq, steal = fields
        own = os.times()
        return (time.monotonic(), (user + nice + system + irq + softirq) / self.tick, steal / self.tick,
                own.user + own.system)

    def lap(self) -> dict[str, float]:
        now = self._read()
        (t0, busy0, steal0, own0), (t1, busy1, steal1, own1) = self.start, now
        self.start = now
        dt = max(t1 - t0, 1e-9)
        return {"other_cpus": round(max(0.0, (busy1 - busy0) - (own1 - own0)) / dt, 3),
                "steal": round((steal1 - steal0) / dt, 3)}


def wait_for_quiet(max_seconds: float, busy_cpus: float) -> float:
    """Wait (up to ``max_seconds``) until other processes use at most ``busy_cpus`` CPUs; returns the
    seconds waited. On a dedicated device this returns at once; on a shared one it skips others' bursts."""
    waited = 0.0
    while True:
        meter = LoadMeter()
        time.sleep(0.1)
        if meter.lap()["other_cpus"] <= busy_cpus or waited >= max_seconds:
            return waited
        time.sleep(0.4)
        waited += 0.5


def _emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def _end_with_parent(parent: int | None) -> None:
    """A measuring process whose caller is gone would go on holding (or waiting for) the CPU's lock, timing
    for no one (seen after a killed ``nas latency validate``): on Linux the kernel ends it with its parent."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, int(signal.SIGTERM))
    if parent is not None and os.getppid() != parent:  # it died before we asked
        sys.exit(1)


def main() -> int:
    job = json.loads(sys.stdin.read())
    _end_with_parent(job.get("parent"))
    from nas.latency._canary import canary_figure
    from nas.latency._parts import Part
    from nas.latency._profiles import DeviceProfile
    from nas.latency._runtimes import runtime_for
    from nas.latency._timing import TimingSettings

    profile = DeviceProfile.model_validate(job["profile"])
    cpus = [int(c) for c in job.get("cpus") or profile.pinned_cpus()]
    allowed = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if cpus and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, cpus)
    timing = TimingSettings.model_validate(job["timing"]) if job.get("timing") else profile.timing
    runtime = runtime_for(profile)
    runtime.configure()
    _emit({"ready": True, "conditions": {
        "fresh_process": True, "pid": os.getpid(), "cpus": cpus, "threads": profile.threads,
        "batch": profile.batch, "load_average_at_start": list(os.getloadavg()),
    }})
    parts = [Part.from_json(data) for data in job["parts"]]
    canary = Part.from_json(job["canary"]) if job.get("canary") else None
    if canary is not None and profile.runtime == "onnxruntime":
        from nas.latency._canary import ensure_exported

        try:
            ensure_exported(canary)
        except Exception as exc:  # timings are still taken, unscaled; conditions say canary_ms is None
            sys.stderr.write(f"speed canary unavailable: {type(exc).__name__}: {exc}\n")
            canary = None
    try:  # converting is not timing: every network's file first, on every CPU, outside the lock
        runtime.prefetch(parts, allowed)
    except Exception:  # noqa: BLE001, S110 (``prepare`` converts again and reports it per part)
        pass
    group = max(1, int(job.get("group") or 1))
    for first in range(0, len(parts), group):
        chunk = parts[first:first + group]
        try:
            with cpu_lock(cpus):
                quiet = timing.wait_for_quiet if runtime.local else 0.0  # a remote device's load is not ours
                waited = wait_for_quiet(quiet, timing.busy_cpus) if quiet else 0.0
                meter = LoadMeter()
                results = runtime.measure(chunk, timing, canary)
                load = {**meter.lap(), "waited_s": waited}
        except Exception as exc:  # reported to the caller, which raises a LatencyError
            results, load = [f"{type(exc).__name__}: {exc}"] * (len(chunk) + (canary is not None)), {}
        canary_stats = results.pop() if canary is not None else None
        canary_ms = None if canary_stats is None or isinstance(canary_stats, str) else canary_figure(
            canary_stats, profile.timing.statistic)
        for index, result in enumerate(results, start=first):
            if isinstance(result, str):
                _emit({"index": index, "ok": False, "error": result})
            else:
                _emit({"index": index, "ok": True, "stats": result.to_dict(), "load": load, "canary_ms": canary_ms})
    return 0


if __name__ == "__main__":
    sys.exit(main())
