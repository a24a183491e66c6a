"""A supernet channel carries the same feature in every subnet that has it: what weight sharing rests on.

Checked by value, without trusting the identity lists of ``nas.supernet._groups``: take a wider and a
narrower subnet with the same structure (depth, kernels, activations, group counts, residuals), and run
the wider one with every channel the narrower one lacks silenced at every layer. Then each layer must hold
the narrower subnet's channels, value for value, whatever static positions they sit at. A producer and a
consumer that disagree about which supernet channel a position is (the stem and the first block, a block
and the next, a residual, the last block and the head) fail it at the first layer after them.
"""

from __future__ import annotations

import random

import pytest
import torch

from nas.arch import Architecture, Block
from nas.spaces import load_space
from nas.supernet import Supernet, extreme_choices
from nas.supernet._layers import ElasticBN


def _random_supernet(seed: int) -> Supernet:
    """In float64: values grow to 1e4 over 15 random blocks, where float32's rounding tells channels apart."""
    torch.manual_seed(seed)
    return Supernet(load_space("mobilenetv3-small"), 10).double()


def _calibrate(net: Supernet, arch: Architecture, x: torch.Tensor) -> None:
    """BN scales from ``arch``'s batch statistics (so no layer's values vanish), then eval mode with zero
    shift: a silenced (zero) channel stays zero through BN and the activation."""
    norms = [m for m in net.modules() if isinstance(m, ElasticBN)]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
    net.train()
    with torch.no_grad():
        net(x, arch)
        for m in norms:
            assert m.running_mean is not None
            m.weight.uniform_(0.5, 1.5)
            m.bias.zero_()
            m.running_mean.zero_()
    net.eval()


def _pair(groups: str, wide: tuple[float, float], narrow: tuple[float, float],
          seed: int) -> tuple[Architecture, Architecture]:
    """Two subnets at (width, expansion) ``wide`` and ``narrow``; everything else equal and drawn from
    ``seed``, SE off (its squeeze width follows the expansion), every stage at its deepest."""
    space = load_space("mobilenetv3-small")
    rng = random.Random(seed)
    choices = extreme_choices(space, largest=True)
    blocks = sorted({k.rsplit(".", 1)[0] for k in choices if k.endswith(".groups")})
    dims = space.dimensions()
    for i, b in enumerate(blocks):
        options = dims[f"{b}.groups"]
        g = options[i % len(options)] if groups == "mixed" else (int(groups) if int(groups) in options else 1)
        choices.update({f"{b}.groups": g, f"{b}.se": False, f"{b}.kernel": rng.choice(dims[f"{b}.kernel"]),
                        f"{b}.activation": rng.choice(dims[f"{b}.activation"])})

    def member(width: float, expansion: float) -> Architecture:
        expansions = {k: expansion for k, v in dims.items() if k.endswith(".expansion") and len(v) > 1}
        return space.decode({**choices, "width": width, **expansions}, num_classes=10)

    big, small = member(*wide), member(*narrow)
    shape = [[(b.groups, b.kernel, b.stride == 1 and b.out == cin) for b, cin in _with_inputs(a)] for a in (big, small)]
    assert shape[0] == shape[1], "the pair must differ only in widths"
    return big, small


def _with_inputs(arch: Architecture) -> list[tuple[Block, int]]:
    out, cin = [], arch.stem.channels
    for _, _, b in arch.blocks():
        out.append((b, cin))
        cin = b.out
    return out


def _channels(t: torch.Tensor) -> torch.Tensor:
    return t.transpose(0, 1).reshape(t.shape[1], -1)


def _matches(out: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """(channels of ``out``) x (channels of ``ref``): equal up to float rounding, relative to the ref channel."""
    a, b = _channels(out), _channels(ref)
    return torch.cdist(a, b, p=float("inf")) <= 1e-4 * b.abs().amax(dim=1).unsqueeze(0)


def _bn_outputs(net: Supernet, arch: Architecture, x: torch.Tensor,
                reference: list[torch.Tensor] | None = None) -> list[torch.Tensor]:
    """Every BN layer's output, in call order. With ``reference`` (the narrower subnet's outputs), channels
    that equal none of the reference layer's channels are silenced (zeroed) before the next layer."""
    outputs: list[torch.Tensor] = []

    def hook(module: torch.nn.Module, args: object, out: torch.Tensor) -> torch.Tensor:
        if reference is not None:
            keep = _matches(out, reference[len(outputs)]).any(dim=1)
            out = out * keep.to(out.dtype).reshape(1, -1, 1, 1)
        outputs.append(out.clone())  # the activation that follows works in place
        return out

    handles = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, ElasticBN)]
    try:
        with torch.no_grad():
            net(x, arch)
    finally:
        for h in handles:
            h.remove()
    return outputs


def _mismatched_layers(net: Supernet, wide: Architecture, narrow: Architecture) -> list[tuple[int, int]]:
    """(layer, channels of the narrower subnet found nowhere in the silenced wider one), layers that differ."""
    x = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    _calibrate(net, wide, x)
    small = _bn_outputs(net, narrow, x)
    big = _bn_outputs(net, wide, x, reference=small)
    assert len(big) == len(small)
    bad = []
    for i, (b, s) in enumerate(zip(big, small, strict=True)):
        missing = ~_matches(b, s).any(dim=0)
        if missing.any():
            bad.append((i, int(missing.sum())))
    return bad


@pytest.mark.parametrize("groups", ["1", "2", "4", "mixed"])
@pytest.mark.parametrize(("wide", "narrow"), [((1.25, 4.0), (0.75, 4.0)),   # width alone
                                              ((1.0, 6.0), (1.0, 3.0)),     # expansion alone
                                              ((1.25, 6.0), (1.0, 3.0)),    # both
                                              ((1.0, 4.0), (1.0, 3.0))])    # expansion 3: ragged shuffles
def test_a_narrower_subnets_channels_are_the_wider_ones_silencing_the_rest(
        groups: str, wide: tuple[float, float], narrow: tuple[float, float]) -> None:
    """Width 0.5 is left out: there stage 3's first block (40 -> 48 channels, stride 1) becomes 24 -> 24 and
    gains a residual, a different structure, not a different width."""
    net = _random_supernet(0)
    for seed in range(2):
        big, small = _pair(groups, wide, narrow, seed)
        assert _mismatched_layers(net, big, small) == [], (groups, wide, narrow, seed)


def test_the_check_catches_a_stem_that_writes_its_channels_by_position(monkeypatch: pytest.MonkeyPatch) -> None:
    """The blocks read the stream in the layout's order; a stem (and head) writing by position breaks it."""
    net = _random_supernet(0)
    big, small = _pair("4", (1.25, 4.0), (0.75, 4.0), 0)
    monkeypatch.setattr(Supernet, "stream", lambda self, k, device: None)
    assert _mismatched_layers(net, big, small)
