"""A loaded search space: its choice dimensions, decoding choices into architectures, sampling, mutation.

Decoding is total: every combination of choices yields a valid architecture. Where a combination
breaks a shape rule (a group count that does not divide a width, a ShuffleNet V1 stage narrower
than its input), the decoder repairs it deterministically and boundedly (the largest allowed group
count that fits; the next wider channel choice), so Optuna's static distributions stay usable.
"""

from __future__ import annotations

import math
import random
from typing import Any

from nas.arch import PYTORCH_BATCHNORM, Architecture, BatchNorm, BlockType, parse_architecture
from nas.channels import make_divisible
from nas.spaces._schema import SpaceDefinition, StageSpace

Choices = dict[str, Any]


class SearchSpace:
    def __init__(self, definition: SpaceDefinition, source: str = "<memory>") -> None:
        self.definition = definition
        self.source = source
        self._dims: dict[str, list[Any]] | None = None
        self._choosable: list[tuple[str, tuple[str, int] | None]] | None = None

    @property
    def name(self) -> str:
        return self.definition.name

    @property
    def bn(self) -> BatchNorm:
        """The BatchNorm settings of every member (PyTorch's defaults unless the space names others)."""
        return self.definition.batchnorm or PYTORCH_BATCHNORM

    # -- dimensions ----------------------------------------------------------------------
    def dimensions(self) -> dict[str, list[Any]]:
        """Every choice, with its options, in a fixed order (names double as Optuna parameter names)."""
        return {name: list(options) for name, options in self._dimensions().items()}

    def _dimensions(self) -> dict[str, list[Any]]:
        """``dimensions()`` built once (not copied): sampling and mutation ask for it on every candidate, and
        building it was a third of the time evolution spent per candidate."""
        if self._dims is None:
            self._dims = self._build_dimensions()
        return self._dims

    def _build_dimensions(self) -> dict[str, list[Any]]:
        d = self.definition
        dims: dict[str, list[Any]] = {"resolution": list(d.resolution), "width": list(d.width),
                                      "stem.activation": [a.value for a in d.stem.activation]}
        for s, st in enumerate(d.stages):
            if isinstance(st.channels, list):
                dims[f"s{s}.channels"] = list(st.channels)
            dims[f"s{s}.depth"] = list(st.depth)
            for b in range(max(st.depth)):
                p = f"s{s}.b{b}"
                dims[f"{p}.block"] = [t.value for t in st.block]
                dims[f"{p}.expansion"] = list(st.expansion)
                dims[f"{p}.kernel"] = list(st.kernel)
                dims[f"{p}.se"] = list(st.se)
                dims[f"{p}.activation"] = [a.value for a in st.activation]
                dims[f"{p}.groups"] = list(st.groups)
        if isinstance(d.head.channels, list):
            dims["head.channels"] = list(d.head.channels)
        dims["head.activation"] = [a.value for a in d.head.activation]
        return dims

    def active_dimensions(self, choices: Choices) -> list[str]:
        """Dimensions that change the decoded network (blocks beyond a stage's depth do not)."""
        if self._choosable is None:
            self._choosable = []
            for name, options in self._dimensions().items():
                if len(options) < 2:
                    continue
                parts = name.split(".")
                within = None
                if len(parts) == 3 and parts[1].startswith("b"):
                    within = (f"{parts[0]}.depth", int(parts[1][1:]))
                self._choosable.append((name, within))
        return [name for name, within in self._choosable if within is None or within[1] < choices[within[0]]]

    # -- sampling and mutation ---------------------------------------------------------------
    def sample_choices(self, rng: random.Random) -> Choices:
        return {name: rng.choice(options) for name, options in self._dimensions().items()}

    def sample(self, seed: int | None = None, rng: random.Random | None = None,
               num_classes: int | None = None) -> Architecture:
        rng = rng or random.Random(seed)
        return self.decode(self.sample_choices(rng), num_classes=num_classes)

    def mutate(self, choices: Choices, rng: random.Random) -> Choices:
        """A copy with exactly one active choice changed to a different option."""
        active = self.active_dimensions(choices)
        if not active:
            return dict(choices)
        name = rng.choice(active)
        options = [o for o in self._dimensions()[name] if o != choices[name]]
        return {**choices, name: rng.choice(options)}

    # -- decoding ------------------------------------------------------------------------
    def scale(self, base: int, width: float) -> int:
        return make_divisible(base * width, self.definition.channel_divisor)

    def decode(self, choices: Choices, num_classes: int | None = None) -> Architecture:
        d = self.definition
        width = float(choices["width"])
        stem_ch = self.scale(d.stem.channels, width)
        doc: dict[str, Any] = {
            "space": d.name, "resolution": int(choices["resolution"]),
            "num_classes": num_classes or d.num_classes,
            "stem": {"channels": stem_ch, "kernel": d.stem.kernel, "stride": d.stem.stride,
                     "activation": choices["stem.activation"], "pool": d.stem.pool},
        }
        stages, cin = [], stem_ch
        for s, st in enumerate(d.stages):
            out = self._stage_channels(s, st, choices, width)
            blocks = []
            for b in range(int(choices[f"s{s}.depth"])):
                block = self._decode_block(choices, f"s{s}.b{b}", st, cin, out, b == 0 and s == 0, b == 0)
                blocks.append(block)
                cin = block["out"]
                out = cin
            stages.append(blocks)
        doc["stages"] = stages
        hd = d.head
        if isinstance(hd.channels, list):
            head_ch = choices["head.channels"]
        elif hd.channels is not None:
            head_ch = self.scale(hd.channels, max(width, hd.channels_min_scale))
        else:
            head_ch = None
        doc["head"] = {"channels": head_ch, "activation": choices["head.activation"], "dropout": hd.dropout,
                       "hidden": self.scale(hd.hidden, width) if hd.hidden else None}
        if d.batchnorm is not None:
            doc["batchnorm"] = d.batchnorm.model_dump(mode="json")
        return parse_architecture(doc, source=f"{self.name} decoder")

    def _stage_channels(self, s: int, st: StageSpace, choices: Choices, width: float) -> int:
        if isinstance(st.channels, list):
            return int(choices[f"s{s}.channels"])
        return self.scale(st.channels, width)

    def _decode_block(self, choices: Choices, p: str, st: StageSpace, cin: int, out: int,
                      first_in_net: bool, first_in_stage: bool) -> dict[str, Any]:
        kind = BlockType(choices[f"{p}.block"])
        stride = st.stride if first_in_stage else 1
        if kind is BlockType.shufflev1 and stride == 2 and out <= cin:
            out = self._wider_choice(st, cin)
        if kind is not BlockType.mbconv and stride == 1:
            out = cin
        dense_first = kind is BlockType.shufflev1 and first_in_net
        groups = self._fit_groups(kind, int(choices[f"{p}.groups"]), st, cin, out, stride, dense_first)
        e = float(choices[f"{p}.expansion"])
        if kind is BlockType.mbconv:
            mid = cin if e == 1 else make_divisible(cin * e, math.lcm(self.definition.channel_divisor, groups))
        else:
            natural = out / 2 if kind is BlockType.shufflev2 else out / 4
            mid = max(groups, int(round(natural * e / groups)) * groups)
        return {"type": kind.value, "out": out, "mid": mid, "stride": stride,
                "kernel": choices[f"{p}.kernel"], "se": choices[f"{p}.se"],
                "activation": choices[f"{p}.activation"], "groups": groups, "group_first_conv": not dense_first}

    def _wider_choice(self, st: StageSpace, cin: int) -> int:
        options = sorted(st.channels) if isinstance(st.channels, list) else [st.channels]
        wider = [c for c in options if c > cin]
        step = self.definition.channel_divisor
        return wider[0] if wider else (cin // step + 1) * step

    @staticmethod
    def _fit_groups(kind: BlockType, wanted: int, st: StageSpace, cin: int, out: int, stride: int,
                    dense_first: bool) -> int:
        """The largest allowed group count <= wanted that divides every grouped width (1 always fits)."""
        if kind is BlockType.mbconv:
            widths = [cin, out]
        elif kind is BlockType.shufflev2:
            widths = [cin if stride == 2 else cin // 2, out // 2]
        else:
            widths = [out - cin if stride == 2 else out] + ([] if dense_first else [cin])
        for g in sorted((g for g in st.groups if g <= wanted), reverse=True):
            if all(w % g == 0 for w in widths):
                return g
        return 1
