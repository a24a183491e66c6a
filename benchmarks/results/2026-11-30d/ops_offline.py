"""Offline refits of the `ops` predictor on the int8 devices' measurements of this run (no timing).

    python benchmarks/results/2026-11-30d/ops_offline.py export HOME PROFILE VALIDATE.json OUT.json
    python benchmarks/results/2026-11-30d/ops_offline.py fit OUT.json

``export`` writes every network the run measured (the 40 calibration networks and the held-out ones,
with the project's median and, for held-out ones, the plain loop's) from the run's database. ``fit``
refits the shipped feature set (1) on the calibration networks, scored on the held-out ones, and by
leave-one-out over all; (2) on the calibration networks plus the first k held-out ones, scored on the
last half of them against the plain loop; (3) with two more features, the MACs and elements of convolutions whose
per-group channel counts are not multiples of 4, 8 or 16 (int8 kernels' slow path).
"""

import json
import math
import sys

import numpy as np
from scipy.optimize import nnls
from scipy.stats import kendalltau

from nas.arch import parse_architecture
from nas.latency import _pred_ops as po


def export(home: str, profile: str, validate_json: str, out: str) -> None:
    from nas.latency import _cache
    from nas.latency._fingerprint import fingerprint
    from nas.latency._profiles import load_profile

    prof = load_profile(profile)
    held = {n["arch_hash"]: n for n in json.load(open(validate_json))["networks"]}
    order = list(held)
    rows = []
    for r in _cache.get_measurements(f"sqlite:///{home}/nas.db", prof.name, fingerprint(prof)):
        arch = json.loads(r["architecture"])
        a = parse_architecture(arch)
        if a.space:
            rows.append({"architecture": arch, "median_ms": r["median_ms"], "held_out": a.hash in held,
                         "order": order.index(a.hash) if a.hash in held else None,
                         "plain_ms": held[a.hash]["plain_ms"] if a.hash in held else None})
    json.dump({"profile": profile, "networks": rows}, open(out, "w"))


def odd_features(mult: int):  # type: ignore[no-untyped-def]
    orig = po._Counts.conv

    def feats(a):  # type: ignore[no-untyped-def]
        extra = {"odd_macs": 0.0, "odd_elems": 0.0}

        def conv(self, cin, cout, size, kernel=1, stride=1, groups=1, act=None):  # type: ignore[no-untyped-def]
            out = po._conv_out(size, kernel, stride)
            depthwise = groups == cin and groups > 1
            if not depthwise and ((cin // groups) % mult or (cout // groups) % mult):
                extra["odd_macs"] += kernel * kernel * (cin // groups) * cout * out * out
                extra["odd_elems"] += cin * size * size + cout * out * out
            return orig(self, cin, cout, size, kernel, stride, groups, act)

        po._Counts.conv = conv
        try:
            f = dict(po.features(a, 224))
        finally:
            po._Counts.conv = orig
        return {**f, **extra}

    return feats


def _fit(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    scale = np.maximum(np.abs(x).max(0), 1e-12)
    coef, _ = nnls((x / scale) / y[:, None], np.ones(len(y)))
    return coef / scale


def fit(path: str) -> None:
    nets = json.load(open(path))["networks"]
    archs = [parse_architecture(n["architecture"]) for n in nets]
    y = np.array([n["median_ms"] for n in nets])
    held = np.array([n["held_out"] for n in nets])
    variants = [("ops (as shipped)", lambda a: po.features(a, 224), po.FEATURES)]
    variants += [(f"ops + convs with channels % {m} != 0", odd_features(m), (*po.FEATURES, "odd_macs", "odd_elems"))
                 for m in (4, 8, 16)]
    for label, feats, names in variants:
        x = np.array([[feats(a)[k] for k in names] for a in archs])
        rel = x[held] @ _fit(x[~held], y[~held]) / y[held] - 1
        loo = np.array([x[i] @ _fit(x[np.arange(len(y)) != i], y[np.arange(len(y)) != i]) / y[i] - 1
                        for i in range(len(y))])
        rms = math.sqrt((loo ** 2).mean())
        print(f"{label:40s} fitted on calibration, held-out vs project: +-10% {np.mean(abs(rel) <= .1):.2f} | "
              f"leave-one-out over {len(y)}: +-10% {np.mean(abs(loo) <= .1):.2f}, rms {rms:.3f}")
    ordered = sorted((n for n in nets if n["held_out"]), key=lambda n: n["order"])
    half = len(ordered) // 2  # fitted on the calibration networks + the first k held-out, scored on the rest
    test = ordered[half:]
    base = [n for n in nets if not n["held_out"]]
    for k in sorted({0, half * 2 // 5, half * 4 // 5, half}):
        train = base + ordered[:k]
        def row(n):  # type: ignore[no-untyped-def]
            feats = po.features(parse_architecture(n["architecture"]), 224)
            return [feats[f] for f in po.FEATURES]

        coef = _fit(np.array([row(n) for n in train]), np.array([n["median_ms"] for n in train]))
        pred = np.array([row(n) for n in test]) @ coef
        plain = np.array([n["plain_ms"] for n in test])
        print(f"fitted on {len(train):3d} networks, last {len(test)} held-out vs plain loop: +-10% "
              f"{np.mean(abs(pred / plain - 1) <= .1):.2f}, tau {kendalltau(pred, plain)[0]:.3f}")


if __name__ == "__main__":
    if sys.argv[1] == "export":
        export(*sys.argv[2:6])
    else:
        fit(sys.argv[2])
