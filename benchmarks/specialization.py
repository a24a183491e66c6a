"""Does each device get its own best network? One search per device and seed, then every winner on every device.

    python benchmarks/specialization.py --out benchmarks/results/DATE/specialization \\
        --dataset imagefolder:/data/fashion-mnist --subset 6000 --seeds 0,1,2 --trials 30
    python benchmarks/specialization.py --out DIR --render      # tables and heatmap from DIR/specialization.json

The platform-aware claim (MnasNet, ProxylessNAS, FBNet) is that the best network depends on the device, so
a network searched on the target beats one searched for another device. Per seed, this runs one search per
device (same space, proxy task, budget and strategy; T_d = the latency of ``--reference`` on device d, as
the search measures it), then in one pass measures every winner and every T_d reference on every device,
interleaved round by round so host drift cancels, with a plain timing loop of the deployed artifact
(``nas.latency._plain``: the file each profile times, median of the rounds' medians after warm-up), and
retrains every winner with ``--retrain`` other training seeds. Per device it then asks: is its own winner
within T_d by that measurement, and is it the most accurate (retrained) of all the seed's winners that fit
T_d? Everything is written to ``OUT/specialization.json`` after each step, so an interrupted run resumes.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import os
import random
import statistics
import tempfile
import time
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from search_vs_reference import dataset_spec

from nas.arch import from_string, load_architecture
from nas.data import load_dataset
from nas.latency import load_profile
from nas.latency._artifacts import calibration_spec, deployed_format, network_artifact
from nas.latency._parts import network_part
from nas.latency._plain import load_runner
from nas.proxies import TrainRecipe, train_and_evaluate
from nas.search import parse_spec, run_search

DEVICES = ["cpu-ort-1t", "cpu-litert-1t", "cpu-openvino-1t", "cpu-litert-int8-1t"]


def search_spec(args: argparse.Namespace, device: str, seed: int) -> Any:
    return parse_spec({
        "name": f"specialize-{device}-s{seed}", "space": args.space, "device": device,
        "latency": {"mode": args.latency, "resolution": args.resolution, "target_reference": args.reference},
        "reward": {"kind": "hard"}, "strategy": {"name": args.strategy},
        "budget": {"trials": args.trials}, "seed": seed, "export_onnx": False,
        "proxy": {"dataset": dataset_spec(args.dataset, args.subset).model_dump(mode="json", exclude_none=True),
                  "recipe": {"epochs": args.epochs, "resolution": 32, "seed": seed, "threads": args.threads},
                  "pruner": {"name": "median", "startup_trials": 4, "warmup_epochs": 1}},
    }, local_files=True)


def winner(ctx: Any) -> dict[str, Any]:
    """The search's own result (``best_trial``: the best within T, by its final measurement where the search
    re-measured its top candidates), with that measurement beside the search-time latency."""
    from nas.search._final import verdicts
    from nas.search._results import best_trial
    from nas.search._study import trial_key

    best = best_trial(ctx)
    if best is None:
        raise RuntimeError(f"{ctx.study.study_name}: no completed trial")
    a = best.user_attrs
    done = [t for t in ctx.study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    return {"trial": best.number, "arch": a["arch_string"], "accuracy": a["accuracy"], "latency_ms": a["latency_ms"],
            "latency_source": a.get("latency_source"), "final_check": verdicts(ctx.study).get(trial_key(best) or ""),
            "target_ms": ctx.target_ms, "trials": len(done)}


def one_search(args: argparse.Namespace, device: str, seed: int, db: str) -> dict[str, Any]:
    """One device's search for one seed (in a worker process when ``--jobs`` > 1)."""
    logging.basicConfig(level=logging.WARNING)
    start = time.perf_counter()
    ctx = run_search(search_spec(args, device, seed), storage_url=db, run_dir=args.out / "runs" / f"{device}/s{seed}")
    return {**winner(ctx), "device": device, "seed": seed, "seconds": round(time.perf_counter() - start, 1),
            "load_average_after": os.getloadavg()}


