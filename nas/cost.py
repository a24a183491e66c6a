"""Analytic cost model: params, MACs, activation memory and memory access cost, without building a module.

Conventions (checked against ``torch.utils.flop_counter`` and the built module in tests):
- MACs count convolutions and linear layers (as torchvision and the papers do); BN, activations and
  element-wise ops are free in MACs but not in memory access cost.
- Memory access cost (ShuffleNet V2, G1) counts elements read and written: a conv reads its input and
  weights and writes its output (1x1: hw(c1 + c2) + c1*c2/g); element-wise ops (residual add,
  SE multiply, channel shuffle, pooling) read and write their tensors (G4). BN and activations are
  taken as fused into the preceding conv.
- Activation memory: ``activation_elements`` sums every conv/linear output (what training keeps),
  ``peak_activation_elements`` is the largest input + output of one layer (inference working set).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from nas.arch import Architecture, Block, BlockType
from nas.channels import se_channels


@dataclass
class Cost:
    params: int = 0
    macs: int = 0
    memory_access_cost: int = 0
    activation_elements: int = 0
    peak_activation_elements: int = 0

    def add(self, other: Cost) -> None:
        self.params += other.params
        self.macs += other.macs
        self.memory_access_cost += other.memory_access_cost
        self.activation_elements += other.activation_elements
        self.peak_activation_elements = max(self.peak_activation_elements, other.peak_activation_elements)


@dataclass
class LayerCost:
    """Cost of one addressable part of the network (stem, a block, the head) and its shapes."""

    name: str
    kind: str
    in_shape: tuple[int, int, int]
    out_shape: tuple[int, int, int]
    cost: Cost


@dataclass
class CostReport:
    total: Cost
    parts: list[LayerCost] = field(default_factory=list)

    def as_dict(self) -> dict[str, int]:
        t = self.total
        return {
            "params": t.params,
            "macs": t.macs,
            "memory_access_cost": t.memory_access_cost,
            "activation_elements": t.activation_elements,
            "peak_activation_elements": t.peak_activation_elements,
        }


def conv_out(size: int, kernel: int, stride: int) -> int:
    return (size + 2 * (kernel // 2) - kernel) // stride + 1


class _Counter:
    """Accumulates layer costs while tracking the current feature-map shape (C, H, W)."""

    def __init__(self, c: int, h: int, w: int) -> None:
        self.shape = (c, h, w)
        self.cost = Cost()

    def conv(self, cout: int, *, kernel: int = 1, stride: int = 1, groups: int = 1, bias: bool = False,
             bn: bool = True, shape: tuple[int, int, int] | None = None) -> None:
        cin, h, w = shape or self.shape
        ho, wo = conv_out(h, kernel, stride), conv_out(w, kernel, stride)
        weights = kernel * kernel * (cin // groups) * cout
        c = self.cost
        c.params += weights + (cout if bias else 0) + (2 * cout if bn else 0)
        c.macs += weights * ho * wo
        n_in, n_out = cin * h * w, cout * ho * wo
        c.memory_access_cost += n_in + n_out + weights
        c.activation_elements += n_out
        c.peak_activation_elements = max(c.peak_activation_elements, n_in + n_out)
        self.shape = (cout, ho, wo)

    def linear(self, fin: int, fout: int) -> None:
        c = self.cost
        c.params += fin * fout + fout
        c.macs += fin * fout
        c.memory_access_cost += fin + fout + fin * fout
        c.activation_elements += fout
        c.peak_activation_elements = max(c.peak_activation_elements, fin + fout)

    def elementwise(self, reads: int, writes: int) -> None:
        self.cost.memory_access_cost += reads + writes

    def se(self, channels: int) -> None:
        ch, h, w = self.shape
        n, sq = ch * h * w, se_channels(channels)
        self.elementwise(n, channels)  # global pool
        self.conv(sq, bias=True, bn=False, shape=(channels, 1, 1))
        self.conv(channels, bias=True, bn=False, shape=(sq, 1, 1))
        self.shape = (ch, h, w)
        self.elementwise(n + channels, n)  # gate multiply

    def numel(self) -> int:
        c, h, w = self.shape
        return c * h * w


def _mbconv(k: _Counter, b: Block) -> None:
    cin = k.shape[0]
    n_in = k.numel()
    if b.mid != cin:
        k.conv(b.mid, groups=b.groups if b.group_first_conv else 1)
        if b.groups > 1:
            k.elementwise(k.numel(), k.numel())
    k.conv(b.mid, kernel=b.kernel, stride=b.stride, groups=b.mid)
    if b.se:
        k.se(b.mid)
    k.conv(b.out, groups=b.groups)
    if b.stride == 1 and cin == b.out:
        k.elementwise(2 * n_in, n_in)


def _shufflev1(k: _Counter, b: Block) -> None:
    cin, h, w = k.shape
    branch_out = b.out - cin if b.stride == 2 else b.out
    k.conv(b.mid, groups=b.groups if b.group_first_conv else 1)
    if b.groups > 1:
        k.elementwise(k.numel(), k.numel())
    k.conv(b.mid, kernel=b.kernel, stride=b.stride, groups=b.mid)
    k.conv(branch_out, groups=b.groups)
    if b.se:
        k.se(branch_out)
    _, ho, wo = k.shape
    if b.stride == 1:
        k.elementwise(2 * k.numel(), k.numel())
    else:
        k.elementwise(cin * h * w, cin * ho * wo)  # avg-pool shortcut
    k.shape = (b.out, ho, wo)


def _shufflev2(k: _Counter, b: Block) -> None:
    cin, h, w = k.shape
    half = b.out // 2
    if b.stride == 2:
        k.conv(cin, kernel=b.kernel, stride=2, groups=cin)
        k.conv(half)
        k.shape = (cin, h, w)
        branch_in = cin
    else:
        branch_in = cin // 2
        k.shape = (branch_in, h, w)
    k.conv(b.mid, groups=b.groups if b.group_first_conv else 1)
    if b.groups > 1:
        k.elementwise(k.numel(), k.numel())
    k.conv(b.mid, kernel=b.kernel, stride=b.stride, groups=b.mid)
    k.conv(half, groups=b.groups)
    if b.se:
        k.se(half)
    _, ho, wo = k.shape
    k.shape = (b.out, ho, wo)
    k.elementwise(k.numel(), k.numel())  # concat + shuffle moves every element once


_BLOCK_COST = {BlockType.mbconv: _mbconv, BlockType.shufflev1: _shufflev1, BlockType.shufflev2: _shufflev2}


def block_cost(cin: int, size: int, block: Block) -> LayerCost:
    """Cost of one block on a square ``size`` x ``size`` input with ``cin`` channels."""
    k = _Counter(cin, size, size)
    _BLOCK_COST[block.type](k, block)
    return LayerCost(block.type.value, "block", (cin, size, size), k.shape, k.cost)


def stem_cost(arch: Architecture) -> LayerCost:
    k = _Counter(3, arch.resolution, arch.resolution)
    st = arch.stem
    k.conv(st.channels, kernel=st.kernel, stride=st.stride)
    if st.pool:
        c, h, w = k.shape
        ho, wo = conv_out(h, 3, 2), conv_out(w, 3, 2)
        k.elementwise(c * h * w, c * ho * wo)
        k.shape = (c, ho, wo)
    return LayerCost("stem", "stem", (3, arch.resolution, arch.resolution), k.shape, k.cost)


def head_cost(arch: Architecture, in_shape: tuple[int, int, int]) -> LayerCost:
    k = _Counter(*in_shape)
    hd = arch.head
    if hd.channels:
        k.conv(hd.channels)
    k.elementwise(k.numel(), k.shape[0])  # global pool
    width = k.shape[0]
    if hd.hidden:
        k.linear(width, hd.hidden)
        width = hd.hidden
    k.linear(width, arch.num_classes)
    return LayerCost("head", "head", in_shape, (arch.num_classes, 1, 1), k.cost)


def estimate(arch: Architecture) -> CostReport:
    """Cost of the whole network at ``arch.resolution``, with a per-part breakdown."""
    parts = [stem_cost(arch)]
    shape = parts[0].out_shape
    for path, cin, block in arch.blocks():
        part = block_cost(cin, shape[1], block)
        part.name = path
        parts.append(part)
        shape = part.out_shape
    parts.append(head_cost(arch, shape))
    total = Cost()
    for p in parts:
        total.add(p.cost)
    return CostReport(total, parts)
