"""Sort each block's expanded channels (and its SE squeeze channels) by importance, most important first.

Largest-first slicing keeps the first ``mid`` channels of a block, so those should be the ones that
matter most. As in once-for-all, a channel's importance is the L1 norm of the weights that read it (the
project 1x1 conv's column; the SE expand conv's column for squeeze channels). Only the dense (fewest
groups) path is sorted: a permutation moves channels between groups, which a grouped path would not
survive. The permutation is applied to every tensor indexed by the channel, so the largest (dense) subnet
computes exactly the same function before and after; smaller subnets then inherit the most important channels.
"""

from __future__ import annotations

import torch

from nas.supernet._layers import ElasticBN
from nas.supernet._model import GroupPath, Supernet


def _rows(t: torch.Tensor, order: torch.Tensor) -> None:
    t.copy_(t[order])


def _bn_rows(bn: ElasticBN, order: torch.Tensor) -> None:
    assert bn.running_mean is not None and bn.running_var is not None
    for t in (bn.weight, bn.bias, bn.running_mean, bn.running_var):
        _rows(t, order)


def _sort_path(p: GroupPath) -> None:
    if p.expand is None or p.expand_bn is None:  # the depthwise runs on the block's input: its order is fixed
        return
    order = torch.argsort(p.project.weight.abs().sum(dim=(0, 2, 3)), descending=True, stable=True)
    _rows(p.expand.weight, order)
    _bn_rows(p.expand_bn, order)
    _rows(p.dw.weight, order)
    _bn_rows(p.dw_bn, order)
    if p.se is not None:
        se = p.se
        se.fc1.weight.copy_(se.fc1.weight[:, order])
        _rows(se.fc2.weight, order)
        assert se.fc2.bias is not None and se.fc1.bias is not None
        _rows(se.fc2.bias, order)
        squeeze = torch.argsort(se.fc2.weight.abs().sum(dim=(0, 2, 3)), descending=True, stable=True)
        _rows(se.fc1.weight, squeeze)
        _rows(se.fc1.bias, squeeze)
        se.fc2.weight.copy_(se.fc2.weight[:, squeeze])
    p.project.weight.copy_(p.project.weight[:, order])


def sort_channels(supernet: Supernet) -> None:
    """Reorder every block's expanded and SE channels by importance, in place (see the module docstring)."""
    with torch.no_grad():
        for stage in supernet.positions():
            for block in stage:
                _sort_path(block.path(min(g for g, _ in block.all_paths())))
