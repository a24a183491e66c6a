"""Every member of every space builds, runs at 32 and 224, and matches the analytic cost model."""

from __future__ import annotations

import os
import random

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from nas.arch import load_architecture
from nas.builder import build_model
from nas.cost import estimate
from nas.spaces import load_space

from .conftest import torch_devices

SPACES = ["mobilenetv2", "mobilenetv3-large", "mobilenetv3-small", "shufflenet"]
# 60 per space keeps the suite's time for issue-6 fault tests; NAS_TEST_MEMBERS=200 is the full sweep
# (800 networks, about 4 minutes on 2 cores), run before changing the builder or the cost model.
N_PER_SPACE = int(os.environ.get("NAS_TEST_MEMBERS", "60"))


def counted_forward(model: torch.nn.Module, resolution: int) -> tuple[torch.Tensor, int]:
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        out = model(torch.randn(1, 3, resolution, resolution))
    return out, counter.get_total_flops() // 2


@pytest.mark.parametrize("space_name", SPACES)
def test_sampled_members_build_run_and_match_the_cost_model(space_name: str) -> None:
    space = load_space(space_name)
    rng = random.Random(2024)
    for i in range(N_PER_SPACE):
        classes = rng.choice([10, 100, 1000])
        arch = space.sample(rng=rng, num_classes=classes)
        model = build_model(arch).eval()
        assert sum(p.numel() for p in model.parameters()) == estimate(arch).total.params, (i, arch.hash)
        for resolution in (32, 224):
            sized = arch.with_(resolution=resolution)
            out, macs = counted_forward(model, resolution)
            assert out.shape == (1, classes)
            assert torch.isfinite(out).all()
            assert macs == estimate(sized).total.macs, (i, resolution, arch.hash)


def test_activation_memory_counts_every_conv_and_linear_output() -> None:
    arch = load_architecture("mobilenetv3-small-1.0")
    model = build_model(arch).eval()
    outputs: list[int] = []
    hooks = [m.register_forward_hook(lambda _m, _i, o: outputs.append(o.numel()))
             for m in model.modules() if isinstance(m, torch.nn.Conv2d | torch.nn.Linear)]
    with torch.no_grad():
        model(torch.randn(1, 3, 224, 224))
    for h in hooks:
        h.remove()
    assert sum(outputs) == estimate(arch).total.activation_elements


@pytest.mark.parametrize("resolution", [32, 33, 57, 100, 224, 320])
def test_networks_build_for_odd_and_even_resolutions(resolution: int) -> None:
    for name in ("mobilenetv3-large-1.0", "shufflenetv1-g3", "shufflenetv2-0.5"):
        arch = load_architecture(name).with_(resolution=resolution, num_classes=7)
        out, macs = counted_forward(build_model(arch).eval(), resolution)
        assert out.shape == (1, 7) and macs == estimate(arch).total.macs


@pytest.mark.parametrize("device", torch_devices())
@pytest.mark.parametrize("space_name", SPACES)
def test_forward_and_backward_run_on_every_available_device(space_name: str, device: str) -> None:
    arch = load_space(space_name).sample(seed=7, num_classes=10)
    model = build_model(arch).to(device).train()
    x = torch.randn(4, 3, 32, 32, device=device)
    loss = torch.nn.functional.cross_entropy(model(x), torch.arange(4, device=device))
    loss.backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
