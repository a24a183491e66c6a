"""One-shot specialisation against the per-trial search, for two devices: accuracy at T and compute.

    python benchmarks/oneshot_vs_search.py --out benchmarks/results/DATE/oneshot-vs-search \\
        --dataset imagefolder:/data/fashion-mnist --subset 6000 --devices cpu-ort-1t,cpu-litert-1t \\
        --supernet-epochs 24 --search-seconds 800
    python benchmarks/oneshot_vs_search.py --out DIR --render

Issue 17 asks whether a weight-sharing supernet, trained once, specialises for each further device at a
tenth of the per-trial search's compute or less while finding networks within 1 point of its accuracy at T.
Everything runs through the CLI a user runs, each command a child process whose wall and CPU seconds
(``os.wait4``) are recorded:

1. Per device: its latency table (``nas latency profile``, shared by both methods, reported apart) and
   T_d = the measured latency of ``--reference`` (on a quiet machine, before anything trains).
2. At once, one core each: ``nas supernet train`` (core A) and, one after the other, ``nas run`` of a
   per-trial search for each device with ``budget.seconds = --search-seconds`` (core B), both with one
   torch thread. Each search judges candidates with the same table and T_d as the specialisation.
3. ``nas supernet specialize`` for each device in turn (the first fits and caches the accuracy predictor;
   the next is what "one more device" costs).
4. Every winner trained again with ``--retrain-seeds`` (same recipe for all, ``--retrain-epochs``).
5. One interleaved pass of plain timing loops of the deployed files: every winner and the reference on
   every device (``specialization.final_pass``), so "within T" is judged by the same ruler for both.

State is written after each step to ``OUT/oneshot_vs_search.json``; a rerun resumes.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console
from rich.table import Table
from search_vs_reference import dataset_spec
from specialization import final_pass, ratio

NAS = str(Path(__file__).resolve().parents[1] / ".venv" / "bin" / "nas")


def run_child(cmd: list[str], env: dict[str, str], log: Path) -> dict[str, Any]:
    """Run one CLI command; its stdout, wall and CPU seconds (user + system of it and its children)."""
    start = time.perf_counter()
    with log.open("w") as err:
        child = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=err, text=True)
        out_chunks: list[str] = []
        reader = threading.Thread(target=lambda: out_chunks.append(child.stdout.read() if child.stdout else ""))
        reader.start()
        _, status, usage = os.wait4(child.pid, 0)
        reader.join()
        child.returncode = os.waitstatus_to_exitcode(status)
    return {"cmd": " ".join(cmd), "rc": child.returncode, "stdout": "".join(out_chunks),
            "wall_s": round(time.perf_counter() - start, 1), "cpu_s": round(usage.ru_utime + usage.ru_stime, 1)}


def environment(args: argparse.Namespace) -> dict[str, str]:
    return {**os.environ, "NAS_HOME": str(args.out / "home"), "NAS_DATABASE_URL": args.db,
            "NAS_ARTIFACT_CACHE": str(args.out / "home" / "artifacts"), "OMP_NUM_THREADS": "1"}


def adopt(env: dict[str, str]) -> None:
    """Measure in this process against the same database and artifact cache as the CLI children."""
    os.environ.update({k: env[k] for k in ("NAS_HOME", "NAS_DATABASE_URL", "NAS_ARTIFACT_CACHE")})


def prepare(args: argparse.Namespace, state: dict[str, Any], save: Any) -> None:
    """Tables and T_d, on a quiet machine."""
    from nas.arch import load_architecture
    from nas.latency import measure_many

    env = environment(args)
    for device in args.device_list:
        if device in state["tables"]:
            continue
        run = run_child([NAS, "latency", "profile", "--device", device, "--space", args.space,
                         "--resolution", str(args.resolution), "--json"], env,
                        args.out / "logs" / f"table-{device}.log")
        if run["rc"] != 0:
            raise SystemExit(f"table for {device} failed; see {args.out / 'logs'}")
        state["tables"][device] = {k: v for k, v in run.items() if k != "stdout"}
        save()
    adopt(env)
    reference = load_architecture(args.reference).with_(num_classes=10, resolution=args.resolution)
    for device in args.device_list:
        if device not in state["targets"]:
            [m] = measure_many([reference], device, database_url=args.db, use_cache=False)
            state["targets"][device] = m.stats.to_dict()
            print(f"T on {device}: {m.stats.median_ms:.3f} ms", flush=True)
            save()


def supernet_spec(args: argparse.Namespace) -> dict[str, Any]:
    return {"name": "oneshot-vs-search", "space": args.space,
            "dataset": dataset_spec(args.dataset, args.subset).model_dump(mode="json", exclude_none=True),
            "recipe": {"epochs": args.supernet_epochs, "batch_size": 64, "lr": 0.05, "resolution": 32,
                       "warmup_epochs": 1, "threads": 1},
            "sandwich": {"random": 4, "rule": "uniform"}, "largest_epochs": 3,
            "group_weights": "shared", "group_distill": 1.0}


def search_spec(args: argparse.Namespace, device: str, target_ms: float) -> dict[str, Any]:
    return {"name": f"pertrial-{device}", "space": args.space, "device": device,
            "latency": {"mode": "predicted", "resolution": args.resolution, "target_ms": target_ms},
            "reward": {"kind": "hard"}, "strategy": {"name": "tpe"},
            "budget": {"trials": 10_000, "seconds": args.search_seconds}, "seed": 0, "export_onnx": False,
            "proxy": {"dataset": dataset_spec(args.dataset, args.subset).model_dump(mode="json", exclude_none=True),
                      "recipe": {"epochs": args.epochs, "resolution": 32, "seed": 0, "threads": 1},
                      "pruner": {"name": "median", "startup_trials": 4, "warmup_epochs": 1}}}


def search_summary(args: argparse.Namespace, device: str) -> dict[str, Any]:
    """The finished search's result as the product reports it (best within T), and how many trials it ran."""
    import optuna

    from nas.arch import Architecture, to_string

    study = optuna.load_study(study_name=f"pertrial-{device}", storage=args.db)
    trials = study.get_trials(deepcopy=False)
    done = [t for t in trials if t.state.name == "COMPLETE"]
    best = json.loads((args.out / "winners" / f"pertrial-{device}.json").read_text())
    arch = Architecture.model_validate(best)
    row = next((t for t in done if t.user_attrs.get("arch_hash") == arch.hash), None)
    return {"arch": to_string(arch), "arch_hash": arch.hash, "trials_complete": len(done), "trials": len(trials),
            "accuracy": row.user_attrs.get("accuracy") if row else None,
            "latency_ms": row.user_attrs.get("latency_ms") if row else None}


