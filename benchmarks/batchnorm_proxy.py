"""Proxy accuracy of MobileNetV3 candidates with PyTorch's BatchNorm settings vs the published ones.

    python benchmarks/batchnorm_proxy.py --epochs 2 --seeds 0,1 --out bn.json

MobileNetV3 trains with BN momentum 0.01 (PyTorch convention) where PyTorch's default is 0.1: running
statistics then follow the weights ten times more slowly, and a short proxy run (a few dozen to a few
hundred steps) ends with statistics that still remember the initial 0/1. The recipe re-estimates them
on training examples before every validation (``bn_recalibration``, default 512), which removes the
momentum from the result; this script measures both with that re-estimation and without it (0). Same
networks, data, recipe and seeds on both sides; only ``batchnorm`` differs. Dataset and recipe follow
search_spaces/specs/quickstart.yaml (digits at 32x32, 2 epochs) unless told otherwise; one thread.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from nas.arch import Architecture, load_architecture
from nas.data import DatasetSpec, load_dataset
from nas.proxies import TrainRecipe, train_and_evaluate
from nas.spaces import load_space

PYTORCH = None
PUBLISHED = {"eps": 1e-3, "momentum": 0.01}


def candidates(classes: int) -> dict[str, Architecture]:
    nets = {name: load_architecture(name) for name in ("mobilenetv3-small-0.75", "mobilenetv3-small-1.0")}
    nets["mobilenetv3-small sample 7"] = load_space("mobilenetv3-small").sample(seed=7)
    return {name: arch.with_(num_classes=classes) for name, arch in nets.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--seeds", default="0", help="comma-separated training seeds")
    parser.add_argument("--recalibration", default="512,0", help="comma-separated bn_recalibration values")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    data = load_dataset(DatasetSpec(kind="digits", resolution=32))
    rows = []
    for name, arch in candidates(data.num_classes).items():
        for recal in (int(r) for r in args.recalibration.split(",")):
            for seed in (int(s) for s in args.seeds.split(",")):
                recipe = TrainRecipe(epochs=args.epochs, resolution=32, seed=seed, threads=1,
                                     bn_recalibration=recal)
                for label, bn in (("pytorch 1e-5/0.1", PYTORCH), ("published 1e-3/0.01", PUBLISHED)):
                    result = train_and_evaluate(arch.with_(batchnorm=bn), data, recipe)
                    rows.append({"network": name, "bn": label, "bn_recalibration": recal, "seed": seed,
                                 "epochs": args.epochs, "accuracy": result.accuracy,
                                 "val_accuracy": result.val_accuracy, "seconds": round(result.train_seconds, 1)})
                    print(f"{name:28s} recal {recal:4d} seed {seed} {label:20s} acc {result.accuracy:.4f} "
                          f"per epoch {[round(a, 4) for a in result.val_accuracy]}", flush=True)
                    args.out.write_text(json.dumps(rows, indent=1) + "\n")
    for recal in sorted({r["bn_recalibration"] for r in rows}, reverse=True):
        for label in ("pytorch 1e-5/0.1", "published 1e-3/0.01"):
            accs = [r["accuracy"] for r in rows if r["bn_recalibration"] == recal and r["bn"] == label]
            print(f"recalibration {recal:4d} {label:20s} mean accuracy {statistics.mean(accs):.4f} over {len(accs)}")


if __name__ == "__main__":
    main()
