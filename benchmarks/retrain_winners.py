"""Train each seed's winners (and mobilenetv3-small-0.75) again with other training seeds.

    python benchmarks/retrain_winners.py remeasured.json --dataset imagefolder:/data/fashion-mnist --subset 6000 \\
        --seeds 6,7,8 --times 2 --out retrained.json

The best of N trials is the best of N noisy draws: a strategy that samples more near-equal networks draws
its winner from a luckier tail. Retraining removes that luck, so two strategies' winners can be compared
on what they score afresh. Reads the JSON rows of ``search_vs_reference.py`` (or its ``--remeasure``
output), uses its recipe (3 epochs at 32x32, one thread) and its ``retrain`` (training seeds
``seed * 1000 + 1 + k``), and prints the paired difference of every strategy against random.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from search_vs_reference import dataset_spec, retrain

from nas.arch import from_string, load_architecture
from nas.data import load_dataset
from nas.proxies import TrainRecipe

REFERENCE = "reference mobilenetv3-small-0.75"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("rows", type=Path, help="JSON written by search_vs_reference.py --json or --remeasure")
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--subset", type=int, default=None)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--seeds", default=None, help="comma-separated seeds of the file (default: all)")
    parser.add_argument("--times", type=int, default=2, help="training seeds per network")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    by_seed = json.loads(args.rows.read_text())
    seeds = args.seeds.split(",") if args.seeds else sorted(by_seed, key=int)
    data = load_dataset(dataset_spec(args.dataset, args.subset))
    out: dict[str, list[float]] = {}
    for seed in seeds:
        _, rows = by_seed[seed]
        recipe = TrainRecipe(epochs=args.epochs, resolution=32, seed=int(seed), threads=1)
        for row in rows:
            if row["what"] == REFERENCE:
                arch = load_architecture("mobilenetv3-small-0.75").with_(num_classes=data.num_classes, resolution=224)
            elif row["what"].startswith("search ") and row.get("arch"):
                arch = from_string(row["arch"])
            else:
                continue
            accuracies = out[f"{seed}/{row['what']}"] = retrain(arch, data, recipe, args.times)
            print(f"seed {seed} {row['what']}: as judged {row['accuracy']:.4f}, retrained "
                  f"{', '.join(f'{a:.4f}' for a in accuracies)}", flush=True)
    args.out.write_text(json.dumps(out, indent=1))
    strategies = sorted({key.split("/", 1)[1] for key in out} - {REFERENCE, "search random"})
    for what in strategies:
        diffs = [statistics.fmean(out[f"{s}/{what}"]) - statistics.fmean(out[f"{s}/search random"])
                 for s in seeds if f"{s}/{what}" in out and f"{s}/search random" in out]
        if len(diffs) >= 2:
            mean, sd = statistics.fmean(diffs), statistics.stdev(diffs)
            t = mean / (sd / len(diffs) ** 0.5) if sd > 0 else float("inf")
            print(f"{what} - random, retrained: {mean * 100:+.2f} points (sd {sd * 100:.2f}, paired t {t:.2f}, "
                  f"better {sum(d > 1e-9 for d in diffs)} / worse {sum(d < -1e-9 for d in diffs)} of {len(diffs)})")


if __name__ == "__main__":
    main()
