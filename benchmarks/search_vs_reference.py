"""Search strategies against the published networks on the digits proxy task (issue: search engine).

    python benchmarks/search_vs_reference.py [--trials 16] [--epochs 3] [--strategies random,tpe,...]
    python benchmarks/search_vs_reference.py --seeds 0,1,2 --latency predicted --strategies random,tpe,nsga2,evolution


T = the measured latency of mobilenetv3-small-0.75 (10-class head) at 224x224 in ONNX Runtime on one
thread (profile cpu-ort-1t). Every strategy gets the same number of trials, the same proxy recipe
(digits at 32x32) and the hard MnasNet reward (alpha=0, beta=-1: full accuracy within T, penalised
beyond). NetAdapt starts from mobilenetv3-small-1.0. The references are trained with the same recipe
and measured the same way. Prints one table per seed; everything in it is measured in this run.

With several ``--seeds`` (each seed: the sampler's, the training's and the references' training) it also
prints, per strategy, the mean and spread of the best reward and of the best accuracy within T, and in
how many seeds it beat random (paired by seed). ``--latency predicted`` guides the search with the
lookup-table predictor (the table must exist in ``--db``: ``nas latency profile``) so a trial costs only
its training; T and every best network are still *measured*.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from nas.arch import load_architecture, parse_architecture
from nas.data import DatasetKind, DatasetSpec, load_dataset
from nas.latency import measure
from nas.proxies import TrainRecipe, train_and_evaluate
from nas.search import best_trial, parse_spec, run_search

REFERENCES = ["mobilenetv3-small-0.75", "shufflenetv2-0.5"]
STRATEGIES = ["random", "tpe", "nsga2", "evolution", "netadapt"]


def dataset_spec(text: str, subset: int | None) -> DatasetSpec:
    """``digits`` or ``KIND:PATH`` (``imagefolder:/data/fashion-mnist``, ``cifar10:/data/cifar``) at 32x32."""
    kind, _, path = text.partition(":")
    return DatasetSpec(kind=DatasetKind(kind), path=Path(path) if path else None, resolution=32, subset=subset)


def spec_for(strategy: str, trials: int, epochs: int, seed: int, latency: str = "measured",
             threads: int | None = None, dataset: DatasetSpec | None = None, target_ms: float | None = None,
             margin: float = 0.0) -> Any:
    options: dict[str, Any] = {}
    if strategy == "netadapt":
        options = {"seed": "mobilenetv3-small-1.0", "step": 0.05, "finetune_epochs": 1,
                   "final_epochs": epochs, "max_proposals": 2}
    return parse_spec({
        "name": f"bench-{strategy}-s{seed}", "space": "mobilenetv3-small", "device": "cpu-ort-1t",
        "latency": {"mode": latency, "resolution": 224, "margin": margin,
                    **({"target_ms": target_ms} if target_ms else {"target_reference": "mobilenetv3-small-0.75"})},
        "reward": {"kind": "hard"}, "strategy": {"name": strategy, "options": options},
        "budget": {"trials": trials}, "seed": seed, "export_onnx": False,
        "proxy": {"dataset": (dataset or DatasetSpec()).model_dump(mode="json", exclude_none=True),
                  "recipe": {"epochs": epochs, "resolution": 32, "seed": seed, "threads": threads},
                  "pruner": {"name": "median", "startup_trials": 4, "warmup_epochs": 1}},
    }, local_files=True)  # a local run: its dataset may be any local directory


def run_seed(seed: int, args: argparse.Namespace, db: str, workdir: Path) -> tuple[float, list[dict[str, Any]]]:
    """References and every strategy under one seed; returns T and one row per network or strategy."""
    data = load_dataset(dataset_spec(args.dataset, args.subset))
    recipe = TrainRecipe(epochs=args.epochs, resolution=32, seed=seed, threads=args.threads)
    rows: list[dict[str, Any]] = []
    target = None
    for name in REFERENCES:
        arch = load_architecture(name).with_(num_classes=data.num_classes, resolution=224)
        start = time.perf_counter()
        acc = train_and_evaluate(arch, data, recipe).accuracy
        lat = measure(arch, "cpu-ort-1t", database_url=db).stats
        if name == "mobilenetv3-small-0.75":
            target = args.target_ms or lat.median_ms
        rows.append({"what": f"reference {name}", "trials": 1, "accuracy": acc, "latency": lat.median_ms,
                     "p10": lat.p10_ms, "p90": lat.p90_ms, "reward": None, "seconds": time.perf_counter() - start,
                     "retrained": retrain(arch, data, recipe, args.retrain)})
    assert target is not None
    for strategy in args.strategies.split(","):
        spec = spec_for(strategy, args.trials, args.epochs, seed, args.latency, args.threads,
                        dataset_spec(args.dataset, args.subset), args.target_ms, args.margin)
        start = time.perf_counter()
        ctx = run_search(spec, storage_url=db, run_dir=workdir / f"{strategy}-{seed}")
        best = best_trial(ctx)
        complete = [t for t in ctx.study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
        feasible = [t for t in complete if t.user_attrs["latency_ms"] <= ctx.target_ms]
        best_feasible = max(feasible, key=lambda t: t.user_attrs["accuracy"], default=None)
        a = best.user_attrs if best else {}
        row = {"what": f"search {strategy}", "strategy": strategy, "trials": len(ctx.study.trials),
               "complete": len(complete), "accuracy": a.get("accuracy"), "latency": a.get("latency_ms"),
               "latency_source": a.get("latency_source"), "p10": a.get("latency_p10_ms"),
               "p90": a.get("latency_p90_ms"), "reward": a.get("reward"), "seconds": time.perf_counter() - start,
               "feasible_acc": best_feasible.user_attrs["accuracy"] if best_feasible else None,
               "arch": a.get("arch_string"), "top5": top_rewards(complete, 5)}
        if best:
            winner = parse_architecture(a["architecture"])
            if a.get("latency_source") != "measured":  # the winner's latency is always measured
                m = measure(winner, "cpu-ort-1t", database_url=db).stats
                row.update(predicted=a.get("latency_ms"), latency=m.median_ms, p10=m.p10_ms, p90=m.p90_ms)
            row["retrained"] = retrain(winner, data, recipe, args.retrain)
        rows.append(row)
    return target, rows


def remeasure(paths: list[Path], out: Path) -> None:
    """Measure T and every row's network again, one after the other in this one process and database.

    Seeds run in parallel processes measure T and their winners while the other core trains, so those
    latencies carry that load (seen: +10% over a quiet measurement of the same network); this pass puts
    every row of every seed on one footing. Each row keeps its run's figure as ``latency_during_run``."""
    from nas.arch import from_string

    db = f"sqlite:///{Path(tempfile.mkdtemp(prefix='nas-remeasure-')) / 'latency.db'}"
    os.environ["NAS_DATABASE_URL"] = db
    from nas.settings import get_settings

    get_settings.cache_clear()

    def stats(arch: Any) -> Any:
        return measure(arch.with_(num_classes=10, resolution=224), "cpu-ort-1t", database_url=db).stats

    target = stats(load_architecture(REFERENCES[0]))
    merged: dict[str, Any] = {}
    for path in paths:
        for key, (_, rows) in json.loads(path.read_text()).items():
            for r in rows:
                name = r["what"].removeprefix("reference ")
                arch = load_architecture(name) if r["what"].startswith("reference") else \
                    from_string(r["arch"]) if r.get("arch") else None
                if arch is not None:
                    lat = stats(arch)
                    r.update(latency_during_run=r["latency"], latency=lat.median_ms, p10=lat.p10_ms, p90=lat.p90_ms)
            merged.setdefault(key, [target.median_ms, []])[1].extend(rows)
    out.write_text(json.dumps(merged, indent=1))
    print(f"T = {target.median_ms:.3f} ms ({REFERENCES[0]}, measured again); {sum(len(v[1]) for v in merged.values())} "
          f"rows measured again into {out}")


