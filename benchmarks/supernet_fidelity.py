"""Rank fidelity of one-shot evaluation: does a subnet's accuracy with inherited supernet weights rank
subnets as stand-alone proxy training does?

    python benchmarks/supernet_fidelity.py --epochs 30 --subnets 16 --out benchmarks/results/DATE/supernet

1. Train a supernet over mobilenetv3-small on digits at 32x32 (sandwich rule, in-place distillation).
2. Sample N subnets (seeded); evaluate each one-shot (BN statistics re-estimated on 512 training images).
3. Proxy-train each stand-alone with the search's default recipe (3 epochs) under two seeds.
4. Kendall tau between one-shot and stand-alone accuracy, beside the seed-to-seed tau of stand-alone
   training itself (the ceiling any proxy of it can reach).

Raw JSON is written after every stage, so an interrupted run keeps what it measured (and the supernet's
own checkpoint resumes its training).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def kendall(a: list[float], b: list[float]) -> float:
    from scipy.stats import kendalltau

    return float(kendalltau(a, b).statistic)


def _earlier(path: Path | None, arch_hash: str, seed: int) -> dict[str, Any] | None:
    if path is None or not path.is_file():
        return None
    for entry in json.loads(path.read_text()).get("subnets", []):
        if entry["arch_hash"] == arch_hash and str(seed) in entry["standalone"]:
            return dict(entry["standalone"][str(seed)])
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--space", default="mobilenetv3-small", help="Space name or YAML file.")
    parser.add_argument("--subnets", type=int, default=16)
    parser.add_argument("--standalone-epochs", type=int, default=3)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--dataset", default="digits",
                        help="digits, or imagefolder:PATH (e.g. Fashion-MNIST from fashion_mnist_tree.py).")
    parser.add_argument("--subset", type=int, help="Examples kept in total (stratified, seeded) before the split.")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--standalone-only", action="store_true",
                        help="Only proxy-train the subnets stand-alone (a later run reuses them with --reuse).")
    parser.add_argument("--oneshot-only", action="store_true",
                        help="Train the supernet and evaluate one-shot; stand-alone results only from --reuse.")
    parser.add_argument("--note", default="")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--reuse", type=Path, help="An earlier fidelity.json: reuse its stand-alone results for "
                        "the same architectures and seeds (stand-alone training does not depend on the supernet).")
    args = parser.parse_args()

    import torch

    from nas.data import DatasetSpec, load_dataset
    from nas.proxies import TrainRecipe, train_and_evaluate
    from nas.spaces import load_space
    from nas.supernet import evaluate_subnet, load_supernet, oneshot_data, parse_supernet_spec, train_supernet

    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    result_file = args.out / "fidelity.json"
    kind, _, path = args.dataset.partition(":")
    dataset = DatasetSpec.model_validate({"kind": kind, "path": path or None, "resolution": 32, "subset": args.subset})
    spec = parse_supernet_spec({
        "name": "fidelity", "space": args.space, "dataset": dataset.model_dump(mode="json"),
        "recipe": {"epochs": args.epochs, "batch_size": args.batch_size, "lr": 0.05, "resolution": 32,
                   "threads": args.threads},
        "sandwich": {"random": 2}, "largest_epochs": max(1, args.epochs // 8), "eval_every": 5})
    record: dict[str, Any] = {
        "benchmark": "supernet rank fidelity", "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "threads": args.threads,
                    "note": args.note},
        "supernet_spec": spec.model_dump(mode="json"), "subnets": [],
        "standalone_epochs": args.standalone_epochs, "seeds": args.seeds,
    }

    def save() -> None:
        result_file.write_text(json.dumps(record, indent=2) + "\n")

    start = time.perf_counter()
    def epoch_done(p: Any) -> None:
        if p.loss != p.loss:  # NaN marks the end of an epoch
            print(f"supernet epoch {p.epoch}/{p.epochs} step {p.step} {time.perf_counter() - start:.0f} s "
                  f"{p.last_eval}", flush=True)

    loaded = None
    if not args.standalone_only:
        summary = train_supernet(spec, args.out / "run", on_progress=epoch_done)
        record["supernet"] = {"history": summary["history"], "steps": summary["steps"],
                              "seconds_last_run": summary["seconds_this_run"]}
        save()
        loaded = load_supernet(str(args.out / "run" / "supernet.pt"))
        calib_x, val_x, val_y = oneshot_data(loaded, 512)
    space = load_space(args.space)
    data = load_dataset(dataset)
    rng = random.Random(2026)
    archs = [space.sample(rng=rng, num_classes=data.num_classes) for _ in range(args.subnets)]
    for i, arch in enumerate(archs):
        entry: dict[str, Any] = {"index": i, "arch_hash": arch.hash, "standalone": {}}
        if loaded is not None:
            one = evaluate_subnet(loaded.net, arch, calib_x, val_x, val_y)
            entry.update(oneshot_accuracy=one.accuracy, oneshot_seconds=round(one.seconds, 4),
                         groups=[b.groups for stage in arch.stages for b in stage])
        for seed in args.seeds:
            earlier = _earlier(args.reuse, arch.hash, seed)
            if earlier is not None:
                entry["standalone"][str(seed)] = {**earlier, "reused_from": str(args.reuse)}
                continue
            if args.oneshot_only:
                continue
            recipe = TrainRecipe(epochs=args.standalone_epochs, resolution=32, seed=seed, threads=args.threads)
            res = train_and_evaluate(arch, data, recipe)
            entry["standalone"][str(seed)] = {"accuracy": res.accuracy, "seconds": round(res.train_seconds, 2)}
        record["subnets"].append(entry)
        print(f"{i}: one-shot {entry.get('oneshot_accuracy')} ({entry.get('oneshot_seconds')} s) stand-alone "
              f"{[v['accuracy'] for v in entry['standalone'].values()]}", flush=True)
        save()
    record["seconds_total"] = round(time.perf_counter() - start, 1)
    if loaded is None or any(len(e["standalone"]) < len(args.seeds) for e in record["subnets"]):
        save()  # stand-alone results (or one-shot ones) alone: no tau to compute
        return
    oneshot = [e["oneshot_accuracy"] for e in record["subnets"]]
    per_seed = {s: [e["standalone"][str(s)]["accuracy"] for e in record["subnets"]] for s in args.seeds}
    mean = [sum(v) / len(v) for v in zip(*per_seed.values(), strict=True)]
    record["kendall_tau"] = {
        "oneshot_vs_standalone_mean": kendall(oneshot, mean),
        **{f"oneshot_vs_standalone_seed{s}": kendall(oneshot, v) for s, v in per_seed.items()},
    }
    if len(args.seeds) >= 2:
        s0, s1 = args.seeds[:2]
        record["kendall_tau"][f"standalone_seed{s0}_vs_seed{s1}"] = kendall(per_seed[s0], per_seed[s1])
    record["seconds_total"] = round(time.perf_counter() - start, 1)
    save()
    print(json.dumps(record["kendall_tau"], indent=2))


if __name__ == "__main__":
    main()
