"""Feature-level distillation between a block's paths (``group_distill``): a grouped 1x1 path learns to
reproduce its block's dense path on the same input, so that subnets drawing a group count per block
compose; and the supernet's BatchNorm settings are its space's, as its extracted subnets' are."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from nas.arch import Architecture
from nas.spaces import load_space
from nas.supernet import (
    Supernet,
    extract,
    extreme_choices,
    largest_architecture,
    parse_supernet_spec,
    smallest_architecture,
    train_supernet,
)

SPACE = load_space("mobilenetv3-small")


def _largest_with(groups: dict[str, int]) -> Architecture:
    choices = extreme_choices(SPACE, largest=True)
    choices.update({f"{block}.groups": g for block, g in groups.items()})
    return SPACE.decode(choices, num_classes=10)


def test_each_grouped_block_reports_its_distance_to_the_dense_path_and_dense_blocks_report_none() -> None:
    torch.manual_seed(0)
    net = Supernet(SPACE, 10).train()
    x = torch.randn(8, 3, 32, 32)
    dense: list[torch.Tensor] = []
    net(x, largest_architecture(SPACE, 10), distill=dense)
    assert dense == []
    mixed: list[torch.Tensor] = []
    net(x, _largest_with({"s1.b0": 2, "s2.b1": 4, "s4.b0": 4}), distill=mixed)
    assert len(mixed) == 3 and all(d.ndim == 0 and float(d) > 0 for d in mixed)


def test_distillation_pulls_the_grouped_path_towards_the_dense_one_and_leaves_the_dense_path_alone() -> None:
    torch.manual_seed(0)
    net = Supernet(SPACE, 10).train()
    x = torch.randn(16, 3, 32, 32)
    arch = _largest_with({"s2.b0": 4})
    block = net.positions()[2][0]
    grouped, dense = block.path(4), block.path(1)
    opt = torch.optim.SGD(grouped.parameters(), lr=0.1)

    def distance() -> torch.Tensor:
        found: list[torch.Tensor] = []
        net(x, arch, distill=found)
        return found[0]

    first = distance()
    first.backward()
    assert all(p.grad is None for p in dense.parameters())  # the dense path is the target, not a student
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in grouped.parameters())
    for _ in range(30):
        opt.zero_grad(set_to_none=True)
        distance().backward()
        opt.step()
    assert float(distance()) < 0.5 * float(first)


def test_the_supernets_batchnorm_is_its_spaces_as_its_extracted_subnets_is() -> None:
    net = Supernet(SPACE, 10)
    arch = largest_architecture(SPACE, 10)
    assert arch.bn.eps == 1e-3 and arch.bn.momentum == 0.01  # MobileNetV3's published settings
    for model in (net, extract(net, arch)):
        norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
        assert norms and all(m.eps == arch.bn.eps and m.momentum == arch.bn.momentum for m in norms)


def _mean_distance(net: Supernet, arch: Architecture, x: torch.Tensor) -> float:
    found: list[torch.Tensor] = []
    net.train()
    with torch.no_grad():
        net(x, arch, distill=found)
    return sum(float(d) for d in found) / len(found)


def test_training_with_group_distill_leaves_grouped_paths_closer_to_the_dense_ones(tmp_path: Path) -> None:
    base = {"name": "tiny", "space": "mobilenetv3-small",
            "dataset": {"kind": "digits", "resolution": 32, "subset": 300},
            "recipe": {"epochs": 1, "batch_size": 24, "lr": 0.1, "warmup_epochs": 0, "resolution": 32,
                       "bn_recalibration": 48, "threads": 1, "seed": 3},
            "sandwich": {"random": 0}, "eval_every": 0}
    without, with_ = parse_supernet_spec(base), parse_supernet_spec({**base, "group_distill": 10.0})
    assert with_.fingerprint != without.fingerprint and without.group_distill == 0.0
    from nas.supernet import load_supernet

    smallest = smallest_architecture(SPACE, 10)  # every grouped block at 4 groups: trained at every step
    x = torch.randn(16, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    found = {}
    for name, spec in (("without", without), ("with", with_)):
        train_supernet(spec, tmp_path / name)
        found[name] = _mean_distance(load_supernet(str(tmp_path / name / "supernet.pt")).net, smallest, x)
    assert found["with"] < 0.85 * found["without"], found  # measured: 1.44 vs 1.96
