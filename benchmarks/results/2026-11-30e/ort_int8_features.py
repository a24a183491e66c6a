"""Offline: the `ops` fit of ONNX Runtime int8 with and without its own features, on 2026-11-30d's measurements.

    python benchmarks/results/2026-11-30e/ort_int8_features.py

Reads ``../2026-11-30d/ops-ort-int8-networks-*.json`` (40 calibration + 100 held-out networks each, measured
on the previous VM) and prints, for the shared features and for ``cpu-ort-int8-1t``'s (shared + avg-pool and
unaligned-channel costs): fitted on the 40 calibration networks and scored on the held-out ones against their
plain loop; fitted on the calibration networks plus the first k held-out ones and scored on the last 50;
leave-one-out over all 140. No timing.
"""

import json
import math
from pathlib import Path

import numpy as np
from scipy.stats import kendalltau

from nas.arch import parse_architecture
from nas.latency import load_profile
from nas.latency._pred_ops import feature_names, features, fit

HERE = Path(__file__).resolve().parent


def score(pred: np.ndarray, plain: np.ndarray) -> str:
    return f"{np.mean(abs(pred / plain - 1) <= 0.1):.2f} / {kendalltau(pred, plain)[0]:.3f}"


def fitted(space: str, names: tuple[str, ...], train: list[dict[str, float]], ms: np.ndarray,
           test: list[dict[str, float]]) -> np.ndarray:
    f = fit(space, 224, list(zip(train, ms, strict=True)), names)
    return np.array([f.apply(t) for t in test])


def main() -> None:
    sets = {"shared": feature_names(load_profile("cpu-litert-1t")),
            "cpu-ort-int8-1t": feature_names(load_profile("cpu-ort-int8-1t"))}
    for space in ("mobilenetv3-small", "shufflenet"):
        nets = json.loads((HERE.parent / "2026-11-30d" / f"ops-ort-int8-networks-{space}.json").read_text())["networks"]
        feats = [features(parse_architecture(n["architecture"]), 224) for n in nets]
        ms = np.array([n["median_ms"] for n in nets])
        held = [i for i, n in enumerate(nets) if n["held_out"]]
        held.sort(key=lambda i: nets[i]["order"])
        base = [i for i, n in enumerate(nets) if not n["held_out"]]
        for label, names in sets.items():
            def run(train: list[int], test: list[int], names: tuple[str, ...] = names,
                    space: str = space, feats: list[dict[str, float]] = feats, ms: np.ndarray = ms) -> np.ndarray:
                return fitted(space, names, [feats[i] for i in train], ms[train], [feats[i] for i in test])

            plain = np.array([nets[i]["plain_ms"] for i in held])
            cells = [f"calibration -> 100 held-out {score(run(base, held), plain)}"]
            for k in (0, 20, 40, 50):
                cells.append(f"+{k}: {score(run(base + held[:k], held[50:]), plain[50:])}")
            loo = np.array([run([j for j in range(len(nets)) if j != i], [i])[0] / ms[i] - 1
                            for i in range(len(nets))])
            cells.append(f"leave-one-out {np.mean(abs(loo) <= 0.1):.2f}, rms {math.sqrt(float((loo ** 2).mean())):.3f}")
            print(f"{space:18s} {label:16s} " + " | ".join(cells), flush=True)


if __name__ == "__main__":
    main()
