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


def _earlier(paths: list[Path], arch_hash: str, seed: int) -> dict[str, Any] | None:
    for path in paths:
        if not path.is_file():
            continue
        for entry in json.loads(path.read_text()).get("subnets", []):
            if entry["arch_hash"] == arch_hash and str(seed) in entry["standalone"]:
                return {**entry["standalone"][str(seed)], "reused_from": str(path)}
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
    parser.add_argument("--group-weights", choices=["separate", "shared"], default="separate")
    parser.add_argument("--random", type=int, default=2, help="Random subnets per step (sandwich rule).")
    parser.add_argument("--smallest-groups", choices=["most", "fewest"], default="most",
                        help="The sandwich's smallest subnet: the most 1x1 groups, or dense.")
    parser.add_argument("--rule", choices=["sandwich", "uniform"], default="sandwich",
                        help="sandwich (largest, smallest, --random random subnets, distilled) or uniform "
                             "(--random random subnets on the labels: SPOS).")
    parser.add_argument("--dense-epochs", type=int, default=0,
                        help="Epochs after the largest's with every 1x1 group count dense (progressive shrinking).")
    parser.add_argument("--group-distill", type=float, default=0.0,
                        help="Weight of the feature-level distillation of grouped paths towards the dense path.")
    parser.add_argument("--standalone-only", action="store_true",
                        help="Only proxy-train the subnets stand-alone (a later run reuses them with --reuse).")
    parser.add_argument("--oneshot-only", action="store_true",
                        help="Train the supernet and evaluate one-shot; stand-alone results only from --reuse.")
    parser.add_argument("--supernet", type=Path, help="Evaluate this trained supernet.pt (trained on the same "
                        "--dataset and --subset) instead of training one.")
    parser.add_argument("--note", default="")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--indices", type=int, nargs=2, metavar=("START", "STOP"),
                        help="Only subnets START..STOP-1 of the seeded sample (to run stand-alone training in parts).")
    parser.add_argument("--reuse", type=Path, nargs="+", default=[], help=(
                        "Earlier fidelity.json files: reuse their stand-alone results for "
                        "the same architectures and seeds (stand-alone training does not depend on the supernet)."))
    parser.add_argument("--merge", type=Path, nargs="+", help="Only join these fidelity.json files (a one-shot "
                        "run and stand-alone parts) into --out and compute the taus.")
    args = parser.parse_args()
    if args.merge:
        merge(args.merge, args.seeds, args.out)
        return

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
        "sandwich": {"random": args.random, "smallest_groups": args.smallest_groups, "rule": args.rule},
        "largest_epochs": max(1, args.epochs // 8), "dense_epochs": args.dense_epochs, "eval_every": 5,
        "group_weights": args.group_weights, "group_distill": args.group_distill})
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
    if args.supernet is not None and not args.standalone_only:
        loaded = load_supernet(str(args.supernet))
        summary_file = args.supernet.parent / "summary.json"
        record["supernet_spec"] = loaded.meta.get("spec", record["supernet_spec"])
        trained = json.loads(summary_file.read_text()) if summary_file.is_file() else {}
        record["supernet"] = {"file": str(args.supernet),
                              **{k: v for k, v in trained.items() if k in ("history", "steps", "epochs")}}
        save()
        calib_x, val_x, val_y = oneshot_data(loaded, 512)
    elif not args.standalone_only:
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
    start_index, stop_index = args.indices or (0, len(archs))
    for i, arch in enumerate(archs):
        if not start_index <= i < stop_index:
            continue
        entry: dict[str, Any] = {"index": i, "arch_hash": arch.hash, "standalone": {}}
        if loaded is not None:
            one = evaluate_subnet(loaded.net, arch, calib_x, val_x, val_y)
            entry.update(oneshot_accuracy=one.accuracy, oneshot_seconds=round(one.seconds, 4),
                         groups=[b.groups for stage in arch.stages for b in stage])
        for seed in args.seeds:
            earlier = _earlier(args.reuse, arch.hash, seed)
            if earlier is not None:
                entry["standalone"][str(seed)] = earlier
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
    record["kendall_tau"] = taus(record["subnets"], args.seeds)
    record["seconds_total"] = round(time.perf_counter() - start, 1)
    save()
    print(json.dumps(record["kendall_tau"], indent=2))


def taus(subnets: list[dict[str, Any]], seeds: list[int]) -> dict[str, float]:
    """One-shot vs stand-alone (mean of the seeds, and each seed), and the first two seeds vs each other."""
    oneshot = [e["oneshot_accuracy"] for e in subnets]
    per_seed = {s: [e["standalone"][str(s)]["accuracy"] for e in subnets] for s in seeds}
    mean = [sum(v) / len(v) for v in zip(*per_seed.values(), strict=True)]
    found = {"oneshot_vs_standalone_mean": kendall(oneshot, mean),
             **{f"oneshot_vs_standalone_seed{s}": kendall(oneshot, v) for s, v in per_seed.items()}}
    if len(seeds) >= 2:
        s0, s1 = seeds[:2]
        found[f"standalone_seed{s0}_vs_seed{s1}"] = kendall(per_seed[s0], per_seed[s1])
    return found


def merge(files: list[Path], seeds: list[int], out: Path) -> None:
    """Join the one-shot run and the stand-alone parts (by subnet index) into out/fidelity.json with its taus."""
    records = [json.loads(f.read_text()) for f in files]
    base = next((r for r in records if "supernet" in r), records[0])
    joined: dict[int, dict[str, Any]] = {}
    for r in records:
        for e in r["subnets"]:
            entry = joined.setdefault(e["index"], {"standalone": {}})
            if entry.get("arch_hash", e["arch_hash"]) != e["arch_hash"]:
                raise SystemExit(f"subnet {e['index']}: different architectures in {files}")
            entry["standalone"].update(e.pop("standalone"))
            entry.update(e)
    merged = {**base, "merged_from": [str(f) for f in files], "subnets": [joined[i] for i in sorted(joined)]}
    complete = [e for e in merged["subnets"] if "oneshot_accuracy" in e and all(str(s) in e["standalone"]
                                                                               for s in seeds)]
    merged["complete_subnets"] = len(complete)
    merged["kendall_tau"] = taus(complete, seeds)
    out.mkdir(parents=True, exist_ok=True)
    (out / "fidelity.json").write_text(json.dumps(merged, indent=2) + "\n")
    print(f"{len(complete)} subnets: {json.dumps(merged['kendall_tau'], indent=2)}")


if __name__ == "__main__":
    main()
