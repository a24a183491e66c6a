"""A space's baseline network and its whole-network variants, one per operator choice (``nas devices compare``).

The baseline takes every per-block choice at its plainest option (smallest kernel, no SE, relu, one group,
smallest expansion, the first block type), width 1.0 (else the middle width), and the middle depth and
channel options. A variant sets one family of choices in *every* block to one option ("every kernel set to
7"), which is how operator costs were first measured here (issue 15: MobileNetV3-Small with all kernels 7
costs ONNX Runtime 1.45x, LiteRT 5.5x); a block whose stage does not offer the option keeps the baseline's,
and the variant says how many blocks took it. Decoding goes through the space, so the same repairs apply
as in a search (a group count that does not divide a width falls back to the largest that does).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nas.errors import LatencyError

if TYPE_CHECKING:
    from nas.arch import Architecture
    from nas.spaces import Choices, SearchSpace

# Families of per-block choices, in the order rows are shown. Numeric ones measure their largest option by
# default (``all_options`` measures every one): the extremes show the cost, the middle ones take time.
FAMILIES = ("kernel", "se", "activation", "groups", "expansion", "block")
_NUMERIC = {"kernel", "groups", "expansion"}
_BLOCK_DIM = re.compile(r"^s(\d+)\.b(\d+)\.(\w+)$")


@dataclass(frozen=True)
class Variant:
    """One network to time: the baseline (``family`` None) or every block's ``family`` set to ``option``."""

    family: str | None
    option: Any
    arch: Architecture
    blocks: int  # blocks that take the option
    total_blocks: int

    @property
    def label(self) -> str:
        if self.family is None:
            return "baseline"
        option = self.option
        value = ("on" if option else "off") if isinstance(option, bool) else f"{option:g}" \
            if isinstance(option, float) else option
        return f"{self.family}={value}"


def _family(dimension: str) -> str:
    return dimension.rsplit(".", 1)[-1]


def _plainest(family: str, options: list[Any]) -> Any:
    if family == "activation":
        return "relu" if "relu" in options else options[0]
    if family == "block":
        return options[0]
    return min(options)


def baseline_choices(space: SearchSpace, resolution: int) -> Choices:
    """The baseline's choices (see the module docstring)."""
    choices: Choices = {}
    for name, options in space.dimensions().items():
        family = _family(name)
        if name == "resolution":
            choices[name] = resolution
        elif name == "width":
            choices[name] = 1.0 if 1.0 in options else sorted(options)[len(options) // 2]
        elif family in ("depth", "channels"):
            choices[name] = options[len(options) // 2]
        else:
            choices[name] = _plainest(family, options)
    return choices


def _active_blocks(choices: Choices) -> list[tuple[int, int]]:
    return sorted({(int(m[1]), int(m[2])) for name in choices if (m := _BLOCK_DIM.match(name))
                   and int(m[2]) < int(choices[f"s{m[1]}.depth"])})


def family_options(space: SearchSpace, family: str) -> list[Any]:
    """Every option any block of the space offers for ``family``, in the space's order."""
    seen: list[Any] = []
    for name, options in space.dimensions().items():
        if _BLOCK_DIM.match(name) and _family(name) == family:
            seen += [o for o in options if o not in seen]
    return seen


def variant(space: SearchSpace, base: Choices, family: str, option: Any) -> Variant:
    """The baseline with every block's (and the stem's and head's, for activation) ``family`` set to
    ``option`` wherever the space offers it."""
    choices = dict(base)
    for name, options in space.dimensions().items():
        if _family(name) == family and option in options:
            choices[name] = option
    active = _active_blocks(choices)
    taken = sum(choices[f"s{s}.b{b}.{family}"] == option for s, b in active)
    arch = space.decode(choices)
    if family == "groups":  # count what the decoder kept after its divisibility repairs
        taken = sum(block.groups == option for _, _, block in arch.blocks())
    return Variant(family, option, arch, taken, len(active))


def variants(space: SearchSpace, resolution: int, families: list[str] | None = None,
             all_options: bool = False) -> list[Variant]:
    """The baseline first, then one variant per family and option the space offers (see ``FAMILIES``)."""
    unknown = [f for f in families or [] if f not in FAMILIES]
    if unknown:
        raise LatencyError(f"choices: unknown choice {unknown[0]!r}; known: {', '.join(FAMILIES)}")
    base = baseline_choices(space, resolution)
    out = [Variant(None, None, space.decode(base), len(_active_blocks(base)), len(_active_blocks(base)))]
    for family in families or FAMILIES:
        options = family_options(space, family)
        if len(options) < 2:
            continue
        plain = _plainest(family, options)
        others = [o for o in options if o != plain]
        if family in _NUMERIC and not all_options:
            others = [max(others)]
        seen = {out[0].arch.hash}
        for option in others:
            v = variant(space, base, family, option)
            if v.arch.hash not in seen:  # e.g. a group count the decoder repaired away everywhere
                seen.add(v.arch.hash)
                out.append(v)
    return out
