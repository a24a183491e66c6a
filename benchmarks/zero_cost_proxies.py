"""How well do zero-cost proxies rank architectures? Spearman correlation with proxy-trained accuracy.

Samples ``--n`` architectures from a space, proxy-trains each (digits, or ``--dataset``) with one short recipe,
scores each with synflow, NASWOT and grad-norm (and MACs/params as baselines), and prints a markdown
table. ``--repeats 2`` also trains every network with a second seed: the seed-to-seed rank correlation
is the ceiling any proxy can reach against this noisy ground truth. ``--long-epochs E`` also trains
every network once for E epochs (seed 0): does the short proxy recipe rank networks the way longer
training does, and do the zero-cost scores?

    flock /tmp/nas-cpu.lock python benchmarks/zero_cost_proxies.py            # default: ~10-15 min, 2 cores
    python benchmarks/zero_cost_proxies.py --n 6 --epochs 1 --repeats 1        # smoke run
    flock /tmp/nas-cpu.lock python benchmarks/zero_cost_proxies.py --long-epochs 15   # + the longer-training check
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from typing import Any

_DATA: Any = None


def _init_worker(dataset: dict[str, Any]) -> None:
    global _DATA
    import torch

    from nas.data import DatasetSpec, load_dataset

    torch.set_num_threads(1)
    _DATA = load_dataset(DatasetSpec.model_validate(dataset))


def _evaluate(job: tuple[int, dict[str, Any], dict[str, Any], int, int, int]) -> dict[str, Any]:
    from nas.arch import parse_architecture
    from nas.cost import estimate
    from nas.proxies import ZERO_COST_PROXIES, TrainRecipe, train_and_evaluate, zero_cost_score

    index, arch_doc, recipe_doc, repeats, proxy_batch, long_epochs = job
    arch = parse_architecture(arch_doc)
    cost = estimate(arch).total
    row: dict[str, Any] = {"index": index, "hash": arch.hash, "macs": float(cost.macs), "params": float(cost.params)}
    for name in ZERO_COST_PROXIES:
        start = time.perf_counter()
        row[name] = zero_cost_score(arch, _DATA, name, batch_size=proxy_batch, seed=0, threads=1)
        row[f"{name}_s"] = time.perf_counter() - start
    for r in range(repeats):
        recipe = TrainRecipe.model_validate({**recipe_doc, "seed": r, "threads": 1, "device": "cpu"})
        result = train_and_evaluate(arch, _DATA, recipe)
        row[f"acc{r}"] = result.accuracy
        row[f"train_s{r}"] = result.train_seconds
    if long_epochs:
        recipe = TrainRecipe.model_validate({**recipe_doc, "epochs": long_epochs, "seed": 0, "threads": 1,
                                             "device": "cpu"})
        result = train_and_evaluate(arch, _DATA, recipe)
        row["acc_long"], row["train_s_long"] = result.accuracy, result.train_seconds
    return row


def spearman(x: list[float], y: list[float]) -> tuple[float, float, float]:
    """(rho, low, high): Spearman's rho with a 95% interval (Fisher z, Fieller's 1.06 / sqrt(n - 3))."""
    from scipy.stats import spearmanr

    rho = float(spearmanr(x, y).statistic)
    if not math.isfinite(rho) or len(x) < 5:
        return rho, math.nan, math.nan
    z, half = math.atanh(max(min(rho, 0.999999), -0.999999)), 1.96 * 1.06 / math.sqrt(len(x) - 3)
    return rho, math.tanh(z - half), math.tanh(z + half)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=50, help="architectures to sample")
    parser.add_argument("--space", default="mobilenetv3-small")
    parser.add_argument("--seed", type=int, default=0, help="seed of the architecture sample")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--resolution", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=2, help="training seeds per network (2 adds a ceiling)")
    parser.add_argument("--proxy-batch", type=int, default=64, help="minibatch for NASWOT and grad-norm")
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--dataset", default="digits",
                        help="proxy dataset: digits, or KIND:PATH (imagefolder:DIR, cifar10:DIR)")
    parser.add_argument("--subset", type=int, default=None, help="examples kept from the dataset (seeded, stratified)")
    parser.add_argument("--long-epochs", type=int, default=0,
                        help="also train each network once for this many epochs and rank against that")
    args = parser.parse_args()

    from pathlib import Path

    from nas.data import DatasetKind, DatasetSpec, load_dataset
    from nas.proxies import ZERO_COST_PROXIES, TrainRecipe
    from nas.spaces import load_space

    kind, _, path = args.dataset.partition(":")
    dataset = DatasetSpec(kind=DatasetKind(kind), path=Path(path) if path else None, resolution=args.resolution,
                          subset=args.subset)
    described = str(load_dataset(dataset))

    space = load_space(args.space)
    archs, seen, s = [], set(), args.seed
    while len(archs) < args.n and s < args.seed + 100 * args.n:
        arch = space.sample(seed=s, num_classes=10)
        s += 1
        if arch.hash not in seen:
            seen.add(arch.hash)
            archs.append(arch)
    recipe = TrainRecipe(epochs=args.epochs, resolution=args.resolution)
    jobs = [(i, a.model_dump(mode="json"), recipe.model_dump(mode="json"), args.repeats, args.proxy_batch,
             args.long_epochs) for i, a in enumerate(archs)]
    start = time.perf_counter()
    with ProcessPoolExecutor(args.workers, mp_context=get_context("spawn"), initializer=_init_worker,
                             initargs=(dataset.model_dump(mode="json"),)) as pool:
        rows = []
        for row in pool.map(_evaluate, jobs):
            rows.append(row)
            print(f"[{len(rows)}/{len(jobs)}] {row['hash']} acc {row['acc0']:.4f} "
                  f"({row['train_s0']:.1f}s) macs {row['macs'] / 1e6:.1f}M", flush=True)
    wall = time.perf_counter() - start

    acc = [statistics.fmean(r[f"acc{k}"] for k in range(args.repeats)) for r in rows]
    print()
    print(f"{len(rows)} architectures from {args.space} (sample seed {args.seed}), proxy-trained on "
          f"{described}: {args.epochs} epochs, batch "
          f"{recipe.batch_size}, SGD lr {recipe.lr} cosine, warm-up {recipe.warmup_epochs} epoch, label "
          f"smoothing {recipe.label_smoothing}; accuracy = mean over {args.repeats} training seed(s). "
          f"Accuracy min/median/max {min(acc):.3f}/{statistics.median(acc):.3f}/{max(acc):.3f}. "
          f"Zero-cost scores on one fixed {args.proxy_batch}-image batch, seed 0. MACs and params at "
          f"the deployment resolution. Wall time {wall / 60:.1f} min on {args.workers} worker(s) x 1 thread.")
    print()
    print("| ranking by | Spearman rho vs accuracy | 95% CI | mean cost per network |")
    print("|---|---|---|---|")
    train_s = statistics.fmean(r["train_s0"] for r in rows)
    for name in ZERO_COST_PROXIES:
        rho, lo, hi = spearman([r[name] for r in rows], acc)
        cost = statistics.fmean(r[f"{name}_s"] for r in rows)
        print(f"| {name} | {rho:+.3f} | [{lo:+.2f}, {hi:+.2f}] | {cost:.2f} s |")
    for name in ("macs", "params"):
        rho, lo, hi = spearman([r[name] for r in rows], acc)
        print(f"| {name} (baseline) | {rho:+.3f} | [{lo:+.2f}, {hi:+.2f}] | analytic |")
    if args.repeats >= 2:
        rho, lo, hi = spearman([r["acc0"] for r in rows], [r["acc1"] for r in rows])
        print(f"| training seed 0 vs seed 1 (ceiling) | {rho:+.3f} | [{lo:+.2f}, {hi:+.2f}] | {train_s:.1f} s |")
    if args.long_epochs:
        long_acc = [r["acc_long"] for r in rows]
        long_s = statistics.fmean(r["train_s_long"] for r in rows)
        print()
        print(f"Against {args.long_epochs}-epoch training (seed 0; accuracy min/median/max {min(long_acc):.3f}/"
              f"{statistics.median(long_acc):.3f}/{max(long_acc):.3f}, {long_s:.1f} s per network):")
        print()
        print(f"| ranking by | Spearman rho vs {args.long_epochs}-epoch accuracy | 95% CI |")
        print("|---|---|---|")
        candidates = [(f"proxy accuracy ({args.epochs} epochs, seed 0)", [r["acc0"] for r in rows])]
        if args.repeats >= 2:
            candidates.append((f"proxy accuracy ({args.epochs} epochs, mean of {args.repeats} seeds)", acc))
        candidates += [(name, [r[name] for r in rows]) for name in (*ZERO_COST_PROXIES, "macs", "params")]
        for label, values in candidates:
            rho, lo, hi = spearman(values, long_acc)
            print(f"| {label} | {rho:+.3f} | [{lo:+.2f}, {hi:+.2f}] |")
        top = max(range(len(rows)), key=lambda i: acc[i])
        rank_long = sorted(long_acc, reverse=True).index(long_acc[top]) + 1
        print()
        print(f"The proxy's best network ranks {rank_long} of {len(rows)} after {args.epochs}-to-{args.long_epochs}"
              f" epochs ({acc[top]:.3f} -> {long_acc[top]:.3f}; the best after {args.long_epochs} epochs: "
              f"{max(long_acc):.3f}).")
    print()
    print(f"Proxy training itself: {train_s:.1f} s per network and seed on average.")


if __name__ == "__main__":
    main()
