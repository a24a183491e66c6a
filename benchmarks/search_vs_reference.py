"""Search strategies against the published networks on the digits proxy task (issue: search engine).

    python benchmarks/search_vs_reference.py [--trials 16] [--epochs 3] [--strategies random,tpe,...]

T = the measured latency of mobilenetv3-small-0.75 (10-class head) at 224x224 in ONNX Runtime on one
thread (profile cpu-ort-1t). Every strategy gets the same number of trials, the same proxy recipe
(digits at 32x32) and the hard MnasNet reward (alpha=0, beta=-1: full accuracy within T, penalised
beyond). NetAdapt starts from mobilenetv3-small-1.0. The references are trained with the same recipe
and measured the same way. Prints one table; everything in it is measured in this run.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from nas.arch import load_architecture
from nas.data import DatasetSpec, load_dataset
from nas.latency import measure
from nas.proxies import TrainRecipe, train_and_evaluate
from nas.search import best_trial, parse_spec, run_search

REFERENCES = ["mobilenetv3-small-0.75", "shufflenetv2-0.5"]
STRATEGIES = ["random", "tpe", "nsga2", "evolution", "netadapt"]


def spec_for(strategy: str, trials: int, epochs: int, seed: int) -> Any:
    options: dict[str, Any] = {}
    if strategy == "netadapt":
        options = {"seed": "mobilenetv3-small-1.0", "step": 0.05, "finetune_epochs": 1,
                   "final_epochs": epochs, "max_proposals": 2}
    return parse_spec({
        "name": f"bench-{strategy}", "space": "mobilenetv3-small", "device": "cpu-ort-1t",
        "latency": {"mode": "measured", "resolution": 224, "target_reference": "mobilenetv3-small-0.75"},
        "reward": {"kind": "hard"}, "strategy": {"name": strategy, "options": options},
        "budget": {"trials": trials}, "seed": seed, "export_onnx": False,
        "proxy": {"dataset": {"kind": "digits", "resolution": 32},
                  "recipe": {"epochs": epochs, "resolution": 32, "seed": seed},
                  "pruner": {"name": "median", "startup_trials": 4, "warmup_epochs": 1}},
    })


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--strategies", default=",".join(STRATEGIES))
    parser.add_argument("--db", default=None, help="SQLAlchemy URL (default: a fresh SQLite file).")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    workdir = Path(tempfile.mkdtemp(prefix="nas-bench-"))
    db = args.db or f"sqlite:///{workdir / 'bench.db'}"
    data = load_dataset(DatasetSpec(kind="digits", resolution=32))
    recipe = TrainRecipe(epochs=args.epochs, resolution=32, seed=args.seed)
    rows: list[dict[str, Any]] = []
    target = None
    for name in REFERENCES:
        arch = load_architecture(name).with_(num_classes=data.num_classes, resolution=224)
        start = time.perf_counter()
        acc = train_and_evaluate(arch, data, recipe).accuracy
        lat = measure(arch, "cpu-ort-1t", database_url=db).stats
        if name == "mobilenetv3-small-0.75":
            target = lat.median_ms
        rows.append({"what": f"reference {name}", "trials": 1, "accuracy": acc, "latency": lat.median_ms,
                     "p10": lat.p10_ms, "p90": lat.p90_ms, "reward": None, "seconds": time.perf_counter() - start})
    assert target is not None
    for strategy in args.strategies.split(","):
        spec = spec_for(strategy, args.trials, args.epochs, args.seed)
        start = time.perf_counter()
        ctx = run_search(spec, storage_url=db, run_dir=workdir / strategy)
        best = best_trial(ctx)
        feasible = [t for t in ctx.study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"
                    and t.user_attrs["latency_ms"] <= ctx.target_ms]
        best_feasible = max(feasible, key=lambda t: t.user_attrs["accuracy"], default=None)
        a = best.user_attrs if best else {}
        rows.append({"what": f"search {strategy}", "trials": len(ctx.study.trials), "accuracy": a.get("accuracy"),
                     "latency": a.get("latency_ms"), "p10": a.get("latency_p10_ms"), "p90": a.get("latency_p90_ms"),
                     "reward": a.get("reward"), "seconds": time.perf_counter() - start,
                     "feasible_acc": best_feasible.user_attrs["accuracy"] if best_feasible else None,
                     "arch": a.get("arch_string")})
    table = Table(title=f"digits proxy ({args.epochs} epochs at 32x32), cpu-ort-1t at 224, "
                        f"T = {target:.3f} ms (measured mobilenetv3-small-0.75), hard reward, {args.trials} trials")
    for col in ("network / strategy", "trials", "best reward", "accuracy", "latency ms (p10-p90)", "<= T",
                "best acc within T", "wall s"):
        table.add_column(col, justify="left" if col == "network / strategy" else "right")

    def fmt(v: float | None, spec: str = ".4f") -> str:
        return "-" if v is None else format(v, spec)

    for r in rows:
        lat = r["latency"]
        table.add_row(r["what"], str(r["trials"]), fmt(r["reward"]), fmt(r["accuracy"]),
                      f"{fmt(lat, '.3f')} ({fmt(r['p10'], '.2f')}-{fmt(r['p90'], '.2f')})",
                      "-" if lat is None else ("yes" if lat <= target * 1.0000001 else "no"),
                      fmt(r.get("feasible_acc")), f"{r['seconds']:.0f}")
    console = Console(width=160)
    console.print(table)
    for r in rows:
        if r.get("arch"):
            console.print(f"{r['what']}: {r['arch']}")


if __name__ == "__main__":
    main()