def run_searches(args: argparse.Namespace, state: dict[str, Any], save: Any) -> None:
    """Every (seed, device) search not in the state yet; ``--jobs`` of them at a time in separate processes
    (training is the cost and is device-independent; give ``--db`` a PostgreSQL URL for concurrent writers)."""
    db = args.db or f"sqlite:///{args.out / 'searches.db'}"
    os.environ["NAS_DATABASE_URL"] = db  # tables, T and trials share one cache
    from nas.settings import get_settings

    get_settings.cache_clear()
    todo = [(d, s) for s in args.seed_list for d in args.device_list if f"{d}/s{s}" not in state["searches"]]

    def record(row: dict[str, Any]) -> None:
        key = f"{row['device']}/s{row['seed']}"
        state["searches"][key] = row
        print(f"{key}: {row}", flush=True)
        save()

    if args.jobs <= 1:
        for device, seed in todo:
            record(one_search(args, device, seed, db))
        return
    failed = []
    with ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {pool.submit(one_search, args, d, s, db): f"{d}/s{s}" for d, s in todo}
        for future in as_completed(futures):
            try:
                record(future.result())
            except Exception:  # the others go on and are kept; this one is re-run by the next invocation
                failed.append(futures[future])
                print(f"{futures[future]} failed:\n{traceback.format_exc()}", flush=True)
    if failed:
        raise SystemExit(f"searches failed (run again to retry them): {', '.join(failed)}")


