"""Each device's predictor from an empty database: build time, and accuracy on held-out networks. One command.

    python benchmarks/device_predictor.py                     # 4 devices x 2 spaces at 224, 100 networks each
    python benchmarks/device_predictor.py --devices cpu-litert-1t --spaces shufflenet --n 20
    python benchmarks/device_predictor.py --approach ops --devices cpu-ort-1t   # another approach on a device
    python benchmarks/device_predictor.py --render results/*.json              # the table of earlier runs

Per device and space: a fresh SQLite database and a fresh artifact cache (nothing reused), then the
device's predictor is built (``nas.latency._predictors``: the approach the profile names, or
``--approach``) and its wall time and CPU seconds (this process and its measuring processes) recorded
with the load average. Then ``--n`` networks sampled with seeds ``--first-seed``.. (disjoint from the
calibration networks) are predicted with the predictor frozen, and measured in groups, each group by the
project (``measure_many``, fresh process, speed canary) and then by a plain timing loop of the same
deployed file (``nas.latency._plain``: median of 200 runs after 20 warm-up, 1 thread, pinned to the
profile's CPU under its lock). Reported: share within +-10% and Kendall tau against each.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

DEVICES = ["cpu-litert-1t", "cpu-litert-int8-1t", "cpu-openvino-1t", "cpu-ort-int8-1t"]
SPACES = ["mobilenetv3-small", "shufflenet"]
GROUP = 5  # held-out networks measured by the project, then plain-timed, group by group


def _cpu_seconds() -> float:
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _progress(label: str):  # type: ignore[no-untyped-def]
    last = [0.0]

    def report(what: str, done: int, total: int) -> None:
        if time.time() - last[0] > 30 or done == total:
            last[0] = time.time()
            print(f"  [{label}] {what}: {done}/{total} ({time.strftime('%H:%M:%S')})", file=sys.stderr, flush=True)

    return report


def plain_median(path: Path, cpus: list[int], runs: int = 200) -> float:
    """The deployed file timed by a plain loop, on the profile's CPUs, holding the measuring lock."""
    from nas.latency._worker import lock_path

    cmd = [sys.executable, "-m", "nas.latency._plain", str(path), "--runs", str(runs), "--json"]
    if cpus:
        cmd = ["taskset", "-c", ",".join(map(str, cpus)), *cmd]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
    with open(lock_path(cpus), "a") as fh:
        import fcntl

        fcntl.flock(fh, fcntl.LOCK_EX)
        out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True).stdout
    line = next(x for x in out.splitlines() if x.startswith("{"))
    return float(json.loads(line)["latency"]["median_ms"])


def _within(pred: list[float], truth: list[float], tol: float) -> float:
    return sum(abs(p / t - 1) <= tol for p, t in zip(pred, truth, strict=True)) / len(truth)


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    from scipy.stats import kendalltau

    pred = [r["predicted_ms"] for r in rows]
    out: dict[str, Any] = {"n": len(rows)}
    for name in ("measured_ms", "plain_ms"):
        if any(r[name] is None for r in rows):
            continue
        truth = [r[name] for r in rows]
        tag = name.removesuffix("_ms")
        out[f"{tag}_within10"] = _within(pred, truth, 0.10)
        out[f"{tag}_within5"] = _within(pred, truth, 0.05)
        out[f"{tag}_tau"] = float(kendalltau(pred, truth).statistic) if len(rows) > 2 else float("nan")
        out[f"{tag}_mape"] = statistics.mean(abs(p / t - 1) for p, t in zip(pred, truth, strict=True))
    if "plain_within10" in out:
        out["plain_over_measured_median"] = statistics.median(r["plain_ms"] / r["measured_ms"] for r in rows)
    out["latency_range_ms"] = [min(r["measured_ms"] for r in rows), max(r["measured_ms"] for r in rows)]
    return out


