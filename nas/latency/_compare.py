"""Operator costs per device: a space's baseline and its whole-network variants (``_variants``) timed on
several device profiles, each variant's latency given as a ratio to the baseline on the same device.

Host drift cancels in the ratios: in each round every device gets one fresh measuring process that times
the baseline and all variants interleaved (one window of runs each in turn, ``time_interleaved``), so a
round's ratio is taken over the same seconds; the rounds alternate the devices' order (A B C, C B A, ...),
and the reported ratio is the median over rounds with its range. Each profile runs its own runtime on the
file it deploys; those files are converted once, up front, into the artifact cache (LiteRT's converter
takes 10-15 s a network), so a second comparison of the same space only times. The statistic is the
profiles' own (their ``timing.statistic``, ``_timing``); the speed canary and the wait for a quiet machine are
left out, since a ratio within one process needs neither.
"""

from __future__ import annotations

import contextlib
import os
import statistics
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nas.errors import LatencyError
from nas.latency._artifacts import calibration_spec, deployed_format, network_artifact
from nas.latency._measure import check_runnable, run_parts
from nas.latency._parts import Part, network_part
from nas.latency._profiles import DeviceProfile, load_profile
from nas.latency._runtimes import _REGISTRY
from nas.latency._timing import LatencyStats
from nas.latency._variants import Variant, variants

if TYPE_CHECKING:
    from nas.spaces import SearchSpace

Progress = Callable[[str, int, int], None]
STATISTIC = "each profile's timing.statistic (by default the median of all runs, nas.latency._timing); " \
            "ratio = median over rounds of variant / baseline, both timed interleaved in one process"


@dataclass
class Cell:
    """One variant on one device: its per-round statistics and ratios to that round's baseline."""

    stats: list[LatencyStats]
    ratios: list[float]

    def to_dict(self) -> dict[str, Any]:
        return {"ratio": statistics.median(self.ratios), "ratio_min": min(self.ratios),
                "ratio_max": max(self.ratios), "round_ratios": self.ratios,
                "median_ms": statistics.median(s.median_ms for s in self.stats),
                "spread": statistics.median(s.spread for s in self.stats),
                "runs": sum(s.runs for s in self.stats)}


@dataclass
class Comparison:
    space: str
    resolution: int
    devices: list[str]
    rounds: int
    variants: list[Variant]
    cells: dict[str, list[Cell]]  # device -> one cell per variant

    def to_dict(self) -> dict[str, Any]:
        rows = [{"choice": v.label, "family": v.family, "option": v.option, "arch_hash": v.arch.hash,
                 "blocks": v.blocks, "total_blocks": v.total_blocks,
                 "devices": {d: self.cells[d][i].to_dict() for d in self.devices}}
                for i, v in enumerate(self.variants)]
        return {"space": self.space, "resolution": self.resolution, "devices": self.devices,
                "rounds": self.rounds, "statistic": STATISTIC,
                "baseline": self.variants[0].arch.model_dump(mode="json"), "rows": rows}


@contextlib.contextmanager
def _converter_output_aside() -> Iterator[None]:
    """Send what converters print (LiteRT's step log, to both streams) to a scratch file: it would break
    the progress bar and the JSON on stdout. On failure its last lines are part of the error."""
    import sys
    import tempfile

    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with tempfile.TemporaryFile(mode="w+") as scratch:
        os.dup2(scratch.fileno(), 1)
        os.dup2(scratch.fileno(), 2)
        try:
            yield
        except Exception as exc:
            scratch.seek(0)
            tail = scratch.read()[-1500:].strip()
            raise LatencyError(f"{exc}{'; converter output: ' + tail if tail else ''}") from exc
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def _deployed_parts(profile: DeviceProfile, archs: Sequence[Any], resolution: int,
                    progress: Callable[[], None]) -> list[Part]:
    """The network parts ``profile`` times, with their deployable files converted now (cached)."""
    parts = [network_part(a, resolution) for a in archs]
    fmt = deployed_format(profile) if _REGISTRY[profile.runtime].local else None
    for part, arch in zip(parts, archs, strict=True):
        if fmt is not None:
            try:
                with _converter_output_aside():
                    path = network_artifact(part.spec, fmt[0], int8=fmt[1], batch=profile.batch,
                                            calibration=calibration_spec(profile.options))
            except Exception as exc:  # converters raise their own untyped errors
                raise LatencyError(f"network {arch.hash} cannot be converted for {profile.name} "
                                   f"({fmt[0]}{' int8' if fmt[1] else ''}): {exc}") from exc
            if fmt == ("onnx", False):
                part.spec["onnx_path"] = str(path)
        progress()
    return parts


def compare_devices(devices: Sequence[str | DeviceProfile], space: str | SearchSpace,
                    resolution: int | None = None, *, families: list[str] | None = None,
                    all_options: bool = False, rounds: int = 2, progress: Progress | None = None) -> Comparison:
    """Time the baseline and variants of ``space`` on every device, ``rounds`` times (module docstring)."""
    from nas.spaces import load_space

    if rounds < 1:
        raise LatencyError("rounds: must be at least 1")
    sp = load_space(space) if isinstance(space, str) else space
    res = resolution or sp.definition.resolution[0]
    profiles = [load_profile(d) for d in devices]
    if len({p.name for p in profiles}) != len(profiles):
        raise LatencyError("devices: a device is named twice")
    nets = variants(sp, res, families, all_options)
    for p in profiles:
        for v in nets:
            check_runnable(v.arch, p, res)
    report = progress or (lambda what, done, total: None)
    converted = [0]

    def one_converted() -> None:
        converted[0] += 1
        report("converting networks", converted[0], len(nets) * len(profiles))

    stats: dict[str, list[list[LatencyStats]]] = {p.name: [[] for _ in nets] for p in profiles}
    parts = {p.name: _deployed_parts(p, [v.arch for v in nets], res, one_converted) for p in profiles}
    timed = 0
    for r in range(rounds):
        for p in profiles if r % 2 == 0 else profiles[::-1]:
            quick = p.timing.model_copy(update={"wait_for_quiet": 0.0})
            run = run_parts(p.model_copy(update={"speed_canary": False}), parts[p.name], timing=quick,
                            group=len(nets))
            for i, (v, result) in enumerate(zip(nets, run.results, strict=True)):
                if isinstance(result, str):
                    raise LatencyError(f"{v.label} ({v.arch.hash}) cannot run on {p.name}: {result}")
                stats[p.name][i].append(result)
            timed += 1
            report("timing (device rounds)", timed, rounds * len(profiles))
    cells = {name: [Cell(s, [x.median_ms / b.median_ms for x, b in zip(s, per[0], strict=True)]) for s in per]
             for name, per in stats.items()}
    return Comparison(sp.name, res, [p.name for p in profiles], rounds, nets, cells)
