"""The declarative search-space format (``search_spaces/*.yaml``), as pydantic models.

A space is a stem, stages of blocks and a head. Per stage: block type(s), output channels (an int
scaled by the space's width multipliers, or a list of absolute choices), stride, and choice lists for
depth, expansion, kernel, squeeze-excite, activation and 1x1-conv groups. ``expansion`` is relative to
each block type's natural width: the input channels of an mbconv, half the output of a ShuffleNet V2
unit, a quarter of the output of a ShuffleNet V1 unit (so 1.0 is the paper's unit).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from nas.arch import Activation, BatchNorm, BlockType


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _non_empty_unique(values: list) -> list:  # type: ignore[type-arg]
    if not values:
        raise ValueError("needs at least one choice")
    if len(set(values)) != len(values):
        raise ValueError(f"choices must be unique, got {values}")
    return values


class StemSpace(_Strict):
    channels: int = Field(gt=0, le=1024)
    kernel: Literal[3, 5, 7] = 3
    stride: Literal[1, 2] = 2
    activation: list[Activation] = [Activation.relu]
    pool: bool = False

    _check = field_validator("activation")(_non_empty_unique)


class StageSpace(_Strict):
    block: list[BlockType]
    channels: int | list[int]
    stride: Literal[1, 2] = 1
    depth: list[int]
    expansion: list[float]
    kernel: list[Literal[3, 5, 7]] = [3]
    se: list[bool] = [False]
    activation: list[Activation] = [Activation.relu]
    groups: list[Literal[1, 2, 3, 4, 8]] = [1]

    _check = field_validator("block", "depth", "expansion", "kernel", "se", "activation", "groups")(
        _non_empty_unique
    )

    @field_validator("depth")
    @classmethod
    def _depth_range(cls, v: list[int]) -> list[int]:
        if any(d < 1 or d > 16 for d in v):
            raise ValueError(f"depths must be between 1 and 16, got {v}")
        return v

    @field_validator("expansion")
    @classmethod
    def _expansion_range(cls, v: list[float]) -> list[float]:
        if any(e <= 0 or e > 16 for e in v):
            raise ValueError(f"expansion ratios must be in (0, 16], got {v}")
        return v

    @field_validator("channels")
    @classmethod
    def _channels_positive(cls, v: int | list[int]) -> int | list[int]:
        values = v if isinstance(v, list) else [v]
        if not values or any(c <= 0 or c > 8192 for c in values):
            raise ValueError(f"channels must be between 1 and 8192, got {v}")
        return v


class HeadSpace(_Strict):
    channels: int | list[int | None] | None = None
    channels_min_scale: float = Field(default=0.0, ge=0.0, description="Scale floor (MobileNetV2: 1.0).")
    hidden: int | None = Field(default=None, gt=0)
    activation: list[Activation] = [Activation.relu]
    dropout: float = Field(default=0.0, ge=0.0, lt=1.0)

    _check = field_validator("activation")(_non_empty_unique)  # an empty list parsed, then sampling crashed

    @field_validator("channels")
    @classmethod
    def _channel_choices(cls, v: int | list[int | None] | None) -> int | list[int | None] | None:
        return _non_empty_unique(v) if isinstance(v, list) else v


class SpaceDefinition(_Strict):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")
    description: str = ""
    channel_divisor: int = Field(default=8, ge=1, le=64)
    resolution: list[int] = [224]
    num_classes: int = Field(default=1000, ge=1)
    width: list[float] = [1.0]
    stem: StemSpace
    stages: list[StageSpace] = Field(min_length=1, max_length=12)
    head: HeadSpace
    batchnorm: BatchNorm | None = Field(
        default=None, description="BatchNorm eps/momentum of every member (MobileNetV3: 0.001/0.01); "
                                  "absent: PyTorch's defaults (1e-5/0.1).")

    @field_validator("resolution")
    @classmethod
    def _resolutions(cls, v: list[int]) -> list[int]:
        if not v or any(r < 32 or r > 1024 for r in v):
            raise ValueError(f"resolutions must be between 32 and 1024, got {v}")
        return v

    @field_validator("width")
    @classmethod
    def _widths(cls, v: list[float]) -> list[float]:
        if not v or any(w <= 0 or w > 4 for w in v):
            raise ValueError(f"width multipliers must be in (0, 4], got {v}")
        return v

    @model_validator(mode="after")
    def _shuffle_stages_downsample(self) -> SpaceDefinition:
        for i, stage in enumerate(self.stages):
            shuffle = {BlockType.shufflev1, BlockType.shufflev2} & set(stage.block)
            if shuffle and stage.stride != 2:
                raise ValueError(f"stages.{i}.stride: ShuffleNet stages must start with stride 2")
        return self
