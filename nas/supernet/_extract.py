"""A subnet as a static network of ``nas.builder`` with the supernet's weights copied in.

The copy follows the same slicing as the supernet's forward (the channel identity lists of ``_groups``,
block-diagonal grouped 1x1 convs, transformed kernel centres), so the static network computes exactly
what the subnet computes: it can be exported, timed, fine-tuned or trained further like any other
network of this project.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from nas.arch import Architecture, Block
from nas.blocks import ConvBNAct, MBConv, SqueezeExcite
from nas.builder import Network, build_model
from nas.supernet._layers import ElasticBN, ElasticConv, ElasticLinear, ElasticSE

if TYPE_CHECKING:
    from nas.supernet._model import SuperBlock, Supernet


def _bn(dst: nn.Module, src: ElasticBN, index: torch.Tensor | None = None) -> None:
    assert isinstance(dst, nn.BatchNorm2d)
    c = dst.num_features
    assert dst.running_mean is not None and dst.running_var is not None
    assert src.running_mean is not None and src.running_var is not None
    channels = slice(0, c) if index is None else index
    dst.weight.copy_(src.weight[channels])
    dst.bias.copy_(src.bias[channels])
    dst.running_mean.copy_(src.running_mean[channels])
    dst.running_var.copy_(src.running_var[channels])
    if dst.num_batches_tracked is not None and src.num_batches_tracked is not None:
        dst.num_batches_tracked.copy_(src.num_batches_tracked)


def _conv_bn(dst: nn.Module, conv: ElasticConv, bn: ElasticBN, groups: int = 1,
             rows: torch.Tensor | None = None, cols: torch.Tensor | None = None) -> None:
    assert isinstance(dst, ConvBNAct)
    target = dst[0]
    assert isinstance(target, nn.Conv2d)
    target.weight.copy_(conv.weight_for(target.in_channels, target.out_channels, groups, rows, cols))
    _bn(dst[1], bn, rows)


def _se(dst: SqueezeExcite, src: ElasticSE, index: torch.Tensor | None = None) -> None:
    c, sq = dst.fc2.out_channels, dst.fc1.out_channels
    channels = slice(0, c) if index is None else index
    assert dst.fc1.bias is not None and src.fc1.bias is not None
    assert dst.fc2.bias is not None and src.fc2.bias is not None
    dst.fc1.weight.copy_(src.fc1.weight[:sq, channels])
    dst.fc1.bias.copy_(src.fc1.bias[:sq])
    dst.fc2.weight.copy_(src.fc2.weight[channels, :sq])
    dst.fc2.bias.copy_(src.fc2.bias[channels])


def _block(dst: MBConv, src: SuperBlock, block: Block, cin: int) -> None:
    """Copy ``block``'s weights; the depthwise, BN and SE channels in the builder's (shuffled) order, the
    channels between blocks in the stream order, both given by ``SuperBlock.channels``."""
    convs = [m for m in dst.body if isinstance(m, ConvBNAct)]
    ses = [m for m in dst.body if isinstance(m, SqueezeExcite)]
    p = src.path(block.groups)
    ch = src.channels(block, cin, torch.device("cpu"))
    if len(convs) == 3:
        assert p.expand is not None and p.expand_bn is not None
        _conv_bn(convs.pop(0), p.expand, p.expand_bn, block.groups, rows=ch.expanded, cols=ch.stream_in)
    dw, project = convs
    dw_conv = dw[0]
    assert isinstance(dw_conv, nn.Conv2d)
    dw_conv.weight.copy_(p.dw.kernel_for(dw_conv.out_channels, block.kernel, ch.shuffled))
    _bn(dw[1], p.dw_bn, ch.shuffled)
    if ses:
        assert p.se is not None
        _se(ses[0], p.se, ch.shuffled)
    _conv_bn(project, p.project, p.project_bn, block.groups, rows=ch.stream_out, cols=ch.shuffled)


def _linear(dst: nn.Module, src: ElasticLinear, cols: torch.Tensor | None = None) -> None:
    assert isinstance(dst, nn.Linear)
    dst.weight.copy_(src.weight_for(dst.in_features, dst.out_features, cols))
    dst.bias.copy_(src.bias[:dst.out_features])


def extract(supernet: Supernet, arch: Architecture) -> Network:
    """The builder's network for ``arch`` holding the supernet's weights and BN statistics for it."""
    supernet.check(arch)
    net = build_model(arch)
    with torch.no_grad():
        cpu = torch.device("cpu")
        _conv_bn(net.stem[0], supernet.stem, supernet.stem_bn, rows=supernet.stream(arch.stem.channels, cpu))
        blocks = iter(net.blocks)
        cin = arch.stem.channels
        for stage, supers in zip(arch.stages, supernet.positions(), strict=True):
            for block, sup in zip(stage, supers, strict=False):
                dst = next(blocks)
                assert isinstance(dst, MBConv)
                _block(dst, sup, block, cin)
                cin = block.out
        if arch.head.channels:
            assert supernet.head_conv is not None and supernet.head_bn is not None
            _conv_bn(net.head_conv, supernet.head_conv, supernet.head_bn, cols=supernet.stream(cin, cpu))
        cols = None if arch.head.channels else supernet.stream(cin, cpu)  # pooled stream: its order
        linears = [m for m in net.classifier if isinstance(m, nn.Linear)]
        if supernet.hidden is not None and len(linears) == 2:
            _linear(linears.pop(0), supernet.hidden, cols)
            cols = None
        _linear(linears[0], supernet.classifier, cols)
    return net
