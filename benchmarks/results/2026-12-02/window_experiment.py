"""Is the project's 5-10% gap to a plain loop its interleaving? The same OpenVINO ShuffleNet files, timed
in one run, two passes, order rotated: the plain loop (``nas.latency._plain``, 5 rounds of 40 runs per
file); the project as it times networks (groups of 4 with the canary, windows of 10 runs); the same with
windows of 40 runs; one network per group without the canary. Raw (unscaled) all-runs medians.

    NAS_HOME=/tmp/x python benchmarks/results/2026-12-02/window_experiment.py OUT.json [N]
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
from pathlib import Path

from nas.arch import to_string
from nas.latency._artifacts import network_artifact
from nas.latency._measure import run_parts
from nas.latency._parts import network_part
from nas.latency._profiles import load_profile
from nas.latency._validate import _hold, plain_medians
from nas.spaces import load_space

profile = load_profile("cpu-openvino-1t")
n = int(sys.argv[2]) if len(sys.argv) > 2 else 12
archs = [load_space("shufflenet").sample(seed=1000 + i).with_(resolution=224) for i in range(n)]
parts = [network_part(a, 224) for a in archs]
wide = profile.timing.model_copy(update={"window_runs": 40, "min_windows": 5})
alone = profile.model_copy(update={"speed_canary": False})
variants = {
    "project: groups of 4 + canary, windows of 10": (profile, profile.timing, 4),
    "groups of 4 + canary, windows of 40": (profile, wide, 4),
    "one network per group, no canary, windows of 10": (alone, profile.timing, 1),
}
out: dict[str, list[list[float]]] = {name: [] for name in [*variants, "plain loop"]}
with tempfile.TemporaryDirectory() as held:
    for rep in range(2):
        names = [*variants, "plain loop"]
        for name in names[rep:] + names[:rep]:
            if name == "plain loop":
                paths = [_hold(network_artifact(p.spec, "openvino", batch=1), Path(held)) for p in parts]
                out[name].append([m[0] for m in plain_medians(profile, paths)])
            else:
                prof, timing, group = variants[name]
                run = run_parts(prof, parts, timing=timing, group=group)
                out[name].append([r.all_median_ms or r.median_ms for r in run.results])  # type: ignore[union-attr]
            print(rep, name, flush=True)
plain = [statistics.median(v) for v in zip(*out["plain loop"], strict=True)]
summary = {}
for name in variants:
    per = [statistics.median(v) for v in zip(*out[name], strict=True)]
    ratios = [a / b for a, b in zip(per, plain, strict=True)]
    summary[name] = {"median_ratio_to_plain": statistics.median(ratios),
                     "within_10": sum(abs(r - 1) <= 0.1 for r in ratios) / n,
                     "within_5": sum(abs(r - 1) <= 0.05 for r in ratios) / n}
    print(f"{name:50s} x{summary[name]['median_ratio_to_plain']:.3f} of the plain loop; "
          f"{summary[name]['within_10']:.0%} within +-10%, {summary[name]['within_5']:.0%} within +-5%")
plain_passes = out["plain loop"]
print("plain loop pass 2 / pass 1:", f"{statistics.median(b / a for a, b in zip(*plain_passes, strict=True)):.3f}")
Path(sys.argv[1]).write_text(json.dumps({"architectures": [to_string(a) for a in archs], "raw": out,
                                         "summary": summary}, indent=1))
