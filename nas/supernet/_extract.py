"""A subnet as a static network of ``nas.builder`` with the supernet's weights copied in.

The copy follows the same slicing as the supernet's forward (prefixes, block-diagonal grouped 1x1 convs,
transformed kernel centres), so the static network computes exactly what the subnet computes: it can be
exported, timed, fine-tuned or trained further like any other network of this project.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from nas.arch import Architecture
from nas.blocks import ConvBNAct, MBConv, SqueezeExcite
from nas.builder import Network, build_model
from nas.supernet._layers import ElasticBN, ElasticConv, ElasticLinear, ElasticSE

if TYPE_CHECKING:
    from nas.supernet._model import SuperBlock, Supernet


def _bn(dst: nn.Module, src: ElasticBN) -> None:
    assert isinstance(dst, nn.BatchNorm2d)
    c = dst.num_features
    assert dst.running_mean is not None and dst.running_var is not None
    assert src.running_mean is not None and src.running_var is not None
    dst.weight.copy_(src.weight[:c])
    dst.bias.copy_(src.bias[:c])
    dst.running_mean.copy_(src.running_mean[:c])
    dst.running_var.copy_(src.running_var[:c])
    if dst.num_batches_tracked is not None and src.num_batches_tracked is not None:
        dst.num_batches_tracked.copy_(src.num_batches_tracked)


def _conv_bn(dst: nn.Module, conv: ElasticConv, bn: ElasticBN, groups: int = 1) -> None:
    assert isinstance(dst, ConvBNAct)
    target = dst[0]
    assert isinstance(target, nn.Conv2d)
    target.weight.copy_(conv.weight_for(target.in_channels, target.out_channels, groups))
    _bn(dst[1], bn)


def _se(dst: SqueezeExcite, src: ElasticSE) -> None:
    c, sq = dst.fc2.out_channels, dst.fc1.out_channels
    for d, s, rows, cols in ((dst.fc1, src.fc1, sq, c), (dst.fc2, src.fc2, c, sq)):
        d.weight.copy_(s.weight[:rows, :cols])
        assert d.bias is not None and s.bias is not None
        d.bias.copy_(s.bias[:rows])


def _block(dst: MBConv, src: SuperBlock, groups: int, kernel: int) -> None:
    convs = [m for m in dst.body if isinstance(m, ConvBNAct)]
    ses = [m for m in dst.body if isinstance(m, SqueezeExcite)]
    p = src.path(groups)
    if len(convs) == 3:
        assert p.expand is not None and p.expand_bn is not None
        _conv_bn(convs.pop(0), p.expand, p.expand_bn, groups)
    dw, project = convs
    dw_conv = dw[0]
    assert isinstance(dw_conv, nn.Conv2d)
    dw_conv.weight.copy_(p.dw.kernel_for(dw_conv.out_channels, kernel))
    _bn(dw[1], p.dw_bn)
    if ses:
        assert p.se is not None
        _se(ses[0], p.se)
    _conv_bn(project, p.project, p.project_bn, groups)


def _linear(dst: nn.Module, src: ElasticLinear) -> None:
    assert isinstance(dst, nn.Linear)
    dst.weight.copy_(src.weight[:dst.out_features, :dst.in_features])
    dst.bias.copy_(src.bias[:dst.out_features])


def extract(supernet: Supernet, arch: Architecture) -> Network:
    """The builder's network for ``arch`` holding the supernet's weights and BN statistics for it."""
    supernet.check(arch)
    net = build_model(arch)
    with torch.no_grad():
        _conv_bn(net.stem[0], supernet.stem, supernet.stem_bn)
        blocks = iter(net.blocks)
        for stage, supers in zip(arch.stages, supernet.positions(), strict=True):
            for block, sup in zip(stage, supers, strict=False):
                dst = next(blocks)
                assert isinstance(dst, MBConv)
                _block(dst, sup, block.groups, block.kernel)
        if arch.head.channels:
            assert supernet.head_conv is not None and supernet.head_bn is not None
            _conv_bn(net.head_conv, supernet.head_conv, supernet.head_bn)
        linears = [m for m in net.classifier if isinstance(m, nn.Linear)]
        if supernet.hidden is not None and len(linears) == 2:
            _linear(linears.pop(0), supernet.hidden)
        _linear(linears[0], supernet.classifier)
    return net
