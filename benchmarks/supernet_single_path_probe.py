"""Does one fixed mixed subnet (several 1x1 group counts, narrower than the largest) learn through the
supernet's forward when it is trained alone? And its extracted static copy, from the same weights?

    python benchmarks/supernet_single_path_probe.py [SEED]

Written for 2026-11-30: random subnets of a mobilenetv3-small supernet with group choices stay near
chance however the supernet is trained (docs/supernet-measurements.md). If the subnet learns alone, the
path code (slicing, identity lists, gradients through index tensors) is not the cause; the interference
between subnets is.
"""

from __future__ import annotations

import random
import sys
import time
from collections.abc import Callable

import torch
from torch import nn
from torch.nn import functional as F


def main() -> None:
    from nas.data import DatasetSpec, load_dataset
    from nas.proxies import TrainRecipe
    from nas.proxies._train import _prepare
    from nas.spaces import load_space
    from nas.supernet import Supernet, extract

    torch.set_num_threads(1)
    torch.manual_seed(0)
    space = load_space("mobilenetv3-small")
    data = load_dataset(DatasetSpec(kind="digits", resolution=32))
    tx, ty, vx, vy = _prepare(data, TrainRecipe(epochs=1, resolution=32, batch_size=64), torch.device("cpu"))
    arch = space.sample(rng=random.Random(int(sys.argv[1]) if len(sys.argv) > 1 else 3), num_classes=10)
    print(f"subnet {arch.hash}: groups {[b.groups for _, _, b in arch.blocks()]}, "
          f"widths {[b.out for _, _, b in arch.blocks()]}")
    net = Supernet(space, 10)
    static = extract(net, arch)  # the same initial function

    def train(model: nn.Module, forward: Callable[[torch.Tensor], torch.Tensor], steps: int = 150) -> None:
        opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True)
        g = torch.Generator().manual_seed(0)
        model.train()
        start = time.time()
        for s in range(steps):
            idx = torch.randint(0, len(tx), (64,), generator=g)
            loss = F.cross_entropy(forward(tx[idx]), ty[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            if s % 50 == 0 or s == steps - 1:
                with torch.no_grad():
                    acc = float((forward(vx[:256]).argmax(1) == vy[:256]).float().mean())
                print(f"| {s} | {float(loss.detach()):.3f} | {acc:.3f} | {time.time() - start:.0f} s |", flush=True)

    print("supernet forward, this subnet alone\n| step | loss | accuracy (train-mode BN, 256 images) | time |")
    train(net, lambda x: net(x, arch))
    print("extracted static copy\n| step | loss | accuracy (train-mode BN, 256 images) | time |")
    train(static, static)


if __name__ == "__main__":
    main()
