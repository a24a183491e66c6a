"""Rank fidelity on mobilenetv3-small without grouped 1x1 convs, from a supernet checkpoint.

    python benchmarks/supernet_dense_probe.py SPACE.yaml CHECKPOINT.pt OUT.json

Written for the 2026-11-29c run: ``supernet_fidelity.py --space .../mobilenetv3-small-dense.yaml`` was
stopped after epoch 12 of 20 for time (a loaded machine), so this evaluates that checkpoint one-shot on
the same 16 subnets the fidelity script samples (seed 2026) and proxy-trains them under seeds 0 and 1.
The checkpoint was written by commit d195b5a's supernet (per-count 1x1 convs around a shared depthwise);
with a single group count that is the current network under other parameter names, hence ``remap``.
"""

from __future__ import annotations

import json
import random
import re
import sys
from typing import Any


def remap(key: str) -> str:
    m = re.match(r"(stages\.\d+\.\d+\.)(expand|expand_bn|project|project_bn)\.1\.(.*)", key)
    if m:
        return f"{m.group(1)}paths.1.{m.group(2)}.{m.group(3)}"
    m = re.match(r"(stages\.\d+\.\d+\.)(dw|dw_bn|se)\.(.*)", key)
    if m:
        return f"{m.group(1)}paths.1.{m.group(2)}.{m.group(3)}"
    return key


def main() -> None:
    import torch
    from scipy.stats import kendalltau

    from nas.data import DatasetSpec, load_dataset
    from nas.proxies import TrainRecipe, train_and_evaluate
    from nas.proxies._train import _prepare
    from nas.spaces import load_space
    from nas.supernet import Supernet, evaluate_subnet, largest_architecture, smallest_architecture

    torch.set_num_threads(1)
    space_file, ckpt, out = sys.argv[1:4]
    sp = load_space(space_file)
    blob = torch.load(ckpt, weights_only=True)
    net = Supernet(sp, 10)
    net.load_state_dict({remap(k): v for k, v in blob["model"].items()})
    data = load_dataset(DatasetSpec(kind="digits", resolution=32))
    tx, _, vx, vy = _prepare(data, TrainRecipe(resolution=32), torch.device("cpu"))
    cx = tx[torch.randperm(len(tx), generator=torch.Generator().manual_seed(1))[:512]]
    rng = random.Random(2026)
    archs = [sp.sample(rng=rng, num_classes=10) for _ in range(16)]
    rec: dict[str, Any] = {
        "benchmark": "supernet rank fidelity, mobilenetv3-small without grouped 1x1 convs",
        "note": f"checkpoint after epoch {blob['state']['epoch']} of 20 (run stopped for time on a loaded machine: "
                "~8 helpers on 2 cores); stand-alone: the search's default recipe (3 epochs), seeds 0 and 1",
        "space": space_file, "history": blob["state"]["history"],
        "largest": evaluate_subnet(net, largest_architecture(sp, 10), cx, vx, vy).accuracy,
        "smallest": evaluate_subnet(net, smallest_architecture(sp, 10), cx, vx, vy).accuracy,
        "subnets": [{"arch_hash": a.hash, "oneshot_accuracy": evaluate_subnet(net, a, cx, vx, vy).accuracy,
                     "standalone": {}} for a in archs]}
    for seed in (0, 1):
        for entry, arch in zip(rec["subnets"], archs, strict=True):
            res = train_and_evaluate(arch, data, TrainRecipe(epochs=3, resolution=32, seed=seed, threads=1))
            entry["standalone"][str(seed)] = {"accuracy": res.accuracy, "seconds": round(res.train_seconds, 2)}
            with open(out, "w") as f:
                f.write(json.dumps(rec, indent=2) + "\n")
    one = [e["oneshot_accuracy"] for e in rec["subnets"]]
    s0 = [e["standalone"]["0"]["accuracy"] for e in rec["subnets"]]
    s1 = [e["standalone"]["1"]["accuracy"] for e in rec["subnets"]]
    mean = [(a + b) / 2 for a, b in zip(s0, s1, strict=True)]
    rec["kendall_tau"] = {"oneshot_vs_standalone_mean": float(kendalltau(one, mean).statistic),
                          "oneshot_vs_standalone_seed0": float(kendalltau(one, s0).statistic),
                          "oneshot_vs_standalone_seed1": float(kendalltau(one, s1).statistic),
                          "standalone_seed0_vs_seed1": float(kendalltau(s0, s1).statistic)}
    with open(out, "w") as f:
        f.write(json.dumps(rec, indent=2) + "\n")
    print(json.dumps(rec["kendall_tau"]))  # noqa: T201


if __name__ == "__main__":
    main()
