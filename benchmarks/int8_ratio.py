"""fp32 vs int8 median latency of one network per runtime, timed interleaved in one pinned process.

    python benchmarks/int8_ratio.py [--network mobilenetv3-small-1.0] [--resolution 224] [--seconds 20]

For each runtime with an int8 twin (ONNX Runtime, LiteRT/XNNPACK) both files are prepared exactly as the
built-in profiles do (``cpu-ort-1t`` / ``cpu-ort-int8-1t``, ``cpu-litert-1t`` / ``cpu-litert-int8-1t``),
then timed window by window in turn (``nas.latency.time_interleaved``), so a burst of load hits both.
Prints one JSON line per runtime: medians and the int8 / fp32 ratio. OpenVINO has no int8 profile.
"""

from __future__ import annotations

import argparse
import json
import os

from nas.arch import load_architecture
from nas.latency import BUILT_IN, TimingSettings, time_interleaved
from nas.latency._parts import network_part
from nas.latency._runtimes import runtime_for

PAIRS = {"onnxruntime": ("cpu-ort-1t", "cpu-ort-int8-1t"), "litert": ("cpu-litert-1t", "cpu-litert-int8-1t")}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--network", default="mobilenetv3-small-1.0")
    parser.add_argument("--resolution", type=int, default=224)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[-1:])
    part = network_part(load_architecture(args.network), args.resolution)
    timing = TimingSettings(max_seconds=args.seconds, max_runs=100_000, target_ci=0.001, min_windows=50,
                            wait_for_quiet=0)
    for runtime, (fp32, int8) in PAIRS.items():
        runs = []
        for name in (fp32, int8):
            rt = runtime_for(BUILT_IN[name])
            rt.configure()
            runs.append(rt.prepare(part))
        a, b = time_interleaved(runs, timing)
        print(json.dumps({"runtime": runtime, "network": args.network, "resolution": args.resolution,
                          "fp32_median_ms": round(a.median_ms, 3), "int8_median_ms": round(b.median_ms, 3),
                          "int8_over_fp32": round(b.median_ms / a.median_ms, 3), "runs": [a.runs, b.runs],
                          "disturbed": [round(a.disturbed, 2), round(b.disturbed, 2)]}), flush=True)


if __name__ == "__main__":
    main()
