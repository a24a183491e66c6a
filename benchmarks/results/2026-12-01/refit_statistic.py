"""Offline: would the `ops` predictor of a validate run agree better with the plain loop if it were fitted on
the all-runs median of its calibration networks instead of the quiet-run median? No timing: the run's own
database (its 40 calibration measurements carry both statistics) and its JSON (the plain loop's medians).

    python refit_statistic.py VALIDATE_DB VALIDATE_JSON
"""

from __future__ import annotations

import json
import sqlite3
import statistics
import sys

from scipy.stats import kendalltau

from nas.arch import parse_architecture
from nas.latency._pred_ops import feature_names, features, fit
from nas.latency._profiles import load_profile


def main() -> None:
    db, result = sys.argv[1], json.load(open(sys.argv[2]))
    res, profile = result["resolution"], load_profile(result["profile"])
    held = {r["arch_hash"]: r for r in result["networks"]}
    rows = sqlite3.connect(db).execute(
        "select arch_hash, architecture, conditions, median_ms from latency_measurements_v2 order by id").fetchall()
    calib = [r for r in rows if r[0] not in held]
    print(f"{len(calib)} calibration networks, {len(held)} held out")
    for name, y in (("quiet median (as shipped)", lambda r: r[3]),
                    ("all-runs median", lambda r: json.loads(r[2])["all_median_ms"])):
        points = [(features(parse_architecture(json.loads(r[1])), res), y(r)) for r in calib]
        fitted = fit(result["space"], res, points, feature_names(profile))
        arch = {r[0]: parse_architecture(json.loads(r[1])) for r in rows if r[0] in held}
        pred = {h: fitted.apply(features(a, res)) for h, a in arch.items()}
        for ref in ("plain_ms", "project_ms", "project_all_ms"):
            pairs = [(pred[h], held[h][ref]) for h in pred if held[h].get(ref)]
            err = [p / m - 1 for p, m in pairs]
            tau = kendalltau([p for p, _ in pairs], [m for _, m in pairs]).statistic
            print(f"{name:28s} vs {ref:15s} within10 {sum(abs(e) <= 0.1 for e in err) / len(err):.0%}  "
                  f"tau {tau:.3f}  bias {statistics.median(err):+.3f}")


if __name__ == "__main__":
    main()
