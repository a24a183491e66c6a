"""Host-speed canary: one fixed network timed beside every group of parts, so timings taken minutes or
hours apart on a shared machine land on one scale.

Why: the timing statistics (``_timing``) stand up to millisecond bursts, but not to slow drift of the whole
host. Here the same networks measured 40 minutes apart ran 15% slower (31% at worst), which is more
than the predictor's whole error budget. So every group of parts is timed interleaved with the canary
(``mobilenetv3-small-0.75`` at 224), and each part's statistics are multiplied by
``reference / canary``, where the reference is the median canary of the first measuring process that
recorded one for the profile and fingerprint (stored in the database, so every process and every later
day shares it). Not its first group's canary: a single timing fixes the level of a whole database, and
on fresh databases it was 1.5x the later canaries once and their minimum another time (docs/latency.md). Stored
latencies are therefore "ms at the reference speed"; the raw median and the factor are recorded with
each network measurement. A profile with ``speed_canary: false`` (a dedicated device) is not scaled.
"""

from __future__ import annotations

import importlib.util
import os
import tempfile
from dataclasses import replace
from functools import lru_cache
from importlib import metadata
from pathlib import Path

from nas.latency._fingerprint import METHOD
from nas.latency._parts import Part, network_part
from nas.latency._timing import LatencyStats, Statistic

CANARY_REFERENCE = "mobilenetv3-small-0.75"
CANARY_RESOLUTION = 224
_MS_FIELDS = ("median_ms", "p10_ms", "p90_ms", "mean_ms", "min_ms", "all_median_ms", "quiet_median_ms")


@lru_cache(maxsize=1)
def canary_part() -> Part:
    """The canary as a part; its ONNX graph is exported once per machine and torch version
    (``ensure_exported``) instead of in every measuring process (1.5 s each)."""
    from nas.arch import load_architecture

    arch = load_architecture(CANARY_REFERENCE)
    part = network_part(arch, CANARY_RESOLUTION)
    torch_version = metadata.version("torch") if importlib.util.find_spec("torch") else "none"
    name = f"nas-canary-{arch.hash}-r{CANARY_RESOLUTION}-torch{torch_version}-m{METHOD}.onnx"
    part.spec["onnx_path"] = str(Path(tempfile.gettempdir()) / name)
    return part


def ensure_exported(part: Part) -> None:
    """Write the canary's ONNX file if it is missing (in the measuring process, which has torch);
    written beside and renamed, so a concurrent process never reads half a file."""
    path = Path(part.spec["onnx_path"])
    if path.is_file():
        return
    from nas.arch import parse_architecture
    from nas.export import export_onnx

    scratch = path.with_name(f"{path.stem}.{os.getpid()}.tmp.onnx")
    export_onnx(parse_architecture(part.spec["arch"]).with_(resolution=part.spec["resolution"]), scratch)
    os.replace(scratch, path)


def canary_figure(stats: LatencyStats, statistic: Statistic) -> float:
    """The canary's timing in the statistic the profile reports for networks, whether it was timed beside
    networks or beside lookup-table parts: one reference per profile and fingerprint serves both, so a
    table's level is set by the same canary figures as its networks'."""
    figure = stats.all_median_ms if statistic == "median" else stats.quiet_median_ms
    return figure if figure is not None else stats.median_ms


def scaled(stats: LatencyStats, factor: float) -> LatencyStats:
    """``stats`` with every time multiplied by ``factor`` (relative figures are unchanged)."""
    return replace(stats, **{name: getattr(stats, name) * factor for name in _MS_FIELDS
                             if getattr(stats, name) is not None})


def speed_factor(url: str, profile: str, fingerprint: str, canary_ms: float | None,
                 candidate_ms: float | None = None) -> float:
    """``reference / canary_ms`` (1.0 without a canary); without a stored reference, ``candidate_ms`` (the
    calling process's median canary) becomes it, or ``canary_ms`` itself if none is given."""
    if not canary_ms or canary_ms <= 0:
        return 1.0
    from nas.latency import _cache

    return _cache.canary_reference(url, profile, fingerprint, candidate_ms or canary_ms) / canary_ms