def retrain(arch: Any, data: Any, recipe: TrainRecipe, times: int) -> list[float]:
    """Accuracy of ``arch`` trained again with ``times`` other training seeds: the best of N trials is
    the best of N noisy draws, so a strategy is judged on what its winner scores when trained afresh."""
    return [train_and_evaluate(arch, data, recipe.model_copy(update={"seed": recipe.seed * 1000 + 1 + k})).accuracy
            for k in range(times)]


def top_rewards(trials: list[Any], k: int) -> float | None:
    """Mean reward of the ``k`` best completed trials (as judged during the search): where a strategy
    spends its budget, less at the mercy of one lucky trial than the single best."""
    rewards = sorted((t.user_attrs["reward"] for t in trials if t.user_attrs.get("reward") is not None), reverse=True)
    return statistics.fmean(rewards[:k]) if len(rewards) >= k else None


def seed_table(seed: int, target: float, rows: list[dict[str, Any]], args: argparse.Namespace) -> Table:
    table = Table(title=f"seed {seed}: {args.dataset} proxy ({args.epochs} epochs at 32x32), cpu-ort-1t at 224, "
                        f"T = {target:.3f} ms (measured mobilenetv3-small-0.75), hard reward, {args.trials} trials, "
                        f"search latency {args.latency}")
    for col in ("network / strategy", "trials", "best reward", "accuracy", "latency ms (p10-p90)", "<= T",
                "best acc within T", "wall s"):
        table.add_column(col, justify="left" if col == "network / strategy" else "right")
    for r in rows:
        lat = r["latency"]
        table.add_row(r["what"], str(r["trials"]), _fmt(r["reward"]), _fmt(r["accuracy"]),
                      f"{_fmt(lat, '.3f')} ({_fmt(r['p10'], '.2f')}-{_fmt(r['p90'], '.2f')})",
                      "-" if lat is None else ("yes" if lat <= target * 1.0000001 else "no"),
                      _fmt(r.get("feasible_acc")), f"{r['seconds']:.0f}")
    return table


