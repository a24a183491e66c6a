"""End-to-end latency measurement of networks, cached by (architecture hash, resolution, profile, fingerprint).

Timing happens in a fresh subprocess (``nas.latency._worker``) pinned to the profile's CPUs with the
runtime's threads set to the profile's count; this module starts it, streams its results and stores them.
"""

from __future__ import annotations

import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from nas.arch import Architecture, load_architecture
from nas.errors import LatencyError
from nas.latency import _cache
from nas.latency._canary import canary_part, scaled, speed_factor
from nas.latency._fingerprint import fingerprint_info
from nas.latency._guard import check_may_time
from nas.latency._parts import Part, network_part
from nas.latency._profiles import DeviceProfile, load_profile
from nas.latency._runtimes import _REGISTRY
from nas.latency._timing import LatencyStats, TimingSettings

log = logging.getLogger(__name__)

# Below this input size fixed per-call overheads dominate and rankings stop meaning anything (DESIGN.md).
SMALL_RESOLUTION = 96

Progress = Callable[[int, int], None]

SLOW_HOST_PAUSE = 20.0  # seconds between timing a slow group and timing it again
NETWORK_GROUP = 4  # networks timed interleaved per group (each keeps its own session in memory)


@dataclass
class Measurement:
    arch_hash: str
    resolution: int
    profile: str
    fingerprint: str
    stats: LatencyStats
    cached: bool
    hardware: dict[str, Any] = field(default_factory=dict)
    conditions: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"arch_hash": self.arch_hash, "resolution": self.resolution, "profile": self.profile,
                "fingerprint": self.fingerprint, **self.stats.to_dict(), "cached": self.cached,
                "hardware": self.hardware, "conditions": self.conditions}


def resolve_url(url: str | None = None) -> str:
    if url:
        return url
    from nas.settings import get_settings

    return get_settings().resolved_database_url()


def check_runnable(arch: Architecture, profile: DeviceProfile, resolution: int) -> None:
    """Raise ``LatencyError`` if ``arch`` cannot run on ``profile`` (runtime missing, memory limit)."""
    reason = _REGISTRY[profile.runtime].unavailable_reason()
    if reason:
        raise LatencyError(f"profile {profile.name} cannot run here: {reason}")
    if profile.max_memory_mb is not None:
        from nas.cost import estimate

        cost = estimate(arch.with_(resolution=resolution)).total
        need_mb = 4 * (cost.params + profile.batch * cost.peak_activation_elements) / 2**20
        if need_mb > profile.max_memory_mb:
            raise LatencyError(f"network {arch.hash} needs {need_mb:.1f} MB at resolution {resolution} "
                               f"(weights + peak activations), profile {profile.name} allows "
                               f"{profile.max_memory_mb:g} MB")
    if resolution < SMALL_RESOLUTION:
        log.warning("timing at resolution %d: fixed overheads dominate; deployment latency is quoted at "
                    "the network's deployment resolution (usually 224)", resolution)


@dataclass
class WorkerRun:
    """What one measuring process reports: per part its stats or an error message, the conditions it
    ran under (pinned CPUs, threads, pid), and per part the load other processes put on the machine
    while it was timed (``other_cpus``: CPUs' worth of busy time not ours; ``steal``: the hypervisor's)."""

    results: list[LatencyStats | str]
    conditions: dict[str, Any]
    loads: list[dict[str, float]]
    canaries: list[float | None] = field(default_factory=list)

    def timed_canaries(self) -> list[float]:
        """The canary figures of the parts that were timed (not of those that failed)."""
        return [c for r, c in zip(self.results, self.canaries, strict=False) if c and not isinstance(r, str)]

    def normalised(self, url: str, profile: DeviceProfile, fp: str) -> list[tuple[LatencyStats | str, float]]:
        """Each result at the reference host speed (``_canary``), with the factor applied; a database's
        first run sets the reference to the median of its groups' canaries."""
        out: list[tuple[LatencyStats | str, float]] = []
        canaries = self.canaries or [None] * len(self.results)
        timed = self.timed_canaries()
        candidate = statistics.median(timed) if timed else None
        for result, canary_ms in zip(self.results, canaries, strict=True):
            factor = 1.0 if isinstance(result, str) else speed_factor(url, profile.name, fp, canary_ms, candidate)
            out.append((result if isinstance(result, str) else scaled(result, factor), factor))
        return out


