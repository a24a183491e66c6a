"""Which single choice breaks a supernet's subnet: one-shot accuracy of the largest and smallest subnets
with one dimension changed (group counts, the width), on 200 validation images.

    python benchmarks/supernet_group_probe.py RUN/supernet.pt

Written for 2026-11-29c: it showed that the separate-paths supernet fails on subnets whose paths were
not trained together (the largest with one early block at 2 groups, or at width 0.5), not only on
subnets that mix group counts, and (last rows) that random subnets score as low in the supernet's own
forward with batch statistics: they are not learned, whatever the evaluation (docs/supernet-measurements.md).
"""

from __future__ import annotations

import random
import sys
from typing import Any


def main() -> None:
    import torch

    from nas.supernet import evaluate_subnet, extreme_choices, load_supernet, oneshot_data

    torch.set_num_threads(1)
    loaded = load_supernet(sys.argv[1])
    net, space = loaded.net, loaded.net.space
    calib, val_x, val_y = oneshot_data(loaded, 512)
    big, small = extreme_choices(space, True), extreme_choices(space, False)
    grouped = [k for k in big if k.endswith(".groups") and len(space.dimensions()[k]) > 1]
    cases: list[tuple[str, dict[str, Any]]] = [
        ("largest", {}), ("largest, every block 4 groups", dict.fromkeys(grouped, 4)),
        (f"largest, {grouped[0]}=2", {grouped[0]: 2}), (f"largest, {grouped[-1]}=4", {grouped[-1]: 4}),
        ("largest, width 0.5", {"width": 0.5}), ("smallest", {"__small__": True}),
        ("smallest, every block 1 group", {"__small__": True, **dict.fromkeys(grouped, 1)}),
        (f"smallest, {grouped[0]}=1", {"__small__": True, grouped[0]: 1})]
    for label, change in cases:
        choices = dict(small if change.pop("__small__", False) else big) | change
        arch = space.decode(choices, num_classes=net.num_classes)
        accuracy = evaluate_subnet(net, arch, calib, val_x[:200], val_y[:200]).accuracy
        print(f"| {label} | {accuracy:.3f} |", flush=True)
    # Learned at all? The supernet's own forward with batch statistics (no extraction, no BN re-estimation).
    rng = random.Random(2026)
    for i in range(3):
        arch = space.sample(rng=rng, num_classes=net.num_classes)
        net.train()
        with torch.no_grad():
            batch = float((net(val_x[:256], arch).argmax(1) == val_y[:256]).float().mean())
        oneshot = evaluate_subnet(net, arch, calib, val_x[:256], val_y[:256]).accuracy
        print(f"| random subnet {i}: supernet forward, batch statistics / one-shot | {batch:.3f} / {oneshot:.3f} |")


if __name__ == "__main__":
    main()
