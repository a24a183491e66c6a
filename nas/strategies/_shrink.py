"""NetAdapt's layers: what can be shrunk in an architecture, to which widths, and weight truncation.

Two proposal kinds, as in MobileNetV3's NetAdapt: shrink one block's inner (expansion) width, or shrink
the output width of a whole stage (every block sharing that bottleneck, so residuals stay valid).
Widths stay multiples of the space's divisor (and of the block's group count) and inside the space.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from nas.arch import Architecture, BlockType, parse_architecture
from nas.errors import ArchitectureError
from nas.spaces import SearchSpace, membership_problems


@dataclass(frozen=True)
class Layer:
    kind: str  # "mid" (one block's inner width) or "stage" (a stage's output width) or "head"
    stage: int
    block: int = -1

    @property
    def name(self) -> str:
        if self.kind == "mid":
            return f"s{self.stage}.b{self.block}.mid"
        return f"s{self.stage}.out" if self.kind == "stage" else "head.channels"


def layers(arch: Architecture) -> list[Layer]:
    found = [Layer("mid", s, b) for s, stage in enumerate(arch.stages) for b in range(len(stage))]
    found += [Layer("stage", s) for s in range(len(arch.stages))]
    if arch.head.channels:
        found.append(Layer("head", -1))
    return found


def current_width(arch: Architecture, layer: Layer) -> int:
    if layer.kind == "mid":
        return arch.stages[layer.stage][layer.block].mid
    if layer.kind == "stage":
        return arch.stages[layer.stage][0].out
    assert arch.head.channels is not None
    return arch.head.channels


def _step(space: SearchSpace, arch: Architecture, layer: Layer) -> int:
    div = space.definition.channel_divisor
    if layer.kind == "mid":
        b = arch.stages[layer.stage][layer.block]
        return math.lcm(div, b.groups) if b.type is BlockType.mbconv else b.groups
    if layer.kind == "stage":
        lcm = div
        for block in arch.stages[layer.stage]:
            lcm = math.lcm(lcm, block.groups * (2 if block.type is BlockType.shufflev2 else 1))
        return lcm
    return div


def apply_width(arch: Architecture, layer: Layer, width: int) -> Architecture | None:
    """The architecture with ``layer`` at ``width``; None when that breaks a shape rule."""
    doc = arch.model_dump(mode="json")
    if layer.kind == "mid":
        doc["stages"][layer.stage][layer.block]["mid"] = width
    elif layer.kind == "stage":
        old = arch.stages[layer.stage][0].out
        for block in doc["stages"][layer.stage]:
            block["out"] = width
            if block["type"] == BlockType.shufflev1.value and block["stride"] == 1:
                block["mid"] = max(block["groups"], block["mid"] * width // old // block["groups"] * block["groups"])
    else:
        doc["head"]["channels"] = width
    try:
        return parse_architecture(doc)
    except ArchitectureError:
        return None


def smaller_widths(space: SearchSpace, arch: Architecture, layer: Layer) -> list[int]:
    """Allowed widths below the current one, widest first, that keep the network in its space."""
    step, now = _step(space, arch, layer), current_width(arch, layer)
    cin = _block_input(arch, layer)
    if layer.kind == "mid" and cin is None and arch.stages[layer.stage][layer.block].type is BlockType.mbconv:
        return []  # no expansion conv to shrink (mid == input width)
    widths = []
    for w in range((now - 1) // step * step, 0, -step):
        if layer.kind == "mid" and cin is not None and w <= cin:
            break  # an mbconv's expansion conv would vanish and the weight names would shift
        candidate = apply_width(arch, layer, w)
        if candidate is None or membership_problems(space, candidate):
            break
        widths.append(w)
    return widths


def _block_input(arch: Architecture, layer: Layer) -> int | None:
    if layer.kind != "mid":
        return None
    for path, cin, block in arch.blocks():
        if path == f"stages[{layer.stage}][{layer.block}]":
            return cin if block.type is BlockType.mbconv and block.mid != cin else None
    return None


def truncate_state(state: dict[str, Any], target: dict[str, Any]) -> dict[str, Any]:
    """Inherit weights into a narrower network by keeping the first channels of every dimension
    (MobileNetV3's NetAdapt: truncated weights, then fine-tuned). Same-named tensors only."""
    out = {}
    for name, want in target.items():
        have = state.get(name)
        if have is None or have.dim() != want.dim():
            continue
        if any(h < w for h, w in zip(have.shape, want.shape, strict=True)):
            continue
        out[name] = have[tuple(slice(0, w) for w in want.shape)].clone() if have.dim() else have.clone()
    return out
