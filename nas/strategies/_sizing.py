"""Sizing NetAdapt proposals with the device's lookup table.

For every layer, find the widest allowed width whose estimated latency meets this iteration's target.
Estimates are table sums scaled by ``ratio`` = judged latency of the current network / its table sum,
so the table's relative costs size the cut and the device's own measurement anchors it. Latency is
close to linear in one layer's width, so each layer needs about three table look-ups: the narrowest
width, a linear interpolation, and a bounded walk narrower if the interpolation falls short. Entries the
table lacks are timed on demand in one batch per round, on the device (``SearchContext.table_predictor``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from nas.arch import Architecture
from nas.spaces import SearchSpace
from nas.strategies._shrink import Layer, apply_width, current_width, smaller_widths

log = logging.getLogger(__name__)

TableSum = Callable[[list[Architecture]], list[float]]
MAX_WALK = 3


@dataclass
class Sized:
    layer: Layer
    width: int
    arch: Architecture
    estimated_ms: float


def size_proposals(space: SearchSpace, arch: Architecture, layers: list[Layer], target_ms: float,
                   ratio: float, table_sum: TableSum) -> list[Sized]:
    """One proposal per layer that can meet ``target_ms`` (estimated); layers that cannot are skipped."""
    options = {layer: smaller_widths(space, arch, layer) for layer in layers}
    options = {k: v for k, v in options.items() if v}
    if not options:
        return []
    narrowest = {layer: apply_width(arch, layer, widths[-1]) for layer, widths in options.items()}
    base, *lows = table_sum([arch, *[a for a in narrowest.values() if a is not None]])
    low_ms = dict(zip(narrowest, (x * ratio for x in lows), strict=True))
    guess: dict[Layer, int] = {}
    for layer, widths in options.items():
        if low_ms[layer] > target_ms:
            continue  # even the narrowest width cannot meet the target
        now, w_min = current_width(arch, layer), widths[-1]
        span = base * ratio - low_ms[layer]
        frac = (base * ratio - target_ms) / span if span > 0 else 1.0
        wanted = now - frac * (now - w_min)
        guess[layer] = next((i for i, w in enumerate(widths) if w <= wanted), len(widths) - 1)
    result: dict[Layer, Sized] = {}
    for _ in range(MAX_WALK + 1):
        if not guess:
            break
        archs = {layer: apply_width(arch, layer, options[layer][i]) for layer, i in guess.items()}
        valid = {k: a for k, a in archs.items() if a is not None}
        sums = table_sum(list(valid.values()))
        nxt: dict[Layer, int] = {}
        for (layer, a), s in zip(valid.items(), sums, strict=True):
            est = s * ratio
            i = guess[layer]
            if est <= target_ms:
                result[layer] = Sized(layer, options[layer][i], a, est)
            elif i + 1 < len(options[layer]):
                nxt[layer] = min(i + max(1, (len(options[layer]) - i) // 4), len(options[layer]) - 1)
        guess = nxt
    return sorted(result.values(), key=lambda s: s.layer.name)