def run_parts(profile: DeviceProfile, parts: Sequence[Part], *, timing: TimingSettings | None = None,
              cpus: list[int] | None = None, group: int = 1, progress: Progress | None = None) -> WorkerRun:
    """Time ``parts`` in one fresh worker process, ``group`` at a time interleaved. Every timing goes through
    here, so this is where a process that must not time (``_guard``) is stopped."""
    check_may_time(profile.name)
    job = {"profile": profile.model_dump(mode="json"), "cpus": cpus, "group": group, "parent": os.getpid(),
           "timing": timing.model_dump(mode="json") if timing else None,
           "parts": [p.to_json() for p in parts],
           "canary": canary_part().to_json() if profile.speed_canary else None}
    threads = str(profile.threads)
    env = {**os.environ, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads,
           "OPENBLAS_NUM_THREADS": threads, "PYTHONUNBUFFERED": "1"}
    run = WorkerRun(["not measured"] * len(parts), {}, [{} for _ in parts], [None] * len(parts))
    with tempfile.TemporaryFile(mode="w+") as err, tempfile.TemporaryFile(mode="w+") as job_file:
        json.dump(job, job_file)
        job_file.seek(0)
        proc = subprocess.Popen([sys.executable, "-m", "nas.latency._worker"], stdin=job_file,
                                stdout=subprocess.PIPE, stderr=err, text=True, env=env)
        assert proc.stdout is not None
        done = 0
        for line in proc.stdout:
            try:
                msg = json.loads(line)
            except json.JSONDecodeError:  # a library printing to stdout; not ours
                log.debug("worker said: %s", line.rstrip())
                continue
            if msg.get("ready"):
                run.conditions = msg["conditions"]
                continue
            index = msg["index"]
            run.results[index] = LatencyStats.from_dict(msg["stats"]) if msg["ok"] else msg["error"]
            run.loads[index] = msg.get("load", {})
            run.canaries[index] = msg.get("canary_ms")
            done += 1
            if progress:
                progress(done, len(parts))
        code = proc.wait()
        if code != 0:
            err.seek(0)
            tail = err.read()[-2000:].strip()
            raise LatencyError(f"the measuring process for profile {profile.name} exited with code {code}: {tail}")
    return run


def run_parts_at_speed(profile: DeviceProfile, parts: Sequence[Part], url: str, fp: str, *,
                       timing: TimingSettings | None = None, cpus: list[int] | None = None, group: int = 1,
                       progress: Progress | None = None) -> WorkerRun:
    """``run_parts``, then the groups timed while the host ran far below its reference speed (canary over
    ``slow_host`` x the reference) timed again after a pause, for up to ``slow_host_wait`` seconds. The
    canary's scaling is right for drift of a few percent, not for this: on a 2-core VM just after
    converting networks on both cores, the canary ran 10-12x slower for 1-3 minutes, and the networks
    timed then were off by up to 40% after scaling (docs/latency.md)."""
    settings = timing or profile.timing
    run = run_parts(profile, parts, timing=timing, cpus=cpus, group=group, progress=progress)
    timed = run.timed_canaries()
    if not timed:
        return run
    reference = _cache.stored_canary_reference(url, profile.name, fp) or statistics.median(timed)
    deadline = time.monotonic() + settings.slow_host_wait
    first, tries = list(run.canaries), [0] * len(parts)
    while True:
        slow = [i for i, (r, c) in enumerate(zip(run.results, run.canaries, strict=True))
                if c and not isinstance(r, str) and c > settings.slow_host * reference]
        pause = min(SLOW_HOST_PAUSE, deadline - time.monotonic())
        if not slow or pause <= 0:
            break
        worst = max(run.canaries[i] or 0.0 for i in slow)
        log.warning("%s: %d of %d parts were timed while the host ran %.1fx slower than its reference "
                    "(canary %.2f ms against %.2f ms); timing them again in %.0f s", profile.name, len(slow),
                    len(parts), worst / reference, worst, reference, pause)
        time.sleep(pause)
        again = run_parts(profile, [parts[i] for i in slow], timing=timing, cpus=cpus, group=group)
        for j, i in enumerate(slow):
            tries[i] += 1
            canary = again.canaries[j]
            if canary and not isinstance(again.results[j], str) and canary < (run.canaries[i] or 0):
                run.results[i], run.canaries[i], run.loads[i] = again.results[j], canary, again.loads[j]
    for i, n in enumerate(tries):
        if n:  # the load of the timing kept, and how it came to be kept
            run.loads[i] = {**run.loads[i], "retimed": n, "slow_canary_ms": first[i] or 0.0}
    return run


