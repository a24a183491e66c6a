"""Building a per-device lookup table for a search space: enumerate, time, store, calibrate, export.

Enumeration is exact: it walks the space's decoder (the same repair rules for groups and widths) over
every combination of per-block choices and every input width a block can receive, so the table holds
every block configuration the sampler can produce and nothing else, plus every stem and head. Sizes at
224 (distinct parts): mobilenetv2 ~850, mobilenetv3-small ~2,300, mobilenetv3-large ~3,400,
shufflenet ~72,000 (a stage's input width is one of nine choices there). Entries already in the database
are reused, so an interrupted build resumes. Parts are timed in batches per fresh worker process with
short adaptive repeats (``TABLE_TIMING``).
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nas.arch import Architecture, Block, Head, Stem
from nas.errors import LatencyError
from nas.latency import _cache
from nas.latency._calibration import ANY_SPACE, Calibration, fit_calibration
from nas.latency._fingerprint import fingerprint_info
from nas.latency._measure import check_runnable, measure_many, resolve_url, run_parts_at_speed
from nas.latency._parts import (
    IDENTITY_KEY,
    Part,
    block_part,
    head_part,
    identity_part,
    network_parts,
    part_params,
    stem_out_size,
    stem_part,
)
from nas.latency._predict import LatencyPredictor
from nas.latency._profiles import DeviceProfile, load_profile
from nas.latency._table_file import write_table
from nas.latency._timing import LatencyStats

if TYPE_CHECKING:
    from nas.spaces import SearchSpace

log = logging.getLogger(__name__)

# Calibration networks are picked from samples with these seeds, disjoint from the benchmark's (0..n).
CALIBRATION_SEED = 1_000_000
CHUNK = 480  # parts per worker process: progress is committed after each chunk
# Networks measured end to end per space and resolution to fit the calibration. 12 left the weights term
# unidentified for MobileNetV2 at 128 (84% of held-out networks within +-10%, large ones 11% low); 24 gave
# 100% (benchmarks/latency_predictor.py, README).
CALIBRATION_NETWORKS = 24
PART_GROUP = 24  # parts timed interleaved, so a burst of load hits all of them a little
CANDIDATES_PER_NETWORK = 16  # calibration networks are picked from this many samples each

Progress = Callable[[str, int, int], None]


def _block(space: SearchSpace, choice: tuple[Any, ...], st: Any, cin: int, out: int, first_in_net: bool,
           first_in_stage: bool) -> Block:
    # The decoder's per-block step (with its repairs) is private to SearchSpace; using it keeps the
    # enumeration exact. tests/test_latency_table.py checks sampled networks only use enumerated keys.
    kind, e, k, se, act, g = choice
    choices = {"x.block": kind.value, "x.expansion": e, "x.kernel": k, "x.se": se,
               "x.activation": act.value, "x.groups": g}
    return Block.model_validate(space._decode_block(choices, "x", st, cin, out, first_in_net, first_in_stage))


def enumerate_parts(space: SearchSpace, resolution: int) -> list[Part]:
    """Every distinct stem, block and head the space's decoder can produce at ``resolution``."""
    d = space.definition
    parts: dict[str, Part] = {}

    def add(part: Part) -> None:
        parts.setdefault(part.key, part)

    add(identity_part())
    stems = [Stem(channels=space.scale(d.stem.channels, w), kernel=d.stem.kernel, stride=d.stem.stride,
                  activation=a, pool=d.stem.pool) for w in d.width for a in d.stem.activation]
    for stem in stems:
        add(stem_part(stem, resolution))
    states = {(w, space.scale(d.stem.channels, w)) for w in d.width}  # (width multiplier, channels in)
    size = stem_out_size(stems[0], resolution)
    for s, st in enumerate(d.stages):
        combos = list(itertools.product(st.block, st.expansion, st.kernel, st.se, st.activation, st.groups))
        after = set()
        for (w, cin), c in itertools.product(sorted(states), combos):
            outs = st.channels if isinstance(st.channels, list) else [space.scale(st.channels, w)]
            for out in outs:
                b = _block(space, c, st, cin, out, s == 0, True)
                add(block_part(cin, size, b))
                after.add((w, b.out))
        if st.stride == 2:
            size = (size - 1) // 2 + 1
        if max(st.depth) > 1:
            for (_, cin), c in itertools.product(sorted(after), combos):
                add(block_part(cin, size, _block(space, c, st, cin, cin, False, False)))
        states = after
    hd = d.head
    for w, cin in sorted(states):
        if isinstance(hd.channels, list):
            channels: list[int | None] = list(hd.channels)
        else:
            channels = [space.scale(hd.channels, max(w, hd.channels_min_scale)) if hd.channels else None]
        hidden = space.scale(hd.hidden, w) if hd.hidden else None
        for ch, act in itertools.product(channels, hd.activation):
            head = Head(channels=ch, hidden=hidden, activation=act, dropout=hd.dropout)
            add(head_part(head, cin, size, d.num_classes))
    return list(parts.values())


