"""The ops predictor refitted on cpu-ort-1t networks measured on a quiet VM (benchmarks/results/2026-11-28c):
fit on 24/40/60 networks spanning the weight range of 160 shuffled ones, score the rest. From the repository
root: ``python benchmarks/results/2026-11-29c/device-predictor/ops_on_ort_2026-11-28c.py``."""

from __future__ import annotations

import glob
import json
import random

from scipy.stats import kendalltau

from nas.cost import estimate
from nas.latency._pred_ops import features, fit
from nas.spaces import load_space

data: dict[str, dict[str, tuple]] = {}
for path in glob.glob("benchmarks/results/2026-11-28c/latency/*.json"):
    if "rescored" in path or "spanning" in path:
        continue
    for run in json.load(open(path)):
        if run["resolution"] != 224:
            continue
        space = load_space(run["space"])
        for i, row in enumerate(run["networks"]):  # [hash, predicted, measured, ...]
            arch = space.sample(seed=run.get("first_seed", 0) + i).with_(resolution=224)
            if arch.hash != row[0]:  # measured before MobileNetV3 got its published BatchNorm settings
                arch = arch.model_copy(update={"batchnorm": None})
            assert arch.hash == row[0]
            data.setdefault(run["space"], {})[arch.hash] = (arch, row[2])
for name, nets in sorted(data.items()):
    items = list(nets.values())
    random.Random(0).shuffle(items)
    pool, test = items[:160], items[160:]
    ranked = sorted(pool, key=lambda t: estimate(t[0]).total.params)
    for n in (24, 40, 60, 80, 120):
        cal = [ranked[round(k * (len(ranked) - 1) / (n - 1))] for k in range(n)]
        fitted = fit(name, 224, [(features(a), m) for a, m in cal])
        pred, meas = [fitted.apply(features(a)) for a, _ in test], [m for _, m in test]
        w10 = sum(abs(p / m - 1) <= 0.1 for p, m in zip(pred, meas, strict=True)) / len(test)
        w5 = sum(abs(p / m - 1) <= 0.05 for p, m in zip(pred, meas, strict=True)) / len(test)
        tau = kendalltau(pred, meas).statistic
        print(f"{name} cal {n} test {len(test)} within10 {w10:.0%} within5 {w5:.0%} tau {tau:.3f} "
              f"fit_rms {fitted.rms_rel:.3f}")
