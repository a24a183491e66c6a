"""The canonical architecture document: one versioned pydantic model, structurally validated.

Channels are absolute (not ratios) so that every network a strategy can reach, including NetAdapt's
per-layer shrinks and the width-scaled published references, has exactly one encoding.
Membership in a search space is checked separately (``nas.spaces``).
"""

from __future__ import annotations

import hashlib
import json
from enum import StrEnum
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    ValidationError,
    field_validator,
    model_serializer,
    model_validator,
)

from nas._documents import first_error
from nas.errors import ArchitectureError

SCHEMA_VERSION = 1


class Activation(StrEnum):
    relu = "relu"
    relu6 = "relu6"
    hswish = "hswish"


class BlockType(StrEnum):
    mbconv = "mbconv"
    shufflev1 = "shufflev1"
    shufflev2 = "shufflev2"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Block(_Frozen):
    """One unit. ``mid`` is the width of the block's inner layer: the expanded width of an mbconv,
    the bottleneck of a ShuffleNet V1 unit, the middle of a ShuffleNet V2 branch."""

    type: BlockType
    out: int = Field(gt=0, le=8192)
    mid: int = Field(gt=0, le=32768)
    stride: Literal[1, 2] = 1
    kernel: Literal[3, 5, 7] = 3
    se: bool = False
    activation: Activation = Activation.relu
    groups: Literal[1, 2, 3, 4, 8] = 1
    group_first_conv: bool = Field(
        default=True, description="False keeps the first 1x1 conv dense (ShuffleNet's first unit)."
    )


class Stem(_Frozen):
    channels: int = Field(gt=0, le=1024)
    kernel: Literal[3, 5, 7] = 3
    stride: Literal[1, 2] = 2
    activation: Activation = Activation.relu
    pool: bool = Field(default=False, description="3x3 stride-2 max pool after the conv (ShuffleNet).")


class Head(_Frozen):
    channels: int | None = Field(default=None, gt=0, le=8192, description="1x1 conv + BN + act; None: none")
    hidden: int | None = Field(default=None, gt=0, le=8192, description="Linear + act after the pool")
    activation: Activation = Activation.relu
    dropout: float = Field(default=0.0, ge=0.0, lt=1.0)


class BatchNorm(_Frozen):
    """Settings of every BatchNorm layer, in PyTorch's convention (running = (1 - momentum) x running +
    momentum x batch). An architecture without them uses PyTorch's defaults, eps 1e-5 and momentum 0.1,
    as torchvision's MobileNetV2 and ShuffleNets do; MobileNetV3 was published with eps 1e-3 and momentum
    0.01 (TensorFlow's decay 0.99), and its weights only reproduce with that eps, so its spaces and
    references carry them. Part of the network's identity: eps changes its outputs, momentum its training."""

    eps: float = Field(default=1e-5, gt=0.0, le=0.1)
    momentum: float = Field(default=0.1, gt=0.0, le=1.0)


PYTORCH_BATCHNORM = BatchNorm()