@dataclass
class TableReport:
    profile: str
    fingerprint: str
    space: str
    resolution: int
    entries: int
    measured: int
    reused: int
    seconds: float
    failed: dict[str, str] = field(default_factory=dict)
    calibration: Calibration | None = None
    file: Path | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"profile": self.profile, "fingerprint": self.fingerprint, "space": self.space,
                "resolution": self.resolution, "entries": self.entries, "measured": self.measured,
                "reused": self.reused, "seconds": round(self.seconds, 1), "failed": self.failed,
                "calibration": self.calibration.to_dict() if self.calibration else None,
                "file": str(self.file) if self.file else None}


def measure_parts(profile: DeviceProfile, parts: list[Part], url: str, *, jobs: int = 1,
                  progress: Progress | None = None) -> dict[str, str]:
    """Time ``parts`` as table entries and store them; returns {key: error} for parts that failed."""
    fp = str(fingerprint_info(profile)["fingerprint"])
    chunks = [parts[i:i + CHUNK] for i in range(0, len(parts), CHUNK)]
    cpu_sets = [profile.pinned_cpus()] if jobs == 1 else _cpu_sets(profile, jobs)
    failed: dict[str, str] = {}
    done = [0]

    def run(chunk_index: int) -> None:
        chunk = chunks[chunk_index]
        cpus = cpu_sets[chunk_index % len(cpu_sets)]
        # Parallel workers would wait for each other to go quiet, and slow each other's canaries.
        timing = profile.table_timing if jobs == 1 else profile.table_timing.model_copy(
            update={"wait_for_quiet": 0, "slow_host_wait": 0})
        run = run_parts_at_speed(profile, chunk, url, fp, timing=timing, cpus=cpus, group=PART_GROUP)
        good: list[tuple[str, LatencyStats]] = []
        for part, (result, _) in zip(chunk, run.normalised(url, profile, fp), strict=True):
            if isinstance(result, str):
                failed[part.key] = result
            else:
                good.append((part.key, result))
        _cache.put_entries(url, profile.name, fp, good,
                           {part.key: part_params(part) for part in chunk if part.key not in failed})
        done[0] += len(chunk)
        if progress:
            progress("parts", done[0], len(parts))

    if jobs == 1:
        for i in range(len(chunks)):
            run(i)
    else:
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            for i in range(0, len(chunks), jobs):
                list(pool.map(run, range(i, min(i + jobs, len(chunks)))))
    if failed:
        log.warning("%d parts failed on %s, e.g. %s", len(failed), profile.name, next(iter(failed.items())))
    return failed


def ensure_entries(archs: list[Architecture], profile: str | DeviceProfile, resolution: int | None = None, *,
                   database_url: str | None = None) -> int:
    """Time the parts of ``archs`` that the table lacks (on demand, e.g. for networks outside the
    sampler's reach such as NetAdapt's shrinks); returns how many were timed."""
    prof = load_profile(profile)
    url = resolve_url(database_url)
    predictor = LatencyPredictor.from_database(prof, database_url=url)
    todo = {p.key: p for a in archs for p in network_parts(a, resolution) if p.key not in predictor}
    if predictor.overhead_ms == 0:
        todo[IDENTITY_KEY] = identity_part()
    failed = measure_parts(prof, list(todo.values()), url) if todo else {}
    if failed:
        key, error = next(iter(failed.items()))
        raise LatencyError(f"{len(failed)} part(s) cannot run on profile {prof.name}; {key}: {error}")
    return len(todo)


def _cpu_sets(profile: DeviceProfile, jobs: int) -> list[list[int]]:
    import os

    allowed = sorted(os.sched_getaffinity(0))
    if len(allowed) < jobs * profile.threads:
        raise LatencyError(f"--jobs {jobs} needs {jobs * profile.threads} CPUs; {len(allowed)} available")
    return [allowed[len(allowed) - (j + 1) * profile.threads:len(allowed) - j * profile.threads]
            for j in range(jobs)]


