"""How well does the lookup-table predictor match on-device measurement? One command, prints a table.

    flock /tmp/nas-cpu.lock python benchmarks/latency_predictor.py            # full: 4 spaces x 2 resolutions
    python benchmarks/latency_predictor.py --spaces mobilenetv3-small --n 10 --resolutions 224
    python benchmarks/latency_predictor.py --render runs/lat-*.json          # table of earlier --json runs
    python benchmarks/latency_predictor.py --rescore runs/lat.json --database URL  # new calibration, same runs

Per space and resolution: build (or reuse) the table and its calibration, sample ``--n`` architectures
with seeds 0..n-1 (``--first-seed`` moves them; calibration networks use seeds from 1,000,000, so they
are disjoint), measure each network in two separate fresh processes, predict it, and report the share
of predictions within +-10% and +-5% of the first measurement, Kendall's tau, the mean absolute error,
and the run-to-run spread between the two measurements. Every figure is given twice: scaled by the speed canary
(``nas.latency._canary``, what the product stores) and unscaled (the raw clock of the same runs).
``--table lazy`` times only the parts those networks use (same entries,
same timing, much faster for the ShuffleNet space's ~72,000 parts).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from scipy.stats import kendalltau

from nas.export import export_onnx
from nas.latency import (
    LatencyPredictor,
    build_table,
    calibrate,
    calibration_networks,
    ensure_entries,
    measure_many,
)
from nas.latency._fingerprint import METHOD, hardware_info
from nas.latency._measure import resolve_url
from nas.spaces import load_space

SPACES = ["mobilenetv3-large", "mobilenetv3-small", "mobilenetv2", "shufflenet"]


def _progress(label: str):  # type: ignore[no-untyped-def]
    last = [0.0]

    def report(what: str, done: int, total: int) -> None:
        now = time.time()
        if now - last[0] > 20 or done == total:
            last[0] = now
            print(f"  [{label}] {what}: {done}/{total}", file=sys.stderr, flush=True)

    return report


def run_one(device: str, space_name: str, resolution: int, n: int, calibration: int, mode: str,
            url: str, workdir: Path, tables: Path | None, first_seed: int = 0) -> dict[str, Any]:
    space = load_space(space_name)
    label = f"{space_name}@{resolution}"
    archs = [space.sample(seed=first_seed + i).with_(resolution=resolution) for i in range(n)]
    start = time.perf_counter()
    if mode == "full":
        report = build_table(device, space, resolution, database_url=url, calibration_networks=calibration,
                             output=tables / f"{device}-{space_name}-r{resolution}.json" if tables else None,
                             progress=_progress(label))
        table_s, entries = report.seconds, report.entries
    else:
        cal_archs = calibration_networks(space, resolution, calibration)
        entries = ensure_entries(archs + cal_archs, device, resolution, database_url=url)
        calibrate(device, space, resolution, networks=calibration, database_url=url)
        table_s = time.perf_counter() - start
    print(f"  [{label}] table ready in {table_s:.0f} s ({entries} parts)", file=sys.stderr, flush=True)
    paths = [str(export_onnx(a, workdir / f"{space_name}-{resolution}-{i}.onnx")) for i, a in enumerate(archs)]
    first = measure_many(archs, device, resolution, database_url=url, use_cache=False, onnx_paths=paths,
                         progress=lambda d, t: _progress(label)("measure 1", d, t))
    second = measure_many(archs, device, resolution, database_url=url, use_cache=False, onnx_paths=paths,
                          progress=lambda d, t: _progress(label)("measure 2", d, t))
    predictor = LatencyPredictor.from_database(device, database_url=url)
    t0 = time.perf_counter()
    predicted = [predictor.predict(a) for a in archs]
    predict_us = (time.perf_counter() - t0) / n * 1e6
    # The same figures without the speed canary's scaling (raw clock) come from the same runs.
    raw1 = [m.conditions.get("raw_median_ms") or m.stats.median_ms for m in first]
    raw2 = [m.conditions.get("raw_median_ms") or m.stats.median_ms for m in second]
    factors = [m.conditions.get("speed_factor", 1.0) for m in first + second]
    return {
        "space": space_name, "resolution": resolution, "n": n, "first_seed": first_seed, "mode": mode,
        **scores(predicted, [m.stats.median_ms for m in first], [m.stats.median_ms for m in second], raw1, raw2),
        "speed_factor_range": [min(factors), max(factors)], "predict_us": predict_us,
        "table_seconds": table_s, "table_parts": entries,
        "calibration": _calibration(predictor, space_name, resolution),
        "fingerprint": predictor.fingerprint, "cpu_model": hardware_info()["cpu_model"], "method": METHOD,
        "other_load": statistics.fmean(m.conditions.get("load", {}).get("other_cpus", 0.0) for m in first),
        "networks": [[a.hash, p, m1.stats.median_ms, m2.stats.median_ms, r1, r2]
                     for a, p, m1, m2, r1, r2 in zip(archs, predicted, first, second, raw1, raw2, strict=True)],
    }


def scores(predicted: list[float], measured: list[float], second: list[float], raw1: list[float],
           raw2: list[float]) -> dict[str, Any]:
    """Prediction error against the first measurement, and run-to-run spread, scaled and raw."""
    n = len(predicted)
    rel = [p / m - 1 for p, m in zip(predicted, measured, strict=True)]
    rerun = [abs(b / a - 1) for a, b in zip(measured, second, strict=True)]
    raw_rel = [p / m - 1 for p, m in zip(predicted, raw1, strict=True)]
    raw_rerun = [abs(b / a - 1) for a, b in zip(raw1, raw2, strict=True)]
    return {
        "within_10": sum(abs(r) <= 0.10 for r in rel) / n, "within_5": sum(abs(r) <= 0.05 for r in rel) / n,
        "kendall_tau": float(kendalltau(predicted, measured).statistic),
        "mae_ms": statistics.fmean(abs(p - m) for p, m in zip(predicted, measured, strict=True)),
        "mape": statistics.fmean(abs(r) for r in rel), "worst": max(rel, key=abs),
        "rerun_median": statistics.median(rerun), "rerun_p95": sorted(rerun)[int(0.95 * (n - 1))],
        "rerun_within_3": sum(r <= 0.03 for r in rerun) / n,
        "raw_within_10": sum(abs(r) <= 0.10 for r in raw_rel) / n,
        "raw_kendall_tau": float(kendalltau(predicted, raw1).statistic),
        "raw_rerun_median": statistics.median(raw_rerun),
        "latency_range_ms": [min(measured), max(measured)],
    }


def _calibration(predictor: LatencyPredictor, space: str, resolution: int) -> dict[str, Any]:
    cal = predictor.calibration_for(space, resolution)
    return {"model": cal.model, "slope": cal.slope, "intercept_ms": cal.intercept_ms,
            "ms_per_mparam": cal.ms_per_mparam, "slope_per_mparam": cal.slope_per_mparam,
            "networks": len(cal.points)}


def rescore(row: dict[str, Any], device: str, url: str) -> dict[str, Any]:
    """``row`` again with the calibration refitted by the current code on the same calibration networks
    (their measurements come from the database's cache) and the same measured networks: what a change
    of calibration model does, without measuring anything again."""
    space, res = load_space(row["space"]), row["resolution"]
    first = row.get("first_seed", 0)
    archs = [space.sample(seed=first + i).with_(resolution=res) for i in range(row["n"])]
    if [a.hash for a in archs] != [net[0] for net in row["networks"]]:
        raise SystemExit(f"{row['space']}@{res}: the space samples other networks than this row measured")
    calibrate(device, space, res, networks=row["calibration"]["networks"], database_url=url)
    predictor = LatencyPredictor.from_database(device, database_url=url)
    if predictor.fingerprint != row.get("fingerprint", predictor.fingerprint):
        raise SystemExit(f"{row['space']}@{res}: measured on fingerprint {row['fingerprint']}, "
                         f"this database is {predictor.fingerprint}")
    predicted = [predictor.predict(a) for a in archs]
    m1, m2, r1, r2 = ([net[i] for net in row["networks"]] for i in (2, 3, 4, 5))
    return {**row, **scores(predicted, m1, m2, r1, r2), "calibration": _calibration(predictor, row["space"], res),
            "rescored": True,
            "networks": [[net[0], p, *net[2:]] for net, p in zip(row["networks"], predicted, strict=True)]}


def _unscaled(r: dict[str, Any]) -> str:
    if "raw_within_10" not in r:
        return "-"
    return f"{r['raw_within_10']:.0%} / {r['raw_kendall_tau']:.3f} / {r['raw_rerun_median']:.1%}"


def _factors(r: dict[str, Any]) -> str:
    lo, hi = r.get("speed_factor_range", [1.0, 1.0])
    return f"{lo:.3f}-{hi:.3f}"


def render(rows: list[dict[str, Any]]) -> str:
    head = ("| space | res | n | cal | within +-10% | within +-5% | Kendall tau | MAE ms (MAPE) | latency range ms "
            "| rerun diff median / p95 | rerun <=3% | unscaled: within +-10% / tau / rerun median "
            "| speed factors | predict us | table parts / s (mode) |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        lo, hi = r["latency_range_ms"]
        lines.append(
            f"| {r['space']} | {r['resolution']} | {r['n']} | {r['calibration']['networks']} "
            f"| {r['within_10']:.0%} | {r['within_5']:.0%} "
            f"| {r['kendall_tau']:.3f} | {r['mae_ms']:.3f} ({r['mape']:.1%}) | {lo:.2f}-{hi:.2f} "
            f"| {r['rerun_median']:.1%} / {r['rerun_p95']:.1%} | {r['rerun_within_3']:.0%} "
            f"| {_unscaled(r)} | {_factors(r)} | {r['predict_us']:.0f} "
            f"| {r['table_parts']} / {r['table_seconds']:.0f} ({r['mode']}) |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu-ort-1t")
    ap.add_argument("--spaces", default=",".join(SPACES))
    ap.add_argument("--resolutions", default="224,128")
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--calibrate", type=int, default=24, help="calibration networks per space and resolution")
    ap.add_argument("--first-seed", type=int, default=0,
                    help="sample seeds first-seed..first-seed+n-1 (another set of test networks)")
    ap.add_argument("--table", choices=["full", "lazy"], default="full")
    ap.add_argument("--lazy", default="", help="spaces timed lazily whatever --table says (comma-separated)")
    ap.add_argument("--database", default=None, help="SQLAlchemy URL (default: the configured database)")
    ap.add_argument("--json", type=Path, default=None, help="also write the rows as JSON here")
    ap.add_argument("--tables", type=Path, default=None, help="export table files here (default: NAS_HOME/latency)")
    ap.add_argument("--rescore", type=Path, default=None,
                    help="refit the calibration of an earlier --json run's rows and score them again (no new "
                         "measurements; needs that run's --database)")
    ap.add_argument("--render", type=Path, nargs="+", default=None,
                    help="only print the table from earlier --json outputs (runs split to share the CPU)")
    args = ap.parse_args()
    if args.render:
        print(render([row for path in args.render for row in json.loads(path.read_text())]))
        return
    url = resolve_url(args.database)
    if args.rescore:
        rows = [rescore(row, args.device, url) for row in json.loads(args.rescore.read_text())]
        if args.json:
            args.json.write_text(json.dumps(rows, indent=1))
        print(render(rows))
        return
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for space in args.spaces.split(","):
            for res in (int(r) for r in args.resolutions.split(",")):
                mode = "lazy" if space in args.lazy.split(",") else args.table
                rows.append(run_one(args.device, space, res, args.n, args.calibrate, mode, url, Path(tmp), args.tables,
                                    args.first_seed))
                print(render(rows[-1:]).splitlines()[-1], file=sys.stderr, flush=True)
                if args.json:
                    args.json.write_text(json.dumps(rows, indent=1))
    print(render(rows))


if __name__ == "__main__":
    main()