def _fmt(v: float | None, spec: str = ".4f") -> str:
    return "-" if v is None else format(v, spec)


def _mean_sd(values: list[float]) -> str:
    if not values:
        return "-"
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.fmean(values):.4f} +- {sd:.4f}"


def measured_reward(row: dict[str, Any]) -> float:
    """The hard MnasNet reward of a row's network from its *measured* latency (a search guided by the
    predictor can pick a network that is predicted just under T and measured just over)."""
    ratio = row["latency"] / row["target"]
    return float(row["accuracy"] * (ratio ** -1 if ratio > 1 else 1.0))


def retrained_reward(row: dict[str, Any]) -> float:
    """The hard reward of a row's network from its mean retrained accuracy and its measured latency."""
    return measured_reward({**row, "accuracy": statistics.fmean(row["retrained"])})


def summary_table(results: dict[int, tuple[float, list[dict[str, Any]]]], args: argparse.Namespace) -> Table:
    """Per strategy over seeds: the best network's reward from its measured latency, the best accuracy
    within T as the search judged it, and paired wins against random (by measured reward)."""
    seeds = sorted(results)
    table = Table(title=f"{len(seeds)} seeds ({', '.join(map(str, seeds))}), {args.trials} trials each, "
                        f"search latency {args.latency}; mean +- sd over seeds")
    for col in ("strategy", "reward of best, measured", "best acc within T (as judged)", "measured ms of best (max)",
                "best <= T (seeds)", "reward > random / = / <", "top-5 reward (judged)", "best retrained: reward",
                "retrained > random / <"):
        table.add_column(col, justify="left" if col == "strategy" else "right")
    by: dict[str, dict[int, dict[str, Any]]] = {}
    for seed, (target, rows) in results.items():
        for r in rows:
            by.setdefault(r["what"], {})[seed] = {"target": target, **r}
    for what, per_seed in by.items():
        rs = list(per_seed.values())
        rewards = [measured_reward(r) for r in rs if r["accuracy"] is not None]
        feasible = [r.get("feasible_acc") or 0.0 for r in rs] if what.startswith("search") else \
            [r["accuracy"] for r in rs if r["latency"] <= r["target"]]
        within = sum(r["latency"] is not None and r["latency"] <= r["target"] * 1.0000001 for r in rs)
        paired = ""
        if what.startswith("search") and what != "search random" and "search random" in by:
            base = by["search random"]
            diffs = [measured_reward(r) - measured_reward(base[s]) for s, r in per_seed.items()
                     if r["accuracy"] is not None and base.get(s, {}).get("accuracy") is not None]
            wins, ties = sum(d > 1e-9 for d in diffs), sum(abs(d) <= 1e-9 for d in diffs)
            paired = f"{wins} / {ties} / {len(diffs) - wins - ties}"
        lats = [r["latency"] for r in rs if r["latency"] is not None]
        top5 = [r["top5"] for r in rs if r.get("top5") is not None]
        retrained = [retrained_reward(r) for r in rs if r.get("retrained")]
        paired_retrained = ""
        if retrained and what.startswith("search") and what != "search random" and "search random" in by:
            base = by["search random"]
            diffs = [retrained_reward(r) - retrained_reward(base[s]) for s, r in per_seed.items()
                     if r.get("retrained") and base.get(s, {}).get("retrained")]
            paired_retrained = f"{sum(d > 1e-9 for d in diffs)} / {sum(d < -1e-9 for d in diffs)}"
        table.add_row(what, _mean_sd(rewards), _mean_sd(feasible), _fmt(max(lats) if lats else None, ".3f"),
                      f"{within}/{len(rs)}", paired, _mean_sd(top5), _mean_sd(retrained), paired_retrained)
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seeds", default=None, help="comma-separated seeds (overrides --seed)")
    parser.add_argument("--latency", choices=["measured", "predicted"], default="measured",
                        help="how trials are judged during the search (winners are always measured)")
    parser.add_argument("--strategies", default=",".join(STRATEGIES))
    parser.add_argument("--dataset", default="digits",
                        help="proxy dataset: digits, or KIND:PATH (imagefolder:DIR, cifar10:DIR), read at 32x32")
    parser.add_argument("--subset", type=int, default=None, help="examples kept from the dataset (seeded, stratified)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads for training (default: all)")
    parser.add_argument("--db", default=None, help="SQLAlchemy URL (default: a fresh SQLite file).")
    parser.add_argument("--retrain", type=int, default=0,
                        help="train each winner and reference again with this many other seeds (mean reported)")
    parser.add_argument("--json", type=Path, default=None, help="also write every row here")
    parser.add_argument("--target-ms", type=float, default=None,
                        help="T given (e.g. mobilenetv3-small-0.75 measured beforehand on a quiet machine) instead of "
                             "measured in each seed's run, where the other core's work inflates it")
    parser.add_argument("--margin", type=float, default=0.0, help="the searches' latency.margin (0.03: 3%% under T)")
    parser.add_argument("--remeasure", type=Path, nargs="+", default=None,
                        help="measure T and every network of earlier --json outputs again, quietly, into --json")
    parser.add_argument("--render", type=Path, nargs="+", default=None,
                        help="only print the tables of earlier --json outputs (seeds run in parallel processes)")
    args = parser.parse_args()
    console = Console(width=230)
    if args.remeasure:
        if args.json is None:
            parser.error("--remeasure needs --json OUT")
        remeasure(args.remeasure, args.json)
        return
    if args.render:
        merged: dict[int, tuple[float, list[dict[str, Any]]]] = {}
        for path in args.render:  # a later file's row for the same seed and network/strategy replaces it
            for key, (target, rows) in json.loads(path.read_text()).items():
                # each row keeps the T of its own run (T is measured again in every run)
                earlier = {r["what"]: r for r in merged.get(int(key), (target, []))[1]}
                later = {r["what"]: {"target": target, **r} for r in rows
                         if r["what"].startswith("search") or r["what"] not in earlier}
                merged[int(key)] = (merged.get(int(key), (target, []))[0], list({**earlier, **later}.values()))
        for seed in sorted(merged):
            console.print(seed_table(seed, *merged[seed], args))
        console.print(summary_table(merged, args))
        return
    logging.basicConfig(level=logging.WARNING)
    workdir = Path(tempfile.mkdtemp(prefix="nas-bench-"))
    db = args.db or f"sqlite:///{workdir / 'bench.db'}"
    # Searches measure and predict latency in the configured database: make that this one, so the
    # table, T, every trial and the references share one cache.
    os.environ["NAS_DATABASE_URL"] = db
    from nas.settings import get_settings

    get_settings.cache_clear()
    seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else [args.seed]
    results: dict[int, tuple[float, list[dict[str, Any]]]] = {}
    for seed in seeds:
        results[seed] = run_seed(seed, args, db, workdir)
        console.print(seed_table(seed, *results[seed], args))
        for r in results[seed][1]:
            if r.get("arch"):
                console.print(f"{r['what']}: {r['arch']}")
        if args.json:
            args.json.write_text(json.dumps({str(k): v for k, v in results.items()}, indent=1))
    if len(seeds) > 1:
        console.print(summary_table(results, args))


if __name__ == "__main__":
    main()
