"""Does uniform single-path training (SPOS) learn when 1x1 group counts are mixed across blocks?

    python benchmarks/supernet_spos_probe.py MODE STEPS [DISTILL [shared]]

A fresh separate-paths supernet over mobilenetv3-small on digits at 32x32, STEPS steps of 4 random
members on the labels (SGD 0.05, no schedule). MODE: ``mixed`` (every block draws its group count, as
``space.sample`` does), ``one-count`` (one group count per subnet for every block), ``per-stage`` (one
group count per stage), ``dense`` (every 1x1 conv dense); ``shared``: one set of weights for every group
count (``group_weights: shared``). DISTILL (default 0): weight of the feature-level distillation of each
grouped path towards its block's dense path (the supernet spec's ``group_distill``). Every 20 steps: the mean
training loss (cross-entropy only) and 4 fresh random subnets' accuracy on 256 validation images in the supernet's
forward with batch statistics. Written for 2026-11-30 (docs/supernet-measurements.md).
"""

from __future__ import annotations

import random
import sys
import time


def main() -> None:
    import torch
    from torch.nn import functional as F

    from nas.data import DatasetSpec, load_dataset
    from nas.proxies import TrainRecipe
    from nas.proxies._train import _prepare
    from nas.spaces import load_space
    from nas.supernet import Supernet

    mode, steps = sys.argv[1], int(sys.argv[2])
    weight = float(sys.argv[3]) if len(sys.argv) > 3 else 0.0
    shared = sys.argv[4:] == ["shared"]
    torch.set_num_threads(1)
    torch.manual_seed(0)
    space = load_space("mobilenetv3-small")
    data = load_dataset(DatasetSpec.model_validate({"kind": "digits", "resolution": 32}))
    train_x, train_y, val_x, val_y = _prepare(data, TrainRecipe(resolution=32, threads=1), torch.device("cpu"))
    net = Supernet(space, 10, shared_groups=shared)
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, nesterov=True)
    rng = random.Random(0)
    dims = space.dimensions()
    group_keys = [k for k in dims if k.endswith(".groups")]

    def draw():  # type: ignore[no-untyped-def]
        choices = space.sample_choices(rng)
        if mode == "dense":
            choices |= dict.fromkeys(group_keys, 1)
        elif mode == "one-count":
            g = rng.choice([1, 2, 4])
            choices |= {k: g if g in dims[k] else 1 for k in group_keys}
        elif mode == "per-stage":
            per = {k.split(".")[0]: rng.choice(dims[k]) for k in group_keys}
            choices |= {k: per[k.split(".")[0]] for k in group_keys}
        return space.decode(choices, num_classes=10)

    start, losses = time.perf_counter(), []
    for step in range(steps):
        idx = torch.randint(0, len(train_y), (64,), generator=torch.Generator().manual_seed(step))
        opt.zero_grad(set_to_none=True)
        net.train()
        for _ in range(4):
            distill: list[torch.Tensor] = []
            loss = F.cross_entropy(net(train_x[idx], draw(), distill=distill), train_y[idx])
            losses.append(float(loss.detach()))
            if weight and distill:
                loss = loss + weight * torch.stack(distill).mean()
            loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
        opt.step()
        if (step + 1) % 20 == 0:
            with torch.no_grad():
                accs = [float((net(val_x[:256], draw()).argmax(1) == val_y[:256]).float().mean()) for _ in range(4)]
            print(f"{mode}{' shared' if shared else ''} distill {weight} step {step + 1} "
                  f"train loss {sum(losses[-80:]) / 80:.3f} "
                  f"fresh random subnets, batch statistics: {[round(a, 2) for a in accs]} "
                  f"({time.perf_counter() - start:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
