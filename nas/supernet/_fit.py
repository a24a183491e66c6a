"""Fit an accuracy predictor from a supernet: evaluate random subnets one-shot, hold some out to report
how well the predictor ranks unseen ones, then refit on all of them."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

from nas.supernet._predictor import AccuracyPredictor
from nas.supernet._store import LoadedSupernet


def fit_predictor(loaded: LoadedSupernet, samples: int, *, seed: int = 0, calibration: int = 512,
                  holdout: float = 0.2, on_sample: Callable[[int, int], None] | None = None
                  ) -> tuple[AccuracyPredictor, dict[str, Any]]:
    """(predictor fitted on every sample, report with the held-out Kendall tau and timings)."""
    from scipy.stats import kendalltau

    from nas.supernet._oneshot import evaluate_subnet, oneshot_data

    net = loaded.net
    calib_x, val_x, val_y = oneshot_data(loaded, calibration, seed)
    rng = random.Random(seed)
    archs = [net.space.sample(rng=rng, num_classes=net.num_classes) for _ in range(samples)]
    accs, seconds = [], []
    for i, arch in enumerate(archs):
        result = evaluate_subnet(net, arch, calib_x, val_x, val_y)
        accs.append(result.accuracy)
        seconds.append(result.seconds)
        if on_sample is not None:
            on_sample(i + 1, samples)
    cut = max(4, int(round(samples * (1 - holdout))))
    report: dict[str, Any] = {"samples": samples, "oneshot_seconds_mean": sum(seconds) / len(seconds),
                              "accuracy_min": min(accs), "accuracy_max": max(accs)}
    if samples - cut >= 3:
        held = AccuracyPredictor.fit(net.space, archs[:cut], accs[:cut], seed=seed)
        predicted = held.predict(archs[cut:])
        report["holdout"] = samples - cut
        report["holdout_kendall_tau"] = float(kendalltau(predicted, accs[cut:]).statistic)
        report["holdout_mae"] = float(sum(abs(p - a) for p, a in zip(predicted, accs[cut:], strict=True))
                                      / (samples - cut))
    predictor = AccuracyPredictor.fit(net.space, archs, accs, seed=seed)
    start = time.perf_counter()
    probe = [net.space.sample(rng=rng, num_classes=net.num_classes) for _ in range(200)]
    predictor.predict(probe)
    report["predict_per_second"] = round(200 / max(time.perf_counter() - start, 1e-9))
    return predictor, report