def run_one(device: str, space_name: str, args: argparse.Namespace) -> dict[str, Any]:
    from nas.latency._artifacts import calibration_spec, deployed_format, network_artifact
    from nas.latency._measure import measure_many
    from nas.latency._parts import network_part
    from nas.latency._predictors import build_predictor, load_predictor
    from nas.latency._profiles import load_profile
    from nas.settings import get_settings
    from nas.spaces import load_space

    label = f"{device}/{space_name}"
    profile = load_profile(device)
    if args.approach:
        profile = profile.model_copy(update={"predictor": args.approach})
    work = args.workdir / f"{device}-{space_name}-{profile.predictor}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    os.environ["NAS_ARTIFACT_CACHE"] = str(work / "artifacts")  # empty: every conversion is counted
    get_settings.cache_clear()
    url = f"sqlite:///{work / 'latency.db'}"
    res = args.resolution
    space = load_space(space_name)

    build: dict[str, Any] = {"load_before": os.getloadavg(), "started": time.strftime("%Y-%m-%dT%H:%M:%S")}
    wall0, cpu0 = time.perf_counter(), _cpu_seconds()
    info = build_predictor(profile, space_name, res, networks=args.networks, database_url=url,
                           progress=_progress(label))
    build.update(wall_s=time.perf_counter() - wall0, cpu_s=_cpu_seconds() - cpu0, load_after=os.getloadavg(),
                 info=info)
    print(f"  [{label}] built in {build['wall_s']:.0f} s wall, {build['cpu_s']:.0f} CPU s", file=sys.stderr, flush=True)

    predictor = load_predictor(profile, database_url=url)  # frozen before any held-out network is measured
    archs = [space.sample(seed=args.first_seed + i).with_(resolution=res) for i in range(args.n)]
    t0 = time.perf_counter()
    predicted = [predictor.predict(a, res) for a in archs]
    predict_us = (time.perf_counter() - t0) / len(archs) * 1e6
    fmt = deployed_format(profile)
    rows: list[dict[str, Any]] = []
    for start in range(0, len(archs), GROUP):
        chunk = archs[start:start + GROUP]
        measured = measure_many(chunk, profile, res, database_url=url, use_cache=False)
        for j, (arch, m) in enumerate(zip(chunk, measured, strict=True)):
            plain = None
            if fmt is not None:
                path = network_artifact(network_part(arch, res).spec, fmt[0], int8=fmt[1], batch=profile.batch,
                                        calibration=calibration_spec(profile.options))
                plain = plain_median(path, profile.pinned_cpus())
            rows.append({"seed": args.first_seed + start + j, "arch_hash": arch.hash,
                         "predicted_ms": predicted[start + j], "measured_ms": m.stats.median_ms,
                         "raw_median_ms": m.conditions.get("raw_median_ms"),
                         "speed_factor": m.conditions.get("speed_factor"), "load": m.conditions.get("load"),
                         "plain_ms": plain, "load_average": os.getloadavg()})
        _progress(label)("held-out", len(rows), len(archs))
        result = assemble(profile, space_name, res, build, predict_us, rows, url, complete=len(rows) == len(archs))
        if args.out:  # after every group: a run stopped early keeps what it measured
            args.out.mkdir(parents=True, exist_ok=True)
            (args.out / f"{device}-{space_name}-r{res}-{profile.predictor}-s{args.first_seed}.json").write_text(
                json.dumps(result, indent=1))
    return result


def assemble(profile: Any, space: str, res: int, build: dict[str, Any], predict_us: float,
             rows: list[dict[str, Any]], url: str, complete: bool) -> dict[str, Any]:
    from nas.latency import _cache
    from nas.latency._fingerprint import fingerprint

    held_out = {r["arch_hash"] for r in rows}
    calibration = [m for m in _cache.get_measurements(url, profile.name, fingerprint(profile))
                   if json.loads(m["architecture"]).get("space") and _hash(m["architecture"]) not in held_out]
    return {"device": profile.name, "space": space, "resolution": res, "approach": profile.predictor,
            "build": build, "predict_us": predict_us, "rows": rows, "summary": summarise(rows), "complete": complete,
            "calibration_measurements": calibration, "uname": os.uname().release, "cpus": os.cpu_count()}