def networks(state: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """Every network of the final pass by name: the reference (T_d on each device) and every winner."""
    nets: dict[str, Any] = {"reference": load_architecture(args.reference).with_(num_classes=10)}
    for key, row in state["searches"].items():
        nets[key] = from_string(row["arch"])
    return {name: arch.with_(resolution=args.resolution) for name, arch in nets.items()}


def final_pass(args: argparse.Namespace, state: dict[str, Any], save: Any) -> None:
    """Every network on every device, interleaved: ``--rounds`` rounds, each a shuffled pass over all pairs
    with ``--runs`` timed runs per pair; a pair's figure is the median of its rounds' medians."""
    nets = networks(state, args)
    runners: dict[tuple[str, str], Any] = {}
    for device in args.device_list:
        profile = load_profile(device)
        fmt = deployed_format(profile)
        if fmt is None:
            raise SystemExit(f"{device}: its runtime times PyTorch modules, not a deployable file")
        for name, arch in nets.items():
            path = network_artifact(network_part(arch).spec, fmt[0], int8=fmt[1],
                                    calibration=calibration_spec(profile.options))
            run, x = load_runner(path, threads=profile.threads)
            for _ in range(args.warmup):
                run(x)
            runners[(name, device)] = (run, x)
    rng = random.Random(0)
    medians: dict[tuple[str, str], list[float]] = {k: [] for k in runners}
    for r in range(args.rounds):
        order = list(runners)
        rng.shuffle(order)
        for key in order:
            run, x = runners[key]
            times = []
            for _ in range(args.runs):
                t0 = time.perf_counter()
                run(x)
                times.append((time.perf_counter() - t0) * 1e3)
            medians[key].append(statistics.median(times))
        print(f"final pass: round {r + 1}/{args.rounds}", flush=True)
    state["latency"] = {f"{n}@{d}": {"median_ms": statistics.median(m), "round_medians_ms": m}
                        for (n, d), m in medians.items()}
    state["final_pass"] = {"rounds": args.rounds, "runs": args.runs, "warmup": args.warmup,
                           "statistic": "median over rounds of (network's round median / T reference's round "
                                        "median), plain loop of the deployed artifact",
                           "load_average": os.getloadavg()}
    save()


def retrained_accuracies(args: argparse.Namespace, arch_string: str, seed: int) -> list[float]:
    """The winner trained again with ``--retrain`` other seeds (as search_vs_reference.retrain)."""
    data = load_dataset(dataset_spec(args.dataset, args.subset))
    recipe = TrainRecipe(epochs=args.epochs, resolution=32, seed=seed, threads=args.threads)
    seeds = [seed * 1000 + 1 + k for k in range(args.retrain)]
    return [train_and_evaluate(from_string(arch_string), data, recipe.model_copy(update={"seed": s})).accuracy
            for s in seeds]


def retrain(args: argparse.Namespace, state: dict[str, Any], save: Any) -> None:
    todo = {key: row for key, row in state["searches"].items() if "retrained" not in row}
    with ProcessPoolExecutor(max(1, args.jobs), mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {pool.submit(retrained_accuracies, args, row["arch"], row["seed"]): key for key, row in todo.items()}
        for future in as_completed(futures):
            key = futures[future]
            state["searches"][key]["retrained"] = future.result()
            print(f"{key}: retrained {state['searches'][key]['retrained']}", flush=True)
            save()


def ratio(lat: dict[str, Any], network: str, device: str) -> float:
    """latency(network) / T_device as the median over rounds of the two round medians' ratio: the host's
    speed swung 1.6-3.1 ms between rounds of one quiet pass (the same file), and a round (about 1.5 s, every
    pair once) is short enough that both sides of a ratio see the same host."""
    ours, ref = lat[f"{network}@{device}"]["round_medians_ms"], lat[f"reference@{device}"]["round_medians_ms"]
    return statistics.median(a / b for a, b in zip(ours, ref, strict=True))


def verdicts(state: dict[str, Any], devices: list[str]) -> list[dict[str, Any]]:
    """Per device and seed: own winner within T_d by the final pass? most accurate (retrained) of the
    seed's winners that fit T_d?"""
    lat = state["latency"]
    out = []
    for seed in sorted({r["seed"] for r in state["searches"].values()}):
        winners = {d: state["searches"].get(f"{d}/s{seed}") for d in devices}
        for d in devices:
            own = winners[d]
            if own is None or f"reference@{d}" not in lat:
                continue
            target = lat[f"reference@{d}"]["median_ms"]
            fits = {w: statistics.fmean(r["retrained"]) for w, r in winners.items()
                    if r and r.get("retrained") and ratio(lat, f"{w}/s{seed}", d) <= 1.0}
            best = max(fits, key=lambda w: fits[w]) if fits else None
            out.append({"device": d, "seed": seed, "target_ms": target,
                        "own_ratio": ratio(lat, f"{d}/s{seed}", d),
                        "own_within": d in fits, "best_fitting": best, "own_best": best == d,
                        "fitting": fits})
    return out


def render(state: dict[str, Any], args: argparse.Namespace, console: Console) -> None:
    devices = args.device_list
    lat = state.get("latency")
    table = Table(title=f"latency(winner on device) / T_device: {state['final_pass']['statistic']}" if lat else
                  "winners as the searches judged them (no final pass yet)")
    table.add_column("winner (searched on / seed)")
    table.add_column("acc (search)", justify="right")
    table.add_column("retrained", justify="right")
    for d in devices:
        table.add_column(d, justify="right")
    for key, row in sorted(state["searches"].items(), key=lambda kv: (kv[1]["seed"], kv[1]["device"])):
        cells = []
        for d in devices:
            if lat and f"{key}@{d}" in lat:
                r = ratio(lat, key, d)
                cells.append(f"[bold]{r:.2f}[/]" if d == row["device"] else f"{r:.2f}")
            else:
                cells.append("-")
        retrained = row.get("retrained")
        table.add_row(key, f"{row['accuracy']:.4f}", f"{statistics.fmean(retrained):.4f}" if retrained else "-", *cells)
    console.print(table)
    if not lat:
        return
    console.print("T_d (reference " + args.reference + "): " +
                  ", ".join(f"{d} {lat[f'reference@{d}']['median_ms']:.3f} ms" for d in devices))
    rows = verdicts(state, devices)
    if not rows or not all(r["fitting"] is not None for r in rows):
        return
    summary = Table(title="per device: does its own winner fit T_d, and is it the most accurate winner that fits?")
    for col in ("device", "own winner within T_d (seeds)", "own winner best that fits (seeds)", "where not"):
        summary.add_column(col)
    for d in devices:
        mine = [r for r in rows if r["device"] == d]
        misses = [f"s{r['seed']}: " + ("own over T " + f"x{r['own_ratio']:.2f}" if not r["own_within"] else
                                      f"{r['best_fitting']} more accurate by "
                                      f"{100 * (r['fitting'][r['best_fitting']] - r['fitting'][d]):.1f} pts")
                  for r in mine if not r["own_best"]]
        summary.add_row(d, f"{sum(r['own_within'] for r in mine)}/{len(mine)}",
                        f"{sum(r['own_best'] for r in mine)}/{len(mine)}", "; ".join(misses) or "-")
    console.print(summary)
    spreads = [abs(a - b) for row in state["searches"].values() if len(row.get("retrained") or []) == 2
               for a, b in [row["retrained"]]]
    if spreads:
        console.print("retraining noise: the two retrainings of one winner differ by "
                      f"{100 * statistics.median(spreads):.1f} pts (median; max {100 * max(spreads):.1f}); "
                      "search accuracy - retrained: "
                      + ", ".join(f"{k} {100 * (r['accuracy'] - statistics.fmean(r['retrained'])):+.1f}"
                                  for k, r in sorted(state["searches"].items()) if r.get("retrained")))
    heatmap(state, devices, args.out / "specialization.png")


def heatmap(state: dict[str, Any], devices: list[str], path: Path) -> None:
    """Rows: winners (searched on / seed); columns: devices; colour: latency / T_device (1 = on budget)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    lat = state["latency"]
    rows = state["searches"]
    keys = sorted(rows, key=lambda k: (rows[k]["seed"], devices.index(rows[k]["device"])))
    grid = [[ratio(lat, k, d) for d in devices] for k in keys]
    fig = Figure(figsize=(1.6 * len(devices) + 2.5, 0.38 * len(keys) + 1.5), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    image = ax.imshow(grid, cmap="RdYlGn_r", vmin=0.7, vmax=1.3, aspect="auto")
    for i, row in enumerate(grid):
        for j, v in enumerate(row):
            own = state["searches"][keys[i]]["device"] == devices[j]
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=8, fontweight="bold" if own else "normal")
    ax.set_xticks(range(len(devices)), devices, rotation=20)
    ax.set_yticks(range(len(keys)), keys)
    ax.set_xlabel("measured on")
    ax.set_ylabel("winner (searched on / seed)")
    fig.colorbar(image, ax=ax, label="latency / T_d")
    fig.savefig(path)
    print(f"heatmap: {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="directory: specialization.json, the heatmap, runs")
    parser.add_argument("--devices", default=",".join(DEVICES))
    parser.add_argument("--space", default="mobilenetv3-small")
    parser.add_argument("--reference", default="mobilenetv3-small-0.75", help="T_d = its latency on device d")
    parser.add_argument("--resolution", type=int, default=224)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--strategy", default="tpe")
    parser.add_argument("--latency", choices=["measured", "predicted"], default="measured",
                        help="how trials are judged during the search (the final pass always measures)")
    parser.add_argument("--dataset", default="digits", help="digits, or KIND:PATH (imagefolder:DIR) read at 32x32")
    parser.add_argument("--subset", type=int, default=None)
    parser.add_argument("--threads", type=int, default=None, help="torch threads for training")
    parser.add_argument("--db", default=None, help="SQLAlchemy URL of the searches (default: OUT/searches.db)")
    parser.add_argument("--retrain", type=int, default=2, help="other training seeds per winner")
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--jobs", type=int, default=1, help="searches (and retrainings) run at once, one process each")
    parser.add_argument("--no-final-pass", action="store_true",
                        help="stop after the searches and retraining (run the timing pass later, on a quiet host)")
    parser.add_argument("--render", action="store_true", help="only print the tables and draw the heatmap")
    args = parser.parse_args()
    args.device_list = args.devices.split(",")
    args.seed_list = [int(s) for s in args.seeds.split(",")]
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "specialization.json"
    state: dict[str, Any] = json.loads(path.read_text()) if path.is_file() else {"searches": {}}
    state["settings"] = {k: v for k, v in vars(args).items() if isinstance(v, (str, int, float, list)) or v is None}

    def save() -> None:
        scratch = Path(tempfile.mkstemp(dir=args.out, suffix=".json")[1])
        scratch.write_text(json.dumps(state, indent=1, default=str))
        os.replace(scratch, path)

    console = Console(width=200)
    if not args.render:
        logging.basicConfig(level=logging.WARNING)
        run_searches(args, state, save)
        retrain(args, state, save)
        if args.no_final_pass:
            return
        final_pass(args, state, save)
    render(state, args, console)


if __name__ == "__main__":
    main()
