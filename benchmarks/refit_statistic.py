"""Which timing statistic should a device's `ops` predictor be fitted on? Refits it offline on each
statistic its calibration networks were measured with (the median of all runs, of the quiet runs) and
scores both on the same held-out networks against the same plain timing loop. No timing: everything comes
from one `nas latency validate --json` output (`calibration_measurements` and `networks`, written since
2026-12-01c).

    python benchmarks/refit_statistic.py VALIDATE_JSON [VALIDATE_JSON ...]

Prints, per file and statistic: within +-10% / +-5% of the plain loop, Kendall tau, median signed error,
and how the project's own measurement of the held-out networks under that statistic agrees with the loop.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path
from typing import Any

from scipy.stats import kendalltau

from nas.arch import from_string
from nas.latency._pred_ops import feature_names, features, fit
from nas.latency._profiles import load_profile

STATISTICS = {"all runs": ("all_median_ms", "project_all_ms"), "quiet runs": ("quiet_median_ms", "project_quiet_ms")}


def score(pairs: list[tuple[float, float]]) -> str:
    err = [p / m - 1 for p, m in pairs]
    tau = kendalltau([p for p, _ in pairs], [m for _, m in pairs]).statistic
    return (f"{sum(abs(e) <= 0.1 for e in err) / len(err):4.0%} / {sum(abs(e) <= 0.05 for e in err) / len(err):4.0%}"
            f"  tau {tau:.3f}  bias {statistics.median(err):+.3f}")


def refit(result: dict[str, Any], beside: Path) -> None:
    """``beside``: where a profile that is not built in is looked for (as NAME.yaml), e.g. next to the JSON."""
    res, name = result["resolution"], result["profile"]
    profile = load_profile(str(beside / f"{name}.yaml") if (beside / f"{name}.yaml").is_file() else name)
    calib, held = result["calibration_measurements"], [r for r in result["networks"] if r["plain_ms"]]
    print(f"{result['profile']} / {result['space']} at {res}: {len(calib)} calibration networks, {len(held)} held "
          f"out; reported statistic: {result.get('statistic', 'quiet-median')}")
    print(f"  {'fitted on':12s} predictor vs plain loop (+-10% / +-5%)       project's measurement vs plain loop")
    held_features = [features(from_string(r["architecture"]), res) for r in held]
    for name, (calib_key, project_key) in STATISTICS.items():
        points = [(features(from_string(c["architecture"]), res), c[calib_key]) for c in calib if c.get(calib_key)]
        fitted = fit(result["space"], res, points, feature_names(profile))
        predicted = [(fitted.apply(f), r["plain_ms"]) for f, r in zip(held_features, held, strict=True)]
        measured = [(r[project_key], r["plain_ms"]) for r in held if r.get(project_key)]
        print(f"  {name:12s} {score(predicted)}   {score(measured) if measured else '-'}")


def main() -> None:
    for path in sys.argv[1:]:
        refit(json.loads(Path(path).read_text()), Path(path).parent)


if __name__ == "__main__":
    main()
