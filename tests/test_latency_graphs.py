"""Directly written part graphs run the same kernels as the exporter's graphs of ``nas.blocks``.

Table entries are timed on graphs written with ``onnx.helper`` (50x faster than exporting), so they are
only valid if ONNX Runtime turns both into the same optimised graph: same operators, same weight
shapes, same output shape.
"""

from __future__ import annotations

import io
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from nas.arch import Block, Head, Stem
from nas.latency import _onnx_graphs as graphs
from nas.latency._parts import Part, block_part, head_part, stem_part
from nas.latency._runtimes import _torch_module

BLOCKS = [
    (16, Block(type="mbconv", out=16, mid=16, kernel=3, stride=1, se=True, activation="relu")),
    (16, Block(type="mbconv", out=24, mid=72, kernel=5, stride=2, se=False, activation="relu6")),
    (40, Block(type="mbconv", out=40, mid=240, kernel=7, stride=1, se=True, activation="hswish", groups=2)),
    (24, Block(type="mbconv", out=48, mid=96, kernel=3, stride=2, activation="hswish", groups=4,
               group_first_conv=False)),
    (24, Block(type="shufflev1", out=240, mid=60, kernel=3, stride=2, activation="relu", groups=3,
               group_first_conv=False)),
    (240, Block(type="shufflev1", out=240, mid=60, kernel=5, stride=1, se=True, activation="hswish", groups=3)),
    (24, Block(type="shufflev2", out=116, mid=58, kernel=3, stride=2, activation="relu")),
    (116, Block(type="shufflev2", out=116, mid=58, kernel=7, stride=1, se=True, activation="hswish", groups=2)),
]


def _exported(part: Part) -> bytes:
    module, shape = _torch_module(part, 1)
    buf = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(module.eval(), (torch.randn(*shape),), buf, input_names=["input"], opset_version=17,
                          dynamo=False)
    return buf.getvalue()


def _optimised(model: bytes, tmp: Path, shape: tuple[int, ...]) -> tuple[Counter[str], list[Any], Any]:
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.log_severity_level = 3
    so.optimized_model_filepath = str(tmp)
    session = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
    out = session.run(None, {session.get_inputs()[0].name: np.zeros(shape, np.float32)})[0]
    g = onnx.load(str(tmp)).graph
    # Shapes as a set: ORT shares identical constants (the exporter's folded biases are all zeros).
    return Counter(n.op_type for n in g.node), sorted({tuple(i.dims) for i in g.initializer}), out.shape


def _check(part: Part, direct: tuple[bytes, tuple[int, ...]], tmp_path: Path) -> None:
    model, shape = direct
    ops_d, inits_d, out_d = _optimised(model, tmp_path / "direct.onnx", shape)
    ops_e, inits_e, out_e = _optimised(_exported(part), tmp_path / "exported.onnx", shape)
    assert out_d == out_e
    assert ops_d == ops_e
    assert inits_d == inits_e


@pytest.mark.parametrize(("cin", "block"), BLOCKS, ids=lambda v: getattr(v, "type", v))
def test_a_direct_block_graph_optimises_to_the_exported_blocks_kernels(cin: int, block: Block,
                                                                       tmp_path: Path) -> None:
    _check(block_part(cin, 14, block), graphs.block_graph(cin, 14, block), tmp_path)


def test_direct_stem_and_head_graphs_match_the_builders(tmp_path: Path) -> None:
    stem = Stem(channels=24, kernel=3, stride=2, activation="relu", pool=True)
    _check(stem_part(stem, 64), graphs.stem_graph(stem, 64), tmp_path)
    head = Head(channels=96, hidden=128, activation="hswish", dropout=0.2)
    _check(head_part(head, 48, 7, 10), graphs.head_graph(head, 48, 7, 10), tmp_path)
    bare = Head(channels=None, activation="relu")
    _check(head_part(bare, 48, 7, 10), graphs.head_graph(bare, 48, 7, 10), tmp_path)
