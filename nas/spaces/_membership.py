"""Is an architecture a member of a space? Lists every violation with the field path and the reason.

Membership is structural: choices must come from the space's lists, and widths must lie in the range the
space can produce (multiples of its channel divisor between the narrowest and widest width multiplier).
Widths inside that range are members even where the sampler would not pick them: that is how the
width-scaled references and NetAdapt's per-layer shrinks stay inside the space.
"""

from __future__ import annotations

import math

from nas.arch import Architecture, Block, BlockType
from nas.spaces._schema import StageSpace
from nas.spaces._space import SearchSpace


def membership_problems(space: SearchSpace, arch: Architecture) -> list[tuple[str, str]]:
    d = space.definition
    lo_w, hi_w = min(d.width), max(d.width)
    found: list[tuple[str, str]] = []

    def in_range(field: str, value: int, lo: int, hi: int, divisor: int) -> None:
        if not lo <= value <= hi:
            found.append((field, f"{value} is outside the space's range [{lo}, {hi}]"))
        elif value % divisor:
            found.append((field, f"{value} is not a multiple of {divisor}"))

    def one_of(field: str, value: object, options: list) -> None:  # type: ignore[type-arg]
        if value not in options:
            found.append((field, f"{value!r} is not one of {options}"))

    div = d.channel_divisor
    in_range("stem.channels", arch.stem.channels, space.scale(d.stem.channels, lo_w),
             space.scale(d.stem.channels, hi_w), div)
    one_of("stem.activation", arch.stem.activation, list(d.stem.activation))
    for f in ("kernel", "stride", "pool"):
        one_of(f"stem.{f}", getattr(arch.stem, f), [getattr(d.stem, f)])
    if len(arch.stages) != len(d.stages):
        return found + [("stages", f"the space has {len(d.stages)} stages, the architecture {len(arch.stages)}")]
    cin = arch.stem.channels
    for s, (stage, st) in enumerate(zip(arch.stages, d.stages, strict=True)):
        one_of(f"stages[{s}] depth", len(stage), list(st.depth))
        lo, hi = _channel_range(space, st, lo_w, hi_w)
        for b, block in enumerate(stage):
            path = f"stages[{s}][{b}]"
            found += [(f"{path}.{f}", r) for f, r in _block_problems(space, st, block, cin, b == 0)]
            if b == 0:
                in_range(f"{path}.out", block.out, lo, hi, div)
            elif block.out != stage[0].out:
                found.append((f"{path}.out", f"{block.out} differs from the stage's width {stage[0].out}"))
            cin = block.out
    hd, hs = arch.head, d.head
    if isinstance(hs.channels, list):
        one_of("head.channels", hd.channels, list(hs.channels))
    elif hs.channels is None:
        one_of("head.channels", hd.channels, [None])
    elif hd.channels is None:
        found.append(("head.channels", "the space's head has a 1x1 conv"))
    else:
        in_range("head.channels", hd.channels, space.scale(hs.channels, max(lo_w, hs.channels_min_scale)),
                 space.scale(hs.channels, max(hi_w, hs.channels_min_scale)), div)
    if hs.hidden is None:
        one_of("head.hidden", hd.hidden, [None])
    elif hd.hidden is None:
        found.append(("head.hidden", "the space's head has a hidden linear layer"))
    else:
        in_range("head.hidden", hd.hidden, space.scale(hs.hidden, lo_w), space.scale(hs.hidden, hi_w), div)
    one_of("head.activation", hd.activation, list(hs.activation))
    if arch.bn != space.bn:
        want, have = space.bn, arch.bn
        found.append(("batchnorm", f"the space's networks use BatchNorm eps {want.eps:g}, momentum {want.momentum:g}; "
                                   f"this one eps {have.eps:g}, momentum {have.momentum:g}"))
    return found


def _channel_range(space: SearchSpace, st: StageSpace, lo_w: float, hi_w: float) -> tuple[int, int]:
    if isinstance(st.channels, list):
        return min(st.channels), max(st.channels)
    return space.scale(st.channels, lo_w), space.scale(st.channels, hi_w)


def _block_problems(space: SearchSpace, st: StageSpace, block: Block, cin: int,
                    first: bool) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for f, options in (("type", st.block), ("kernel", st.kernel), ("se", st.se),
                       ("activation", st.activation), ("groups", st.groups)):
        if getattr(block, f) not in options:
            found.append((f, f"{getattr(block, f)!r} is not one of {list(options)}"))
    stride = st.stride if first else 1
    if block.stride != stride:
        found.append(("stride", f"must be {stride} in this position"))
    natural: float
    if block.type is BlockType.mbconv:
        natural, divisor = cin, math.lcm(space.definition.channel_divisor, block.groups)
    elif block.type is BlockType.shufflev2:
        natural, divisor = block.out / 2, block.groups
    else:
        natural, divisor = block.out / 4, block.groups
    top = math.ceil(natural * max(st.expansion) / divisor) * divisor
    if block.mid > max(top, cin if block.type is BlockType.mbconv else 0):
        found.append(("mid", f"{block.mid} exceeds the widest expansion {max(st.expansion)} x {natural:g}"))
    elif block.mid % divisor and not (block.type is BlockType.mbconv and block.mid == cin):
        found.append(("mid", f"{block.mid} is not a multiple of {divisor}"))
    return found
