"""A device's latency predictor checked as a user would (``nas latency validate``): fresh networks of a space,
predicted, then measured two independent ways, and the agreement in the figures the targets are set in.

Fresh: sampled from the space, none of them a calibration network of the table. The table's missing
entries (and, from an empty database, its calibration) are built first and the time that took is part of
the report. The two references:

- ``plain``: a plain timing loop of the deployed file (``_plain``: median of 200 runs after warm-up, the
  profile's threads, pinned to its CPUs), what a user's benchmark script reports; the files are timed in 5
  shuffled rounds of 40 runs, so host drift touches them alike (one loop per file did not repeat:
  docs/latency.md); each row also has ``plain_quiet_ms``, the project's quiet-run median of the same runs;
- ``project``: the project's own measurement (``measure_many``: the profile's statistic over a fresh pinned
  process's runs, scaled by the speed canary), what a search stores. Its unscaled value is in each row as
  ``project_raw_ms``, the (scaled) median of all its runs, quiet or not, as ``project_all_ms``, and of its quiet runs as
  ``project_quiet_ms`` (the profile's ``timing.statistic`` says which of the two ``project_ms`` is);
- ``plain_at_reference_speed``: the plain loop divided by ``host.speed.ratio``, its own timing of the speed
  canary's network (in the same rounds) over the reference canary the project scales to: the plain loop
  without the host's drift since the predictor was fitted (one factor for every network);
- ``calibration_measurements``: the networks the predictor was fitted on, with both statistics, so a fit
  on either can be redone offline (``benchmarks/refit_statistic.py``).

Per reference: the share within +-5% and +-10%, Kendall's tau, the mean absolute percentage error, the
median signed error (bias) and the worst networks.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nas.arch import load_architecture, to_string
from nas.errors import LatencyError
from nas.latency._artifacts import calibration_spec, deployed_format, network_artifact
from nas.latency._calibration import ANY_SPACE
from nas.latency._canary import CANARY_REFERENCE, CANARY_RESOLUTION
from nas.latency._lut import CALIBRATION_NETWORKS, calibrate, ensure_entries
from nas.latency._lut import calibration_networks as table_networks
from nas.latency._measure import measure_many, resolve_url
from nas.latency._parts import network_part
from nas.latency._predict import LatencyPredictor
from nas.latency._predictors import build_predictor, ensure_predictor, load_predictor
from nas.latency._profiles import DeviceProfile, load_profile
from nas.latency._runtimes import _REGISTRY

if TYPE_CHECKING:
    from nas.arch import Architecture
    from nas.spaces import SearchSpace

Progress = Callable[[str, int, int], None]
PLAIN_RUNS = 200
PLAIN_ROUNDS = 5
WORST = 5
SAMPLES_PER_NETWORK = 20  # bound on draws when the space is small or overlaps the calibration networks
DISTURBED_GAP = 1.05  # plain loop: all-runs median over quiet-run median above which the host was disturbed
AGREEMENT = 0.90  # share of networks whose two references agree within +-10%, below which they cannot judge


def fresh_networks(space: SearchSpace, resolution: int, n: int, seed: int, exclude: set[str]) -> list[Architecture]:
    """``n`` distinct members of ``space`` sampled from ``seed``, none of whose hash is in ``exclude``."""
    rng = random.Random(seed)
    found: dict[str, Architecture] = {}
    for _ in range(n * SAMPLES_PER_NETWORK):
        arch = space.sample(rng=rng).with_(resolution=resolution)
        if arch.hash not in exclude:
            found.setdefault(arch.hash, arch)
        if len(found) == n:
            return list(found.values())
    raise LatencyError(f"n: only {len(found)} distinct networks of {space.name} outside the calibration "
                       f"set in {n * SAMPLES_PER_NETWORK} draws")


def accuracy(predicted: Sequence[float], measured: Sequence[float], hashes: Sequence[str]) -> dict[str, Any]:
    """The agreement figures of ``predicted`` against one reference ``measured`` (module docstring)."""
    from scipy.stats import kendalltau

    errors = [p / m - 1 for p, m in zip(predicted, measured, strict=True)]
    n = len(errors)
    tau = float(kendalltau(predicted, measured).statistic) if n > 1 else float("nan")
    worst = sorted(range(n), key=lambda i: -abs(errors[i]))[:WORST]
    return {"n": n, "within_5": sum(abs(e) <= 0.05 for e in errors) / n,
            "within_10": sum(abs(e) <= 0.10 for e in errors) / n, "kendall_tau": tau,
            "mape": 100 * statistics.fmean(abs(e) for e in errors), "bias": statistics.median(errors),
            "worst": [{"arch_hash": hashes[i], "predicted_ms": predicted[i], "measured_ms": measured[i],
                       "error": errors[i]} for i in worst]}


def host_noise(plain: Sequence[float], plain_quiet: Sequence[float | None], project: Sequence[float]
               ) -> dict[str, Any]:
    """Whether the run can judge the predictor at all. ``all_over_quiet``: the median over networks of the
    plain loop's all-runs median over its quiet-run median (1.01-1.03 on the quiet VMs of docs/latency.md,
    1.13-1.20 on disturbed runs); ``references_within_10``: the share of networks whose two references (the
    project's measurement, the plain loop) agree within +-10%. ``disturbed`` when the first exceeds
    ``DISTURBED_GAP`` or the second falls below ``AGREEMENT``: the figures then say more about the host than
    about the predictor."""
    gaps = [a / q for a, q in zip(plain, plain_quiet, strict=True) if q]
    agree = sum(abs(m / a - 1) <= 0.10 for m, a in zip(project, plain, strict=True)) / len(plain)
    gap = statistics.median(gaps) if gaps else None
    return {"all_over_quiet": gap, "references_within_10": agree,
            "disturbed": (gap is not None and gap > DISTURBED_GAP) or agree < AGREEMENT}


def host_speed(plain_canary_ms: float, reference_ms: float | None) -> dict[str, Any] | None:
    """The plain loop's canary against the project's reference canary (the speed its measurements are scaled
    to): ``ratio`` above 1 when the host ran slower during the plain loop. Every plain median carries that
    drift, which no predictor can know; ``plain_at_reference_speed`` divides it out (one factor for all
    networks: the ranks are the plain loop's own)."""
    if reference_ms is None or reference_ms <= 0:
        return None
    return {"plain_canary_ms": plain_canary_ms, "reference_canary_ms": reference_ms,
            "ratio": plain_canary_ms / reference_ms}


def _canary_reference(profile: DeviceProfile, url: str) -> float | None:
    from nas.latency import _cache
    from nas.latency._fingerprint import fingerprint

    if not profile.speed_canary:
        return None
    return _cache.stored_canary_reference(url, profile.name, fingerprint(profile))


def plain_medians(profile: DeviceProfile, paths: Sequence[Path], runs: int = PLAIN_RUNS,
                  progress: Callable[[int], None] | None = None, rounds: int = PLAIN_ROUNDS
                  ) -> list[tuple[float, float, float]]:
    """Median ms of ``runs`` plain timed inferences of each file, in one fresh process pinned to the
    profile's CPUs (``python -m nas.latency._plain``, in ``rounds`` interleaved rounds; it holds the CPUs'
    measuring lock per visit of a file), the CPUs' worth of other processes' work meanwhile (a plain
    median has no defence against it), and the quiet-run median of the same runs (the project's statistic)."""
    threads = str(profile.threads)
    env = {**os.environ, "OMP_NUM_THREADS": threads, "PYTHONUNBUFFERED": "1"}
    cpus = ",".join(map(str, profile.pinned_cpus()))
    command = [sys.executable, "-m", "nas.latency._plain", *map(str, paths), "--runs", str(runs),
               "--threads", threads, "--rounds", str(rounds), "--json", *(["--cpus", cpus] if cpus else [])]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    medians: list[tuple[float, float, float]] = []
    for line in proc.stdout:
        if line.startswith("{"):
            msg = json.loads(line)
            lat = msg["latency"]
            medians.append((float(lat["median_ms"]), float(msg["load"]["other_cpus"]), float(lat["quiet_median_ms"])))
            if progress:
                progress(len(medians))
    _, err = proc.communicate()
    if proc.returncode != 0 or len(medians) != len(paths):
        raise LatencyError(f"the plain timing loop for {profile.name} failed (exit {proc.returncode}): "
                           f"{err[-1500:].strip()}")
    return medians


def _hold(artifact: Path, directory: Path) -> Path:
    """A copy of a cached artifact that the cache's pruning cannot remove: the cache keeps its 32 most
    recently used files, and ``--n 50`` converts 50 before the plain loop reads the first one."""
    for path in (artifact.with_suffix(".bin"), artifact) if artifact.suffix == ".xml" else (artifact,):
        shutil.copy2(path, directory / path.name)
    return directory / artifact.name


def _has_fit(predictor: Any, space: SearchSpace, resolution: int) -> bool:
    if isinstance(predictor, LatencyPredictor):
        return any(c.scope == space.name and c.resolution == resolution for c in predictor.calibrations)
    return not predictor.missing(table_networks(space, resolution, 1)[0], resolution)


def _fitted_hashes(predictor: Any, profile: DeviceProfile, space: str, resolution: int, url: str) -> set[str]:
    """Networks the predictor was fitted on, so the validation's networks are new to it: a table's
    calibration networks; for a per-operator fit, every network measured on the device (it uses them all)."""
    if isinstance(predictor, LatencyPredictor):
        return {str(p[0]) for c in predictor.calibrations if c.resolution == resolution
                and c.scope in (space, ANY_SPACE) for p in c.points}
    from nas.latency import _cache
    from nas.latency._fingerprint import fingerprint

    return {_hash(row["architecture"]) for row in _cache.get_measurements(url, profile.name, fingerprint(profile))}


def _hash(architecture: str) -> str:
    from nas.arch import parse_architecture

    return parse_architecture(json.loads(architecture)).hash


def _fit_summary(predictor: Any, space: SearchSpace, resolution: int) -> dict[str, Any]:
    if isinstance(predictor, LatencyPredictor):
        cal = predictor.calibration_for(space.name, resolution)
        return {"model": cal.model, "networks": len(cal.points), "slope": cal.slope}
    found = predictor.fit_for(table_networks(space, resolution, 1)[0], resolution)
    return {"model": "ops", "networks": found.networks, "rms_rel": round(found.rms_rel, 4)}


def validate(profile: str | DeviceProfile, space: str | SearchSpace, resolution: int | None = None, *,
             n: int = 50, seed: int = 0, calibration_networks: int = CALIBRATION_NETWORKS,
             database_url: str | None = None, progress: Progress | None = None) -> dict[str, Any]:
    """Build what the table lacks, then predict and measure ``n`` fresh networks (module docstring)."""
    from nas.spaces import load_space

    if n < 2:
        raise LatencyError("n: at least 2 networks are needed for a rank correlation")
    prof = load_profile(profile)
    sp = load_space(space) if isinstance(space, str) else space
    res = resolution or sp.definition.resolution[0]
    url = resolve_url(database_url)
    report = progress or (lambda what, done, total: None)
    start = time.perf_counter()
    predictor: Any = load_predictor(prof, database_url=url)
    calibrated_now = parts_timed = 0
    if not _has_fit(predictor, sp, res):  # from an empty database: the predictor's own build
        if prof.predictor == "lut":
            parts_timed += ensure_entries(table_networks(sp, res, calibration_networks), prof, res, database_url=url)
            calibrate(prof, sp, res, networks=calibration_networks, database_url=url, progress=progress)
            calibrated_now = calibration_networks
        else:
            calibrated_now = int(build_predictor(prof, sp, res, database_url=url, progress=progress)["networks"])
        predictor = load_predictor(prof, database_url=url)
    archs = fresh_networks(sp, res, n, seed, _fitted_hashes(predictor, prof, sp.name, res, url))
    parts_timed += ensure_predictor(archs, prof, res, database_url=url)
    build_s = time.perf_counter() - start
    predictor = load_predictor(prof, database_url=url)
    predicted = [predictor.predict(a, res) for a in archs]
    measured = measure_many(archs, prof, res, database_url=url, use_cache=False,
                            progress=lambda d, t: report("fresh networks", d, t))
    project = [m.stats.median_ms for m in measured]
    raw = [m.conditions.get("raw_median_ms") or m.stats.median_ms for m in measured]
    project_all = [m.conditions.get("all_median_ms") for m in measured]
    project_quiet = [m.conditions.get("quiet_median_ms") for m in measured]
    fmt = deployed_format(prof) if _REGISTRY[prof.runtime].local else None
    plain: list[float] | None = None
    busy: list[float | None] = [None] * len(archs)
    plain_quiet: list[float | None] = [None] * len(archs)
    speed: dict[str, Any] | None = None
    if fmt is not None:
        with tempfile.TemporaryDirectory(prefix="nas-validate-") as held:
            # the speed canary's network in the same rounds: how fast the host is now, against the speed
            # the project's measurements are scaled to
            canary = load_architecture(CANARY_REFERENCE).with_(resolution=CANARY_RESOLUTION)
            paths = [_hold(network_artifact(network_part(a, a.resolution if a is canary else res).spec, fmt[0],
                                            int8=fmt[1], batch=prof.batch, calibration=calibration_spec(prof.options)),
                           Path(held)) for a in [*archs, canary]]
            timed = plain_medians(prof, paths,
                                  progress=lambda d: report("fresh networks, plain loop", d, len(paths)))
        *timed, canary_timed = timed
        plain, busy, plain_quiet = [t[0] for t in timed], [t[1] for t in timed], [t[2] for t in timed]
        speed = host_speed(canary_timed[0], _canary_reference(prof, url))
    hashes = [a.hash for a in archs]
    fitted = _fit_summary(predictor, sp, res)
    return {
        "profile": prof.name, "fingerprint": predictor.fingerprint, "space": sp.name, "resolution": res,
        "n": n, "seed": seed,
        "predictor": prof.predictor,
        "build": {"seconds": round(build_s, 1), "parts_timed": parts_timed, "calibrated_now": calibrated_now,
                  "table_entries": len(predictor) if prof.predictor == "lut" else None},
        "calibration": fitted,
        "references": {
            "plain": accuracy(predicted, plain, hashes) if plain else None,
            "project": accuracy(predicted, project, hashes),
            "plain_at_reference_speed": accuracy(predicted, [p / speed["ratio"] for p in plain], hashes)
            if plain and speed else None,
        },
        "host": {**host_noise(plain, plain_quiet, project), "speed": speed} if plain else None,
        "plain_runs": PLAIN_RUNS if plain else None,
        "plain_rounds": PLAIN_ROUNDS if plain else None,
        "networks": [{"arch_hash": h, "architecture": to_string(archs[i]), "predicted_ms": p,
                      "plain_ms": plain[i] if plain else None,
                      "plain_quiet_ms": plain_quiet[i], "plain_other_cpus": busy[i], "project_ms": project[i],
                      "project_raw_ms": raw[i], "project_all_ms": project_all[i],
                      "project_quiet_ms": project_quiet[i]}
                     for i, (h, p) in enumerate(zip(hashes, predicted, strict=True))],
        "calibration_measurements": _calibration_measurements(prof, url, res, set(hashes)),
        "statistic": prof.timing.statistic,
    }


def _calibration_measurements(profile: DeviceProfile, url: str, resolution: int, held: set[str]
                              ) -> list[dict[str, Any]]:
    """The whole networks measured on the profile before the held-out ones: what its fit was made from."""
    from nas.latency import _cache
    from nas.latency._fingerprint import fingerprint

    rows = _cache.get_measurements(url, profile.name, fingerprint(profile))
    from nas.arch import parse_architecture

    return [{"architecture": to_string(parse_architecture(json.loads(r["architecture"]))), "median_ms": r["median_ms"],
             "all_median_ms": r["all_median_ms"], "quiet_median_ms": r["quiet_median_ms"]}
            for r in rows if r["resolution"] == resolution and _hash(r["architecture"]) not in held]