def calibration_networks(space: SearchSpace, resolution: int, networks: int = CALIBRATION_NETWORKS
                         ) -> list[Architecture]:
    """``networks`` members spanning the space's weight range: of ``CANDIDATES_PER_NETWORK x networks``
    samples, the lightest, the heaviest and evenly spaced ranks between. The calibration's weight terms
    are then fitted over the range predictions are asked for instead of extrapolated: 24 random members
    left test networks beyond the heaviest calibration network (MobileNetV2 8.9 M weights against 6.3 M,
    ShuffleNet 0.3-14.5 M against 1.9-7.0 M), and those were the contention model's misses."""
    from nas.cost import estimate

    pool: dict[str, Architecture] = {}
    for i in range(max(networks, 1) * CANDIDATES_PER_NETWORK):
        arch = space.sample(seed=CALIBRATION_SEED + i).with_(resolution=resolution)
        pool.setdefault(arch.hash, arch)
    ranked = sorted(pool.values(), key=lambda a: (estimate(a).total.params, a.hash))
    if len(ranked) <= networks:
        return ranked
    if networks == 1:
        return [ranked[len(ranked) // 2]]
    return [ranked[round(k * (len(ranked) - 1) / (networks - 1))] for k in range(networks)]


_networks_to_calibrate = calibration_networks  # build_table's parameter of that name is a count


def calibrate(profile: str | DeviceProfile, space: str | SearchSpace, resolution: int, *,
              networks: int = CALIBRATION_NETWORKS,
              database_url: str | None = None, progress: Progress | None = None) -> Calibration:
    """Measure ``networks`` sampled members end to end, fit the space's calibration at this resolution
    (``_calibration``), and refit the all-spaces calibration from every space's points."""
    prof, sp = load_profile(profile), _space(space)
    url = resolve_url(database_url)
    fp = str(fingerprint_info(prof)["fingerprint"])
    archs = calibration_networks(sp, resolution, networks)
    ensure_entries(archs, prof, resolution, database_url=url)
    predictor = LatencyPredictor.from_database(prof, database_url=url)
    measured = measure_many(archs, prof, resolution, database_url=url,
                            progress=(lambda d, n: progress("networks", d, n)) if progress else None)
    points: list[list[Any]] = [[a.hash, predictor.table_sum(a), m.stats.median_ms, predictor.weights_m(a)]
                               for a, m in zip(archs, measured, strict=True)]
    cal = fit_calibration(points, sp.name, resolution, predictor.overhead_ms)
    _store(url, prof.name, fp, cal)
    every = [p for c in _cache.get_calibrations(url, prof.name, fp)
             if c["resolution"] == resolution and c["scope"] != ANY_SPACE for p in c["points"]]
    _store(url, prof.name, fp, fit_calibration(every, ANY_SPACE, resolution, predictor.overhead_ms))
    return cal


def _store(url: str, profile: str, fp: str, cal: Calibration) -> None:
    _cache.put_calibration(url, profile, fp, cal.scope, cal.resolution, slope=cal.slope,
                           intercept_ms=cal.intercept_ms, ms_per_mparam=cal.ms_per_mparam,
                           slope_per_mparam=cal.slope_per_mparam, points=cal.points)


def build_table(profile: str | DeviceProfile, space: str | SearchSpace, resolution: int | None = None, *,
                database_url: str | None = None, calibration_networks: int = CALIBRATION_NETWORKS,
                output: Path | None = None,
                jobs: int = 1, progress: Progress | None = None) -> TableReport:
    """Time every distinct part of ``space`` at ``resolution`` (default: the space's first deployment
    resolution) on ``profile``, calibrate, and export the table as a JSON file."""
    prof, sp = load_profile(profile), _space(space)
    res = resolution or sp.definition.resolution[0]
    url = resolve_url(database_url)
    info = fingerprint_info(prof)
    fp = str(info["fingerprint"])
    check_runnable(sp.sample(seed=0), prof, res)
    start = time.perf_counter()
    parts = enumerate_parts(sp, res)
    have = _cache.get_entries(url, prof.name, fp)
    todo = [p for p in parts if p.key not in have]
    log.info("%s on %s at %d: %d parts, %d to time", sp.name, prof.name, res, len(parts), len(todo))
    if calibration_networks and prof.speed_canary and _cache.stored_canary_reference(url, prof.name, fp) is None:
        # A fresh database: its canary reference (the level of every stored figure) is set by the process
        # that times whole networks, the thing users time, not by one timing small parts, where the same
        # canary ran 3-5% slower (MobileNetV2: 1.324 against 1.255-1.281 ms). The networks are cached,
        # so the calibration below reuses them.
        measure_many(_networks_to_calibrate(sp, res, calibration_networks), prof, res, database_url=url,
                     progress=(lambda d, n: progress("networks", d, n)) if progress else None)
    failed = measure_parts(prof, todo, url, jobs=jobs, progress=progress) if todo else {}
    cal = calibrate(prof, sp, res, networks=calibration_networks, database_url=url,
                    progress=progress) if calibration_networks else None
    seconds = time.perf_counter() - start
    entries = _cache.get_entries(url, prof.name, fp)
    params = _cache.get_params(url, prof.name, fp)
    keys = {p.key for p in parts}
    cals = [c for c in _cache.get_calibrations(url, prof.name, fp) if c["resolution"] == res
            and c["scope"] in (sp.name, ANY_SPACE)]
    path = output or _home() / "latency" / f"{prof.name}-{sp.name}-r{res}-{fp}.json"
    write_table(path, profile=prof.model_dump(mode="json"), hardware=info, space=sp.name, resolution=res,
                entries={k: v for k, v in entries.items() if k in keys}, params=params, calibrations=cals,
                build={"seconds": round(seconds, 1), "parts": len(parts), "timed": len(todo)})
    return TableReport(prof.name, fp, sp.name, res, len(parts), len(todo) - len(failed),
                       len(parts) - len(todo), seconds, failed, cal, path)


def _space(space: str | SearchSpace) -> SearchSpace:
    from nas.spaces import load_space

    return load_space(space) if isinstance(space, str) else space


def _home() -> Path:
    """Where exported tables go by default: ``NAS_HOME``."""
    from nas.settings import get_settings

    return get_settings().home