def parallel_phase(args: argparse.Namespace, state: dict[str, Any], save: Any) -> None:
    env = environment(args)
    (args.out / "winners").mkdir(exist_ok=True)
    lock = threading.Lock()

    def supernet() -> None:
        if "supernet" in state:
            return
        path = args.out / "supernet.yaml"
        path.write_text(yaml.safe_dump(supernet_spec(args), sort_keys=False))
        run = run_child([NAS, "supernet", "train", str(path), "-q"], env, args.out / "logs" / "supernet.log")
        with lock:
            state["supernet"] = {k: v for k, v in run.items() if k != "stdout"}
            save()

    def searches() -> None:
        for device in args.device_list:
            key = f"pertrial:{device}"
            if key in state["winners"]:
                continue
            path = args.out / f"pertrial-{device}.yaml"
            path.write_text(yaml.safe_dump(search_spec(args, device, state["targets"][device]["median_ms"]),
                                           sort_keys=False))
            run = run_child([NAS, "run", str(path), "-q"], env, args.out / "logs" / f"pertrial-{device}.log")
            if run["rc"] != 0:
                raise RuntimeError(f"search for {device} failed; see the log")
            (args.out / "winners" / f"pertrial-{device}.json").write_text(run["stdout"])
            with lock:
                state["winners"][key] = {"method": "per-trial", "device": device, **search_summary(args, device),
                                         "compute": {k: v for k, v in run.items() if k != "stdout"}}
                save()

    threads = [threading.Thread(target=f) for f in (supernet, searches)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    missing = [d for d in args.device_list if f"pertrial:{d}" not in state["winners"]]
    if "supernet" not in state or state["supernet"]["rc"] != 0 or missing:
        raise SystemExit(f"parallel phase incomplete (supernet: {state.get('supernet')}, searches missing: {missing})")


def specialise(args: argparse.Namespace, state: dict[str, Any], save: Any) -> None:
    from nas.arch import Architecture, to_string

    env = environment(args)
    for device in args.device_list:
        key = f"oneshot:{device}"
        if key in state["winners"]:
            continue
        out = args.out / "winners" / f"oneshot-{device}.json"
        run = run_child([NAS, "supernet", "specialize", "oneshot-vs-search", "--device", device, "--target-ms",
                         str(state["targets"][device]["median_ms"]), "-o", str(out), "-q"], env,
                        args.out / "logs" / f"specialize-{device}.log")
        result = json.loads(run["stdout"]) if run["stdout"].strip() else {}
        if run["rc"] != 0 or not result.get("winner"):
            raise SystemExit(f"specialisation for {device} found no winner; see {args.out / 'logs'}")
        arch = Architecture.model_validate(result["winner_document"])
        state["winners"][key] = {"method": "one-shot", "device": device, "arch": to_string(arch),
                                 "arch_hash": arch.hash, "accuracy": result["winner"]["oneshot_accuracy"],
                                 "latency_ms": result["winner"]["measured"]["median_ms"],
                                 "phase_seconds": result["phase_seconds"], "predictor": result["predictor"],
                                 "compute": {k: v for k, v in run.items() if k != "stdout"}}
        save()


def retrained(args: argparse.Namespace, arch_string: str, seed: int) -> float:
    from nas.arch import from_string
    from nas.data import load_dataset
    from nas.proxies import TrainRecipe, train_and_evaluate

    data = load_dataset(dataset_spec(args.dataset, args.subset))
    recipe = TrainRecipe(epochs=args.retrain_epochs, resolution=32, seed=seed, threads=1)
    return train_and_evaluate(from_string(arch_string), data, recipe).accuracy


def retrain(args: argparse.Namespace, state: dict[str, Any], save: Any) -> None:
    todo = [(key, seed) for key, row in state["winners"].items() for seed in args.retrain_seeds
            if str(seed) not in row.setdefault("retrained", {})]
    with ProcessPoolExecutor(args.jobs, mp_context=get_context("spawn")) as pool:
        futures = {pool.submit(retrained, args, state["winners"][k]["arch"], s): (k, s) for k, s in todo}
        for future in as_completed(futures):
            key, seed = futures[future]
            state["winners"][key]["retrained"][str(seed)] = future.result()
            print(f"{key} seed {seed}: {future.result():.4f}", flush=True)
            save()


def timing_pass(args: argparse.Namespace, state: dict[str, Any], save: Any) -> None:
    """specialization.final_pass over the winners: its ``searches`` rows are our winners."""
    if "latency" in state:
        return
    env = environment(args)
    adopt(env)
    view: dict[str, Any] = {"searches": {k: {"arch": r["arch"]} for k, r in state["winners"].items()}}
    final_pass(args, view, lambda: None)
    state["latency"], state["final_pass"] = view["latency"], view["final_pass"]
    save()


def render(state: dict[str, Any], args: argparse.Namespace, console: Console) -> None:
    lat = state.get("latency", {})
    table = Table(title="accuracy at T: winners retrained "
                        f"({args.retrain_epochs} epochs, seeds {', '.join(map(str, args.retrain_seeds))})")
    for col in ("device", "method", "winner", "search/one-shot acc", "latency / T (plain loop)",
                "retrained (mean)", "retrained per seed", "wall s", "CPU s", "trials"):
        table.add_column(col, justify="right")
    for key, row in sorted(state["winners"].items(), key=lambda kv: (kv[1]["device"], kv[1]["method"])):
        seeds = row.get("retrained", {})
        r = ratio(lat, key, row["device"]) if f"{key}@{row['device']}" in lat else None
        acc = row.get("accuracy")
        table.add_row(row["device"], row["method"], row["arch_hash"], f"{acc:.4f}" if acc is not None else "-",
                      f"{r:.3f}" if r else "-", f"{statistics.fmean(seeds.values()):.4f}" if seeds else "-",
                      " / ".join(f"{v:.4f}" for v in seeds.values()), f"{row['compute']['wall_s']:.0f}",
                      f"{row['compute']['cpu_s']:.0f}", str(row.get("trials_complete", "-")))
    console.print(table)
    sup = state.get("supernet")
    if sup:
        console.print(f"supernet training ({args.supernet_epochs} epochs): {sup['wall_s']:.0f} s wall, "
                      f"{sup['cpu_s']:.0f} CPU s; tables (shared): "
                      + ", ".join(f"{d} {t['wall_s']:.0f} s" for d, t in state["tables"].items()))
    for s in summary(state, args):
        console.print(s)


def summary(state: dict[str, Any], args: argparse.Namespace) -> list[str]:
    out: list[str] = []
    w, sup = state["winners"], state.get("supernet")
    devices = [d for d in args.device_list if f"oneshot:{d}" in w and f"pertrial:{d}" in w]
    if not sup or not devices:
        return out
    one = sup["cpu_s"] + sum(w[f"oneshot:{d}"]["compute"]["cpu_s"] for d in devices)
    per = sum(w[f"pertrial:{d}"]["compute"]["cpu_s"] for d in devices)
    out.append(f"total CPU seconds for {len(devices)} devices: one-shot {one:.0f} (supernet {sup['cpu_s']:.0f}), "
               f"per-trial {per:.0f}")
    for d in devices[1:]:
        o, p = w[f"oneshot:{d}"]["compute"], w[f"pertrial:{d}"]["compute"]
        out.append(f"one more device ({d}): one-shot {o['wall_s']:.0f} s wall / {o['cpu_s']:.0f} CPU s, per-trial "
                   f"{p['wall_s']:.0f} / {p['cpu_s']:.0f}: {p['cpu_s'] / o['cpu_s']:.1f}x less CPU, "
                   f"{p['wall_s'] / o['wall_s']:.1f}x less wall")
    for d in devices:
        a, b = w[f"oneshot:{d}"].get("retrained"), w[f"pertrial:{d}"].get("retrained")
        if a and b:
            out.append(f"{d}: retrained accuracy one-shot - per-trial = "
                       f"{100 * (statistics.fmean(a.values()) - statistics.fmean(b.values())):+.2f} points")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--devices", default="cpu-ort-1t,cpu-litert-1t")
    parser.add_argument("--space", default="mobilenetv3-small")
    parser.add_argument("--reference", default="mobilenetv3-small-0.75", help="T_d = its measured latency on d")
    parser.add_argument("--resolution", type=int, default=224)
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--subset", type=int)
    parser.add_argument("--epochs", type=int, default=3, help="proxy epochs per trial of the per-trial search")
    parser.add_argument("--supernet-epochs", type=int, default=24)
    parser.add_argument("--search-seconds", type=float, default=800, help="time budget of each per-trial search")
    parser.add_argument("--retrain-epochs", type=int, default=10)
    parser.add_argument("--retrain-seeds", type=int, nargs="+", default=[101, 102])
    parser.add_argument("--db", help="SQLAlchemy URL (default: OUT/home/nas.db)")
    parser.add_argument("--jobs", type=int, default=2, help="retrainings at once")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--render", action="store_true")
    args = parser.parse_args()
    args.device_list = args.devices.split(",")
    args.out = args.out.resolve()
    args.db = args.db or f"sqlite:///{args.out / 'home' / 'nas.db'}"
    (args.out / "logs").mkdir(parents=True, exist_ok=True)
    (args.out / "home").mkdir(exist_ok=True)
    path = args.out / "oneshot_vs_search.json"
    state: dict[str, Any] = json.loads(path.read_text()) if path.is_file() else {}
    for k in ("tables", "targets", "winners"):
        state.setdefault(k, {})
    state["settings"] = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}

    def save() -> None:
        scratch = Path(tempfile.mkstemp(dir=args.out, suffix=".json")[1])
        scratch.write_text(json.dumps(state, indent=1, default=str))
        os.replace(scratch, path)

    if not args.render:
        prepare(args, state, save)
        parallel_phase(args, state, save)
        specialise(args, state, save)
        retrain(args, state, save)
        timing_pass(args, state, save)
    render(state, args, Console(width=200))


if __name__ == "__main__":
    main()
