"""Which supernet channel each channel of a subnet is, so that grouped 1x1 convs keep their meaning.

A static network (``nas.builder``) splits a grouped 1x1 conv's channels into contiguous groups by
position, and shuffles the expanded channels by an order that depends on their number. Taken by
position from the supernet (the first ``k`` channels), a channel would change group, and so read other
inputs with other weights, whenever a width or expansion changes: every subnet whose widths differ from
the ones a group count was trained at then computes something else with the same weights (random
subnets of a space with group choices scored 11-26% one-shot on digits, docs/supernet-measurements.md).

So a subnet's channels are named by an *identity list* (static position -> supernet channel):

* **Stream channels** (the tensors between blocks, width ``k``): the first ``k`` supernet channels, in
  an order where every contiguous ``1/g`` of them is one residue class mod ``g`` (digit-reversed, for
  group counts that divide each other: 1, 2, 4, 8). Group ``i`` of a grouped conv then reads or writes
  the channels ``c = r_i (mod g)``: at every width a prefix of the same set.
* **Expanded channels** of a grouped block: sub-position ``q`` of expansion group ``j`` is supernet
  channel ``j * capacity/g + s``, with ``s`` chosen so that after the builder's channel shuffle the
  projection's group ``i`` reads the expanded channels ``s = i (mod g)`` of every expansion group: again a
  prefix of the same set at every expansion. When ``mid/g`` is not a multiple of ``g`` the shuffle's groups
  are ragged (group ``i`` takes more sub-positions of some expansion groups than of others); ``s`` still
  counts, within its residue class ``i``, the sub-positions of group ``j`` that the projection's group ``i``
  reads, so the rule holds there too. (It used ``s = q`` there, so at expansion 3 with 4 groups and widths
  such as 24 or 40 the projection read weights no other expansion trains.)

The supernet runs every layer in this static order, so extraction copies weights with the same lists.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch


def _radices(group_counts: tuple[int, ...]) -> tuple[int, ...] | None:
    """The chain 1 | g1 | g2 | ... as successive ratios, or None when the counts do not divide each other."""
    chain = sorted({g for g in group_counts if g > 1})
    radices, previous = [], 1
    for g in chain:
        if g % previous:
            return None
        radices.append(g // previous)
        previous = g
    return tuple(radices)


@lru_cache(maxsize=256)
def _stream_order(k: int, group_counts: tuple[int, ...]) -> tuple[int, ...] | None:
    radices = _radices(group_counts)
    if not radices or k % math.prod(radices):
        return None  # no group choices (or none a layout serves): the first k channels in order

    def key(c: int) -> tuple[int, ...]:
        digits = []
        for r in radices:
            digits.append(c % r)
            c //= r
        return (*digits, c)

    return tuple(sorted(range(k), key=key))


def stream_channels(k: int, group_counts: tuple[int, ...], device: torch.device) -> torch.Tensor | None:
    """Supernet channel of each of a ``k``-channel stream tensor's positions; None for the plain prefix."""
    order = _stream_order(k, group_counts)
    return None if order is None else torch.tensor(order, device=device)


@lru_cache(maxsize=1024)
def _expanded_order(mid: int, groups: int, capacity: int) -> tuple[int, ...]:
    per, block = mid // groups, capacity // groups
    ids: list[int] = []
    for j in range(groups):
        taken = [0] * groups  # sub-positions of group j read so far by each projection group
        for q in range(per):
            i = (q * groups + j) // per  # the shuffle puts (j, q) at q*g + j: projection group i reads it
            ids.append(j * block + taken[i] * groups + i)
            taken[i] += 1
        if any((n - 1) * groups + i >= block for i, n in enumerate(taken) if n):
            # a residue class overflows this group's share of the capacity (not met in the shipped spaces):
            # plain sub-positions, still within the group's share
            return tuple(j * block + q for j in range(groups) for q in range(per))
    return tuple(ids)


def expanded_channels(mid: int, groups: int, capacity: int, device: torch.device) -> torch.Tensor:
    """Supernet channel of each of a grouped block's ``mid`` expanded channels, in the expansion's output order."""
    return torch.tensor(_expanded_order(mid, groups, capacity), device=device)


def after_shuffle(channels: torch.Tensor, groups: int) -> torch.Tensor:
    """``channels`` in the order ``nas.blocks.ChannelShuffle(groups)`` leaves them."""
    return channels.reshape(groups, -1).t().reshape(-1)