class Architecture(_Frozen):
    schema_version: Literal[1] = 1
    space: str | None = None
    resolution: int = Field(default=224, ge=32, le=1024)
    num_classes: int = Field(default=1000, ge=1, le=100_000)
    stem: Stem
    stages: list[list[Block]] = Field(min_length=1)
    head: Head
    batchnorm: BatchNorm | None = Field(
        default=None,
        description="BatchNorm eps and momentum; absent (None): PyTorch's defaults. Omitted from the "
                    "document when absent, so documents written before the field existed keep their hash.")

    @model_serializer(mode="wrap")
    def _omit_absent_batchnorm(self, handler: SerializerFunctionWrapHandler) -> Any:
        """Field-level ``exclude_if`` needs pydantic 2.12, which LiteRT's converter does not allow."""
        data = handler(self)
        if isinstance(data, dict) and "batchnorm" in data and data["batchnorm"] is None:
            del data["batchnorm"]
        return data

    @field_validator("batchnorm")
    @classmethod
    def _one_encoding_for_the_defaults(cls, v: BatchNorm | None) -> BatchNorm | None:
        return None if v == PYTORCH_BATCHNORM else v

    @model_validator(mode="after")
    def _check_structure(self) -> Architecture:
        for field, reason in structural_problems(self):
            raise ValueError(f"{field}: {reason}")
        return self

    # -- derived views -------------------------------------------------------------------
    def blocks(self) -> list[tuple[str, int, Block]]:
        """(field path, input channels, block) for every block in order."""
        result, channels = [], self.stem.channels
        for s, stage in enumerate(self.stages):
            for b, block in enumerate(stage):
                result.append((f"stages[{s}][{b}]", channels, block))
                channels = block.out
        return result

    @property
    def bn(self) -> BatchNorm:
        """The BatchNorm settings in force (PyTorch's defaults when the document has none)."""
        return self.batchnorm or PYTORCH_BATCHNORM

    @property
    def last_channels(self) -> int:
        return self.stages[-1][-1].out if self.stages[-1] else self.stem.channels

    def canonical_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))

    @property
    def hash(self) -> str:
        """Content hash of the network itself: the ``space`` label and input resolution are left out,
        so the same weights-compatible module hashes equally in every space and at every resolution."""
        body = self.model_dump(mode="json", exclude={"space", "resolution"})
        text = json.dumps(body, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def with_(self, **changes: object) -> Architecture:
        """A validated copy with top-level fields replaced."""
        return parse_architecture({**self.model_dump(mode="json"), **_jsonable(changes)})


def _jsonable(changes: dict[str, object]) -> dict[str, object]:
    return {k: (v.model_dump(mode="json") if isinstance(v, BaseModel) else v) for k, v in changes.items()}


def structural_problems(arch: Architecture) -> list[tuple[str, str]]:
    """Shape rules every buildable network obeys, whatever its space."""
    problems: list[tuple[str, str]] = []
    for path, cin, block in arch.blocks():
        problems += [(f"{path}.{f}", r) for f, r in _block_problems(block, cin)]
    if any(len(stage) == 0 for stage in arch.stages):
        problems.append(("stages", "every stage needs at least one block"))
    return problems


def _block_problems(block: Block, cin: int) -> list[tuple[str, str]]:
    g, out, mid = block.groups, block.out, block.mid
    found: list[tuple[str, str]] = []
    if block.type is BlockType.mbconv:
        if g > 1:
            dense_in = not block.group_first_conv or mid == cin
            for name, value in (("in channels", cin), ("mid", mid), ("out", out)):
                if name == "in channels" and dense_in:
                    continue
                if value % g:
                    found.append(("groups", f"{name} {value} is not divisible by groups {g}"))
    elif block.type is BlockType.shufflev2:
        if out % 2:
            found.append(("out", f"ShuffleNet V2 units split channels in half; {out} is odd"))
        if block.stride == 1 and cin != out:
            found.append(("out", f"a stride-1 ShuffleNet V2 unit keeps its width: in {cin} != out {out}"))
        if block.stride == 1 and cin % 2:
            found.append(("out", f"input width {cin} is odd and cannot be split"))
        branch_in = cin // 2 if block.stride == 1 else cin
        for name, value in (("branch input", branch_in), ("mid", mid), ("branch output", out // 2)):
            if g > 1 and value % g:
                found.append(("groups", f"{name} {value} is not divisible by groups {g}"))
    else:  # shufflev1
        if block.stride == 1 and cin != out:
            found.append(("out", f"a stride-1 ShuffleNet V1 unit adds its input: in {cin} != out {out}"))
        if block.stride == 2 and out <= cin:
            found.append(("out", f"a stride-2 ShuffleNet V1 unit concatenates its input: out {out} <= in {cin}"))
        branch_out = out - cin if block.stride == 2 else out
        checks = [("mid", mid), ("branch output", branch_out)]
        if block.group_first_conv:
            checks.insert(0, ("in channels", cin))
        for name, value in checks:
            if g > 1 and value % g:
                found.append(("groups", f"{name} {value} is not divisible by groups {g}"))
    return found


def parse_architecture(data: object, source: str | None = None) -> Architecture:
    """Validate a decoded JSON document; errors name the first offending field and the reason."""
    if not isinstance(data, dict):
        raise ArchitectureError("(document)", "an architecture must be a JSON object", source)
    version = data.get("schema_version", SCHEMA_VERSION)
    if version != SCHEMA_VERSION:
        raise ArchitectureError("schema_version", f"unsupported version {version!r}; expected 1", source)
    try:
        return Architecture.model_validate(data)
    except ValidationError as exc:
        raise ArchitectureError(*first_error(exc), source) from None