def _resolve(arch: Architecture | str) -> Architecture:
    return load_architecture(arch) if isinstance(arch, str) else arch


def measure_many(archs: Sequence[Architecture | str], profile: str | DeviceProfile,
                 resolution: int | None = None, *, database_url: str | None = None, use_cache: bool = True,
                 timing: TimingSettings | None = None, progress: Progress | None = None,
                 onnx_paths: Sequence[str | None] | None = None, group: int = NETWORK_GROUP) -> list[Measurement]:
    """Measure several networks (each at ``resolution`` or its own deployment resolution), timing all
    cache misses in one fresh process, ``group`` at a time interleaved; results are stored in the database."""
    prof = load_profile(profile)
    url = resolve_url(database_url)
    info = fingerprint_info(prof)
    fp = str(info["fingerprint"])
    resolved = [_resolve(a) for a in archs]
    out: list[Measurement | None] = [None] * len(resolved)
    todo: dict[tuple[str, int], list[int]] = {}  # one timing per distinct (network, resolution)
    for i, arch in enumerate(resolved):
        res = resolution or arch.resolution
        check_runnable(arch, prof, res)
        hit = _cache.get_measurement(url, arch.hash, res, prof.name, fp) if use_cache else None
        if hit:
            out[i] = Measurement(arch.hash, res, prof.name, fp, hit["stats"], True, hit["hardware"],
                                 hit["conditions"])
        else:
            todo.setdefault((arch.hash, res), []).append(i)
    if todo:
        firsts = [indices[0] for indices in todo.values()]
        parts = []
        for i in firsts:
            part = network_part(resolved[i], resolution)
            if onnx_paths and onnx_paths[i]:
                part.spec["onnx_path"] = onnx_paths[i]
            parts.append(part)
        run = run_parts_at_speed(prof, parts, url, fp, timing=timing, group=group, progress=progress)
        normalised = run.normalised(url, prof, fp)
        for j, ((key, indices), (result, factor)) in enumerate(zip(todo.items(), normalised, strict=True)):
            arch, res = resolved[indices[0]], key[1]
            raw = run.results[j]
            conditions = {**run.conditions, "load": run.loads[j], "canary_ms": run.canaries[j],
                          "speed_factor": round(factor, 5),
                          "raw_median_ms": raw.median_ms if isinstance(raw, LatencyStats) else None,
                          # the median of all its runs and of its quiet runs, scaled like median_ms (kept
                          # here: not columns), so either statistic can be refitted from a database
                          "all_median_ms": getattr(result, "all_median_ms", None),
                          "quiet_median_ms": getattr(result, "quiet_median_ms", None)}
            if isinstance(result, str):
                raise LatencyError(f"network {arch.hash} cannot run on profile {prof.name}: {result}")
            _cache.put_measurement(url, arch.hash, res, prof.name, fp, stats=result,
                                   architecture=arch.canonical_json(), hardware=info, conditions=conditions)
            for i in indices:
                out[i] = Measurement(arch.hash, res, prof.name, fp, result, False, info, conditions)
    return [m for m in out if m is not None]


def measure(arch: Architecture | str, profile: str | DeviceProfile, resolution: int | None = None, *,
            database_url: str | None = None, use_cache: bool = True,
            timing: TimingSettings | None = None) -> Measurement:
    """Median/p10/p90 latency of one network at its deployment resolution (or ``resolution``)."""
    return measure_many([arch], profile, resolution, database_url=database_url, use_cache=use_cache,
                        timing=timing)[0]
