"""Offline: the `ops` fit of LiteRT int8 with its hard-swish split (int8 / float), on 2026-11-30d's measurements.

    python benchmarks/results/2026-11-30f/litert_int8_features.py

Reads ``../2026-11-30d/ops-litert-int8-networks-*.json`` (40 calibration + 50 held-out networks each, measured
on an earlier VM) and prints, per feature set: fitted on the 40 calibration networks and scored on the held-out
ones against their plain loop; fitted on the calibration networks plus the first k held-out ones and scored on
the last 25; leave-one-out over all 90 against the project's measurement. No timing.
"""

import json
import math
from pathlib import Path

import numpy as np
from scipy.stats import kendalltau

from nas.arch import parse_architecture
from nas.latency import load_profile
from nas.latency._pred_ops import FEATURES, feature_names, features, fit

HERE = Path(__file__).resolve().parent
SETS = {"shared": FEATURES,
        "cpu-litert-int8-1t": feature_names(load_profile("cpu-litert-int8-1t"))}  # hswish split int8 / float


def score(pred: np.ndarray, plain: np.ndarray) -> str:
    return f"{np.mean(abs(pred / plain - 1) <= 0.1):.2f} / {kendalltau(pred, plain)[0]:.3f}"


def main() -> None:
    for space in ("mobilenetv3-small", "shufflenet"):
        path = HERE.parent / "2026-11-30d" / f"ops-litert-int8-networks-{space}.json"
        nets = json.loads(path.read_text())["networks"]
        feats = [features(parse_architecture(n["architecture"]), 224) for n in nets]
        ms = np.array([n["median_ms"] for n in nets])
        held = sorted((i for i, n in enumerate(nets) if n["held_out"]), key=lambda i: nets[i]["order"])
        base = [i for i, n in enumerate(nets) if not n["held_out"]]
        plain = np.array([nets[i]["plain_ms"] for i in held])
        for label, names in SETS.items():
            def run(train: list[int], test: list[int], names: tuple[str, ...] = names,
                    feats: list[dict[str, float]] = feats, ms: np.ndarray = ms, space: str = space) -> np.ndarray:
                f = fit(space, 224, [(feats[i], ms[i]) for i in train], names)
                return np.array([f.apply(feats[i]) for i in test])

            cells = [f"calibration -> 50 held-out {score(run(base, held), plain)}"]
            for k in (0, 25):
                cells.append(f"+{k}: {score(run(base + held[:k], held[25:]), plain[25:])}")
            loo = np.array([run([j for j in range(len(nets)) if j != i], [i])[0] / ms[i] - 1
                            for i in range(len(nets))])
            cells.append(f"leave-one-out {np.mean(abs(loo) <= 0.1):.2f}, rms {math.sqrt(float((loo ** 2).mean())):.3f}")
            print(f"{space:18s} {label:19s} " + " | ".join(cells), flush=True)


if __name__ == "__main__":
    main()
