"""Which supernet channels a grouped block's expanded channels are, so each keeps its weights in every subnet.

A grouped expansion with ``g`` groups and ``mid`` channels is followed by a channel shuffle whose
permutation depends on ``mid``. Indexed by position (a prefix of ``mid``), the depthwise channel at a
position would read a different expanded channel for every expansion ratio and width, and an expanded
channel would change group: the weights shared across subnets then mean something different in each of
them. Here the expanded channel ``s`` of group ``i`` is always
supernet channel ``i * (capacity // g) + s``: its group, its expansion weights and its depthwise, BN and
SE weights stay the same whatever ``mid`` is; the supernet runs depthwise, BN and SE in that
(pre-shuffle) order, which gives the same outputs as the builder's shuffle-then-depthwise. (This alone
did not make random subnets of a grouped space trainable: docs/supernet-measurements.md.)
"""

from __future__ import annotations

import torch


def expanded_channels(mid: int, groups: int, capacity: int, device: torch.device) -> torch.Tensor:
    """Supernet channel of each of the block's ``mid`` expanded channels, in the expansion's output order."""
    per, block = mid // groups, capacity // groups
    base = torch.arange(groups, device=device).unsqueeze(1) * block
    return (base + torch.arange(per, device=device).unsqueeze(0)).reshape(-1)


def after_shuffle(channels: torch.Tensor, groups: int) -> torch.Tensor:
    """``channels`` in the order ``nas.blocks.ChannelShuffle(groups)`` leaves them."""
    return channels.reshape(groups, -1).t().reshape(-1)
