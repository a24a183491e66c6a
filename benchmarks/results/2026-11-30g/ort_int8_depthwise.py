"""Offline: where ONNX Runtime int8's per-operator fit went wrong on ShuffleNet, and the fix.

    python benchmarks/results/2026-11-30g/ort_int8_depthwise.py profile FILES...   # writes conv-nodes.jsonl
    python benchmarks/results/2026-11-30g/ort_int8_depthwise.py analyze            # depthwise table
    python benchmarks/results/2026-11-30g/ort_int8_depthwise.py fit                # with / without the term

``profile``: each int8 ``.onnx`` (``nas arch export ARCH --device cpu-ort-int8-1t``) run 60 times under ORT's
profiler, one thread, pinned; one line per ``QLinearConv`` node (kernel, groups, channels, map sizes, median
microseconds of runs 21-60). ``analyze``: depthwise node times by channel count at each (kernel, map): a
count that is a multiple of 16 is 2.5-3x cheaper per MAC. ``fit``: the ``ops`` fit of ``cpu-ort-int8-1t``
with and without ``dw_unaligned_macs`` on 2026-11-30d's measured networks (no timing).
"""

import collections
import json
import math
import os
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
NODES = HERE / "conv-nodes.jsonl"


def profile(files: list[str]) -> None:
    import onnx
    import onnxruntime as ort

    os.sched_setaffinity(0, {0})
    with NODES.open("a") as fh:
        for path in files:
            so = ort.SessionOptions()
            so.intra_op_num_threads = so.inter_op_num_threads = 1
            so.optimized_model_filepath = path + ".opt"
            so.enable_profiling = True
            session = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
            attrs = {n.name: {a.name: (list(a.ints) if a.ints else a.i) for a in n.attribute}
                     for n in onnx.load(path + ".opt").graph.node}
            x = np.random.default_rng(0).standard_normal([1, 3, 224, 224], dtype=np.float32)
            for _ in range(60):
                session.run(None, {session.get_inputs()[0].name: x})
            events = json.loads(Path(session.end_profiling()).read_text())
            times: dict[str, list[float]] = collections.defaultdict(list)
            shapes: dict[str, tuple[list[int], list[int]]] = {}
            for e in events:
                node = e.get("cat") == "Node" and e["name"].endswith("_kernel_time")
                if node and e["args"]["op_name"] == "QLinearConv":
                    name = e["name"][: -len("_kernel_time")]
                    times[name].append(e["dur"])
                    a = e["args"]
                    shapes[name] = (next(iter(a["input_type_shape"][0].values())),
                                    next(iter(a["output_type_shape"][0].values())))
            for name, durs in times.items():
                (_, h, _, cin), (_, oh, _, cout) = shapes[name]  # NHWC after ORT's layout transformation
                a = attrs[name]
                fh.write(json.dumps({"file": Path(path).name, "kernel": a["kernel_shape"][0],
                                     "groups": a.get("group", 1), "cin": cin, "cout": cout, "size": h, "out": oh,
                                     "us": float(np.median(durs[20:]))}) + "\n")


def analyze() -> None:
    rows = [json.loads(line) for line in NODES.open()]
    dw = [r for r in rows if r["groups"] == r["cin"] > 1]
    print(f"{len(rows)} QLinearConv nodes, {len(dw)} depthwise, from {len({r['file'] for r in rows})} networks")
    print("depthwise, median us by channel count at each (kernel, input map, output map):")
    by = collections.defaultdict(lambda: collections.defaultdict(list))
    for r in dw:
        by[(r["kernel"], r["size"], r["out"])][r["cin"]].append(r["us"])
    for key in sorted(by):
        print(" ", key, " ".join(f"{c}{'' if c % 16 else '*'}:{np.median(v):.0f}" for c, v in sorted(by[key].items())))
    per_mac = {True: [], False: []}
    for r in dw:
        per_mac[r["cin"] % 16 == 0].append(r["us"] * 1e3 / (r["kernel"] ** 2 * r["cin"] * r["out"] ** 2))
    a, b = np.median(per_mac[True]), np.median(per_mac[False])
    print(f"ns per MAC, median: channels a multiple of 16 (*) {a:.4f} (n = {len(per_mac[True])}), "
          f"not {b:.4f} (n = {len(per_mac[False])}): {b / a:.2f}x")


def fit_offline() -> None:
    from scipy.stats import kendalltau

    from nas.arch import parse_architecture
    from nas.latency import load_profile
    from nas.latency._pred_ops import feature_names, features, fit

    shipped = feature_names(load_profile("cpu-ort-int8-1t"))
    sets = {"without dw_unaligned_macs": tuple(n for n in shipped if n != "dw_unaligned_macs"),
            "with (shipped)": shipped}
    for space in ("shufflenet", "mobilenetv3-small"):
        nets = json.loads((HERE.parent / "2026-11-30d" / f"ops-ort-int8-networks-{space}.json").read_text())["networks"]
        feats = [features(parse_architecture(n["architecture"]), 224) for n in nets]
        ms = np.array([n["median_ms"] for n in nets])
        held = sorted((i for i, n in enumerate(nets) if n["held_out"]), key=lambda i: nets[i]["order"])
        base = [i for i, n in enumerate(nets) if not n["held_out"]]
        plain = np.array([nets[i]["plain_ms"] for i in held])
        for label, names in sets.items():
            def pred(train: list[int], test: list[int], names: tuple[str, ...] = names, space: str = space,
                     feats: list[dict[str, float]] = feats, ms: np.ndarray = ms) -> np.ndarray:
                f = fit(space, 224, [(feats[j], ms[j]) for j in train], names)
                return np.array([f.apply(feats[k]) for k in test])

            p = pred(base, held)
            p80 = pred(base + held[:40], held[50:])
            loo = np.array([pred([j for j in range(len(nets)) if j != i], [i])[0] / ms[i] - 1
                            for i in range(len(nets))])
            print(f"{space:18s} {label:26s} 40 -> 100 held-out vs plain {np.mean(abs(p / plain - 1) <= .1):.2f} / "
                  f"{kendalltau(p, plain)[0]:.3f} | 80 -> last 50 {np.mean(abs(p80 / plain[50:] - 1) <= .1):.2f} / "
                  f"{kendalltau(p80, plain[50:])[0]:.3f} | leave-one-out {np.mean(abs(loo) <= .1):.2f}, "
                  f"rms {math.sqrt(float((loo ** 2).mean())):.3f}", flush=True)


if __name__ == "__main__":
    {"profile": lambda: profile(sys.argv[2:]), "analyze": analyze, "fit": fit_offline}[sys.argv[1]]()
