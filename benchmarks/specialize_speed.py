"""How long `nas supernet specialize` takes per phase, on a small real supernet over a shipped space.

The supernet is trained briefly (its accuracy is not the point here; the time of each phase is), the
device's latency table is synthetic (each part's entry from its multiply-adds, scaled so that three
measured networks are predicted right on average: the lookup code path is the real one, only its numbers
are made up, so no multi-hour table build is needed), and the
finalists are measured for real on the device profile. Two specialisations run: the first fits and
caches the accuracy predictor, the second (another T) reuses it: that one is the cost of "a new device
and T". Writes the raw JSON.

    python benchmarks/specialize_speed.py --space mobilenetv2 --device cpu-ort-1t -o result.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--space", default="mobilenetv2")
    parser.add_argument("--device", default="cpu-ort-1t")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--candidates", type=int, default=5000)
    parser.add_argument("--supernet", type=Path, help="A supernet.pt to reuse (its cached predictor too).")
    parser.add_argument("-o", "--output", type=Path, required=True)
    args = parser.parse_args()

    from nas.latency import LatencyPredictor, enumerate_parts, load_profile, measure_many
    from nas.spaces import parse_space
    from nas.supernet import load_supernet, parse_supernet_spec, train_supernet
    from nas.supernet._specialize import SpecializeSettings, specialize

    work = Path(tempfile.mkdtemp(prefix="specialize-"))
    spec = parse_supernet_spec({"name": "bench", "space": args.space,
                                "dataset": {"kind": "digits", "resolution": 32, "subset": 600},
                                "recipe": {"epochs": args.epochs, "batch_size": 64, "resolution": 32, "threads": 1},
                                "sandwich": {"random": 1}})
    start = time.perf_counter()
    if args.supernet is None:
        train_supernet(spec, work / "supernet")
    train_seconds = time.perf_counter() - start
    loaded = load_supernet(str(args.supernet or work / "supernet" / "supernet.pt"))
    space = loaded.net.space
    resolution = space.definition.resolution[0]
    ten = parse_space({**space.definition.model_dump(mode="json"), "num_classes": 10})  # the supernet's heads
    entries = {p.key: _part_ms(p) for p in enumerate_parts(ten, resolution)}
    profile = load_profile(args.device)
    url = f"sqlite:///{work / 'nas.db'}"
    probe = [space.sample(seed=10_000 + i, num_classes=10) for i in range(3)]  # scale the made-up entries
    raw = LatencyPredictor(args.device, "synthetic", entries)
    scale = statistics.median(m.stats.median_ms / raw.predict(a) for a, m in
                              zip(probe, measure_many(probe, profile, database_url=url), strict=True))
    predictor = LatencyPredictor(args.device, "synthetic", {k: v * scale for k, v in entries.items()})
    predicted = [predictor.predict(space.sample(seed=i, num_classes=10)) for i in range(200)]
    runs = []
    for target in (statistics.median(predicted), statistics.quantiles(predicted, n=4)[0]):
        settings = SpecializeSettings(samples=args.samples, candidates=args.candidates)
        result = specialize(loaded, predictor.predict, lambda archs: measure_many(archs, profile, database_url=url),
                            target, settings)
        runs.append(result.to_dict())
    doc = {"space": args.space, "device": args.device, "supernet_train_seconds": round(train_seconds, 1),
           "synthetic_table_scale": round(scale, 4),
           "note": "shared 2-core machine; synthetic table values, real lookup code; finalists measured for real",
           "runs": runs}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(doc, indent=2) + "\n")
    for r in runs:
        print(json.dumps({"target_ms": r["target_ms"], "phases": r["phase_seconds"],  # noqa: T201
                          "per_second": r["candidates_per_second"], "cached": r["predictor"]["cached"]}))


def _part_ms(part) -> float:  # type: ignore[no-untyped-def]
    """A block's multiply-adds (1 ms per 100 M); 0.02 ms for the stem, head and identity entries."""
    from nas.arch import Block

    if part.kind != "block":
        return 0.02
    b, size = Block.model_validate(part.spec["block"]), int(part.spec["size"])  # input side; stride ignored
    return (part.spec["cin"] * b.mid + b.mid * b.kernel**2 + b.mid * b.out) * size * size / 1e8


if __name__ == "__main__":
    main()
