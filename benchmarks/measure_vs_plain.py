"""`nas latency measure` against a plain timing loop of the same deployed file, per device. One command.

    python benchmarks/measure_vs_plain.py [--network mobilenetv3-small-1.0] [--rounds 6] [--out DIR]

The figure a user compares with their own tools: for each local device profile, the file
``nas arch export NET --device D`` writes (exactly what the profile times) is timed by a plain loop
(``python -m nas.latency._plain``: median of 200 runs after 20 warm-up runs, 1 thread, pinned to the
profile's CPU under the project's measuring lock), and the network by ``nas latency measure NET --device D
--no-cache --json`` (the project's statistic: quiet-run median of a fresh pinned process, scaled by the
speed canary; its unscaled value too). Both are run through the CLI in a fresh ``NAS_HOME``, as a user
would. The host drifts, so every round times every device in a shuffled order, each device's two
timings back to back in alternating order, and the ratio project / plain is taken per round; the
table gives the median over rounds with its range. Agreement: median ratio within 0.9-1.1.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

NAS = str(Path(sys.executable).parent / "nas")  # the CLI of this interpreter's environment
DEVICES = ["cpu-ort-1t", "cpu-ort-int8-1t", "cpu-openvino-1t", "cpu-litert-1t", "cpu-litert-int8-1t"]


def _run(cmd: list[str], env: dict[str, str]) -> str:
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return done.stdout


def export(network: str, device: str, directory: Path, env: dict[str, str]) -> Path:
    """The device's deployed file, written by the CLI (OpenVINO: the .xml beside its .bin)."""
    from nas.export import SUFFIX
    from nas.latency._artifacts import deployed_format
    from nas.latency._profiles import load_profile

    fmt = deployed_format(load_profile(device))
    if fmt is None:
        raise SystemExit(f"{device} runs PyTorch modules: no deployed file to time in a plain loop")
    path = directory / f"{device}{SUFFIX[fmt[0]]}"
    _run([NAS, "arch", "export", network, "--device", device, "-o", str(path)], env)
    return path


def plain(path: Path, cpus: list[int], env: dict[str, str]) -> float:
    out = _run([sys.executable, "-m", "nas.latency._plain", str(path), "--runs", "200", "--warmup", "20",
                "--threads", "1", "--cpus", ",".join(map(str, cpus)), "--json"], env)
    return float(json.loads(out.strip().splitlines()[-1])["latency"]["median_ms"])


def project(network: str, device: str, env: dict[str, str]) -> dict[str, Any]:
    out = json.loads(_run([NAS, "latency", "measure", network, "--device", device, "--no-cache", "--json"], env))
    return {"median_ms": out["median_ms"], "p10_ms": out["p10_ms"], "p90_ms": out["p90_ms"],
            "raw_median_ms": out["conditions"].get("raw_median_ms", out["median_ms"]),
            "speed_factor": out["conditions"].get("speed_factor"), "disturbed": out["disturbed"],
            "other_cpus": out["conditions"].get("load", {}).get("other_cpus")}


def summarise(rows: list[dict[str, Any]], device: str) -> dict[str, Any]:
    mine = [r for r in rows if r["device"] == device]
    ratio = sorted(r["project"]["median_ms"] / r["plain_ms"] for r in mine)
    raw = sorted(r["project"]["raw_median_ms"] / r["plain_ms"] for r in mine)
    return {"device": device, "rounds": len(mine),
            "plain_ms": statistics.median(r["plain_ms"] for r in mine),
            "project_ms": statistics.median(r["project"]["median_ms"] for r in mine),
            "ratio": statistics.median(ratio), "ratio_min": ratio[0], "ratio_max": ratio[-1],
            "raw_ratio": statistics.median(raw), "agrees": 0.9 <= statistics.median(ratio) <= 1.1}


def render(summary: list[dict[str, Any]], network: str) -> str:
    lines = [f"{network}, 224, batch 1, 1 thread: project (`nas latency measure`) / plain loop (median of 200)",
             "", "| device | plain median | project median | project / plain, median of rounds [range] "
             "| unscaled / plain | within 10% |", "|---|---|---|---|---|---|"]
    for s in summary:
        lines.append(f"| `{s['device']}` | {s['plain_ms']:.3f} ms | {s['project_ms']:.3f} ms | "
                     f"{s['ratio']:.3f} [{s['ratio_min']:.3f}-{s['ratio_max']:.3f}] ({s['rounds']} rounds) | "
                     f"{s['raw_ratio']:.3f} | {'yes' if s['agrees'] else 'no'} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--network", default="mobilenetv3-small-1.0")
    parser.add_argument("--devices", nargs="*", default=DEVICES)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="Directory for measure-vs-plain.json.")
    args = parser.parse_args()
    from nas.latency._profiles import load_profile

    rng = random.Random(args.seed)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="nas-measure-vs-plain-") as home:
        env = {**os.environ, "NAS_HOME": home, "NAS_ARTIFACT_CACHE": str(Path(home) / "artifacts"),
               "OMP_NUM_THREADS": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
        files = {d: export(args.network, d, Path(home), env) for d in args.devices}
        cpus = {d: load_profile(d).pinned_cpus() for d in args.devices}
        start = time.time()
        for k in range(args.rounds):
            order = list(args.devices)
            rng.shuffle(order)
            for d in order:
                if k % 2 == 0:
                    ms, mine = plain(files[d], cpus[d], env), project(args.network, d, env)
                else:
                    mine, ms = project(args.network, d, env), plain(files[d], cpus[d], env)
                rows.append({"round": k, "device": d, "plain_ms": ms, "project": mine})
                print(f"round {k + 1}/{args.rounds} {d}: plain {ms:.3f} ms, project {mine['median_ms']:.3f} ms "
                      f"({time.time() - start:.0f} s)", file=sys.stderr, flush=True)
    summary = [summarise(rows, d) for d in args.devices]
    print(render(summary, args.network))
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "measure-vs-plain.json").write_text(json.dumps(
            {"network": args.network, "rounds": args.rounds, "summary": summary, "rows": rows,
             "load_average_end": os.getloadavg()}, indent=1))
    return 0 if all(s["agrees"] for s in summary) else 1


if __name__ == "__main__":
    sys.exit(main())
