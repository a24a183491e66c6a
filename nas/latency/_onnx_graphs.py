"""ONNX graphs of single parts (a block, the stem, the head), written directly with ``onnx.helper``.

Why not export each block with ``torch.onnx.export``? It costs ~70 ms per block, and the ShuffleNet space
alone has ~72,000 distinct block configurations per resolution. Writing the graph directly takes ~1 ms.
The graphs mirror what the TorchScript exporter produces for ``nas.blocks`` in eval mode (BatchNorm
folded into the conv bias, ReLU6 as Clip, chunk as Split); ``tests/test_latency_graphs.py`` checks that
ONNX Runtime optimises both to the same kernels with the same output shape, so a drift in
``nas.blocks`` shows up as a failing test rather than a silently wrong table.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from nas.arch import Activation, Block, BlockType, Head, Stem
from nas.channels import se_channels

OPSET, IR_VERSION = 17, 8


_POOL_SIZE = 1 << 22
_pool: np.ndarray | None = None


def _values(shape: tuple[int, ...], scale: float = 1.0) -> np.ndarray:
    """Random-looking weights without generating random numbers per tensor (that cost ~1 ms per conv):
    a slice of one shared pool of N(0, 1) values, scaled. Values only need to be finite and not denormal."""
    global _pool
    if _pool is None:
        _pool = np.random.default_rng(0).standard_normal(_POOL_SIZE, dtype=np.float32)
    n = int(np.prod(shape))
    if n > _POOL_SIZE:
        return np.random.default_rng(n).standard_normal(shape, dtype=np.float32) * np.float32(scale)
    return (_pool[:n] * np.float32(scale)).reshape(shape)


class _Graph:
    """Accumulates nodes and initialisers for one part."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.count = 0

    def name(self, prefix: str) -> str:
        self.count += 1
        return f"{prefix}_{self.count}"

    def const(self, array: np.ndarray, prefix: str = "w") -> str:
        name = self.name(prefix)
        self.inits.append(numpy_helper.from_array(array, name))
        return name

    def node(self, op: str, inputs: list[str], **attrs: Any) -> str:
        out = self.name(op.lower())
        self.nodes.append(helper.make_node(op, inputs, [out], **attrs))
        return out

    def conv(self, x: str, cin: int, cout: int, *, kernel: int = 1, stride: int = 1, groups: int = 1,
             act: Activation | None = None) -> str:
        w = _values((cout, cin // groups, kernel, kernel), (kernel * kernel * cin / groups) ** -0.5)
        b = _values((cout,), 0.01)
        p = kernel // 2
        y = self.node("Conv", [x, self.const(w), self.const(b)], dilations=[1, 1], group=groups,
                      kernel_shape=[kernel, kernel], pads=[p, p, p, p], strides=[stride, stride])
        return self.act(y, act) if act is not None else y

    def act(self, x: str, act: Activation) -> str:
        if act is Activation.relu:
            return self.node("Relu", [x])
        if act is Activation.relu6:
            lo, hi = self.const(np.array(0, np.float32), "min"), self.const(np.array(6, np.float32), "max")
            return self.node("Clip", [x, lo, hi])
        return self.node("HardSwish", [x])

    def gemm(self, x: str, fin: int, fout: int) -> str:
        w = _values((fout, fin), fin**-0.5)
        b = np.zeros(fout, np.float32)
        return self.node("Gemm", [x, self.const(w), self.const(b)], alpha=1.0, beta=1.0, transB=1)

    def shuffle(self, x: str, shape: tuple[int, int, int, int], groups: int) -> str:
        n, c, h, w = shape
        y = self.node("Reshape", [x, self.const(np.array([n, groups, c // groups, h, w], np.int64), "shape")],
                      allowzero=0)
        y = self.node("Transpose", [y], perm=[0, 2, 1, 3, 4])
        return self.node("Reshape", [y, self.const(np.array([n, c, h, w], np.int64), "shape")], allowzero=0)

    def se(self, x: str, channels: int) -> str:
        sq = se_channels(channels)
        s = self.node("GlobalAveragePool", [x])
        s = self.node("Relu", [self._conv_bias(s, channels, sq)])
        gate = self.node("HardSigmoid", [self._conv_bias(s, sq, channels)], alpha=1.0 / 6.0, beta=0.5)
        return self.node("Mul", [x, gate])

    def _conv_bias(self, x: str, cin: int, cout: int) -> str:
        w = _values((cout, cin, 1, 1), cin**-0.5)
        b = np.zeros(cout, np.float32)
        return self.node("Conv", [x, self.const(w), self.const(b)], dilations=[1, 1], group=1,
                         kernel_shape=[1, 1], pads=[0, 0, 0, 0], strides=[1, 1])

    def model(self, inp: tuple[int, ...], out_name: str) -> bytes:
        graph = helper.make_graph(
            self.nodes, "part", [helper.make_tensor_value_info("input", TensorProto.FLOAT, list(inp))],
            [helper.make_tensor_value_info(out_name, TensorProto.FLOAT, None)], self.inits,
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                                  producer_name="nas.latency")
        model.ir_version = IR_VERSION
        return bytes(model.SerializeToString())


def _mbconv(g: _Graph, x: str, n: int, cin: int, size: int, b: Block) -> str:
    y = x
    if b.mid != cin:
        y = g.conv(y, cin, b.mid, groups=b.groups if b.group_first_conv else 1, act=b.activation)
        if b.groups > 1:
            y = g.shuffle(y, (n, b.mid, size, size), b.groups)
    y = g.conv(y, b.mid, b.mid, kernel=b.kernel, stride=b.stride, groups=b.mid, act=b.activation)
    if b.se:
        y = g.se(y, b.mid)
    y = g.conv(y, b.mid, b.out, groups=b.groups)
    return g.node("Add", [x, y]) if b.stride == 1 and cin == b.out else y


def _shufflev1(g: _Graph, x: str, n: int, cin: int, size: int, b: Block) -> str:
    branch_out = b.out - cin if b.stride == 2 else b.out
    y = g.conv(x, cin, b.mid, groups=b.groups if b.group_first_conv else 1, act=b.activation)
    if b.groups > 1:
        y = g.shuffle(y, (n, b.mid, size, size), b.groups)
    y = g.conv(y, b.mid, b.mid, kernel=b.kernel, stride=b.stride, groups=b.mid)
    y = g.conv(y, b.mid, branch_out, groups=b.groups)
    if b.se:
        y = g.se(y, branch_out)
    if b.stride == 1:
        return g.act(g.node("Add", [x, y]), b.activation)
    pool = g.node("AveragePool", [x], ceil_mode=0, count_include_pad=1, kernel_shape=[3, 3],
                  pads=[1, 1, 1, 1], strides=[2, 2])
    return g.node("Concat", [pool, g.act(y, b.activation)], axis=1)


def _shufflev2(g: _Graph, x: str, n: int, cin: int, size: int, b: Block) -> str:
    half = b.out // 2
    if b.stride == 2:
        left = g.conv(x, cin, cin, kernel=b.kernel, stride=2, groups=cin)
        left = g.conv(left, cin, half, act=b.activation)
        branch_in, right = cin, x
    else:
        split = g.const(np.array([cin // 2, cin - cin // 2], np.int64), "split")
        left, right = g.name("half"), g.name("half")
        g.nodes.append(helper.make_node("Split", [x, split], [left, right], axis=1))
        branch_in = cin // 2
    y = g.conv(right, branch_in, b.mid, groups=b.groups if b.group_first_conv else 1, act=b.activation)
    if b.groups > 1:
        y = g.shuffle(y, (n, b.mid, size, size), b.groups)
    y = g.conv(y, b.mid, b.mid, kernel=b.kernel, stride=b.stride, groups=b.mid)
    y = g.conv(y, b.mid, half, groups=b.groups, act=b.activation)
    if b.se:
        y = g.se(y, half)
    cat = g.node("Concat", [left, y], axis=1)
    out_size = (size - 1) // 2 + 1 if b.stride == 2 else size
    return g.shuffle(cat, (n, b.out, out_size, out_size), 2)


_BLOCKS = {BlockType.mbconv: _mbconv, BlockType.shufflev1: _shufflev1, BlockType.shufflev2: _shufflev2}


def block_graph(cin: int, size: int, block: Block, batch: int = 1) -> tuple[bytes, tuple[int, ...]]:
    """(serialised model, input shape) of one block on a ``batch`` x ``cin`` x ``size`` x ``size`` input."""
    g = _Graph()
    out = _BLOCKS[block.type](g, "input", batch, cin, size, block)
    shape = (batch, cin, size, size)
    return g.model(shape, out), shape


def stem_graph(stem: Stem, resolution: int, batch: int = 1) -> tuple[bytes, tuple[int, ...]]:
    g = _Graph()
    y = g.conv("input", 3, stem.channels, kernel=stem.kernel, stride=stem.stride, act=stem.activation)
    if stem.pool:
        y = g.node("MaxPool", [y], ceil_mode=0, dilations=[1, 1], kernel_shape=[3, 3], pads=[1, 1, 1, 1],
                   strides=[2, 2])
    shape = (batch, 3, resolution, resolution)
    return g.model(shape, y), shape


def head_graph(head: Head, cin: int, size: int, num_classes: int, batch: int = 1
               ) -> tuple[bytes, tuple[int, ...]]:
    g = _Graph()
    y, width = "input", cin
    if head.channels:
        y, width = g.conv(y, cin, head.channels, act=head.activation), head.channels
    y = g.node("Flatten", [g.node("GlobalAveragePool", [y])], axis=1)
    if head.hidden:
        y, width = g.act(g.gemm(y, width, head.hidden), head.activation), head.hidden
    y = g.gemm(y, width, num_classes)
    shape = (batch, cin, size, size)
    return g.model(shape, y), shape


def identity_graph(batch: int = 1) -> tuple[bytes, tuple[int, ...]]:
    """The cheapest possible call: what every session run costs before any real work."""
    g = _Graph()
    shape = (batch, 8, 1, 1)
    return g.model(shape, g.node("Relu", ["input"])), shape