def _hash(architecture: str) -> str:
    from nas.arch import parse_architecture

    return parse_architecture(json.loads(architecture)).hash


def rescore(result: dict[str, Any]) -> dict[str, Any]:
    """The same measurements, predicted by the ``ops`` fit of the current code (``--rescore``)."""
    from nas.arch import parse_architecture
    from nas.latency._pred_ops import feature_names, features, fit
    from nas.latency._profiles import load_profile
    from nas.spaces import load_space

    res, space = result["resolution"], load_space(result["space"])
    points = [(features(parse_architecture(json.loads(m["architecture"])), res), m["median_ms"])
              for m in result["calibration_measurements"] if m["resolution"] == res]
    fitted = fit(space.name, res, points, feature_names(load_profile(result["device"])))
    rows = [{**r, "predicted_ms": fitted.apply(features(space.sample(seed=r["seed"]).with_(resolution=res), res))}
            for r in result["rows"]]
    return {**result, "rows": rows, "summary": summarise(rows), "rescored": True}


COLUMNS = ["device", "space", "approach", "build wall s", "build CPU s", "nets", "load (1 min) at build",
           "n", "+-10% project", "+-10% plain", "tau project", "tau plain", "MAPE project", "plain/project",
           "predict us"]


def row(r: dict[str, Any]) -> list[str]:
    s, b = r["summary"], r["build"]
    return [r["device"], r["space"], r["approach"], f"{b['wall_s']:.0f}", f"{b['cpu_s']:.0f}",
            str(b["info"].get("networks") or b["info"].get("calibration", {}).get("points", "")),
            f"{b['load_before'][0]:.1f}-{b['load_after'][0]:.1f}", str(s["n"]),
            f"{s['measured_within10']:.0%}", _fmt(s, "plain_within10", ".0%"), f"{s['measured_tau']:.3f}",
            _fmt(s, "plain_tau", ".3f"), f"{s['measured_mape']:.1%}", _fmt(s, "plain_over_measured_median", ".2f"),
            f"{r['predict_us']:.0f}"]


def _fmt(summary: dict[str, Any], key: str, spec: str) -> str:
    return format(summary[key], spec) if key in summary else "-"


def render(results: list[dict[str, Any]]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(row(r)) + " |" for r in results]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", default=",".join(DEVICES))
    parser.add_argument("--spaces", default=",".join(SPACES))
    parser.add_argument("--resolution", type=int, default=224)
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--networks", type=int, default=None, help="Networks measured to build (approach default).")
    parser.add_argument("--approach", default=None, help="Override the profiles' predictor (lut, ops).")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/nas-device-predictor"))
    parser.add_argument("--out", type=Path, default=None, help="Directory for one JSON per device and space.")
    parser.add_argument("--render", nargs="*", type=Path, help="Print the table of earlier JSON results.")
    parser.add_argument("--rescore", nargs="*", type=Path, help="Refit (ops) on the runs' own calibration "
                        "measurements with the current code and write *-rescored.json beside each.")
    args = parser.parse_args()
    if args.render is not None:
        print(render([json.loads(p.read_text()) for p in args.render]))
        return 0
    if args.rescore is not None:
        done = [rescore(json.loads(p.read_text())) for p in args.rescore]
        for path, result in zip(args.rescore, done, strict=True):
            path.with_name(path.stem + "-rescored.json").write_text(json.dumps(result, indent=1))
        print(render(done))
        return 0
    results = []
    for device in args.devices.split(","):
        for space in args.spaces.split(","):
            result = run_one(device, space, args)
            results.append(result)
            print(render([result]).splitlines()[-1], flush=True)
    print(render(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
