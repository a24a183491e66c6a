"""What a proxy dataset is (a small, typed spec the API can validate without torch) and what loading gives."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field, model_validator

if TYPE_CHECKING:
    import torch


class DatasetKind(StrEnum):
    digits = "digits"
    cifar10 = "cifar10"
    imagefolder = "imagefolder"


class DatasetSpec(BaseModel):
    """A proxy dataset: where it is, the proxy resolution, how much of it, and the seeded split.

    ``subset`` keeps that many examples in total (stratified, seeded) *before* the train/validation
    split, so large sources stay cheap to load. The CIFAR-10 test batch is never used: a search selects
    on a validation split of the training batches, so the test set stays untouched for final reporting.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: DatasetKind = DatasetKind.digits
    path: Path | None = Field(default=None, description="Directory for cifar10 / imagefolder; none for digits.")
    resolution: int = Field(default=32, ge=8, le=512, description="Square side the images are resized to.")
    subset: int | None = Field(default=None, ge=2, description="Examples kept in total; None: all.")
    val_fraction: float = Field(default=0.2, gt=0.0, lt=1.0)
    seed: int = Field(default=0, ge=0)

    @model_validator(mode="after")
    def _check_path(self) -> DatasetSpec:
        if self.kind is DatasetKind.digits and self.path is not None:
            raise ValueError("path: digits ships with scikit-learn and takes no path")
        if self.kind is not DatasetKind.digits and self.path is None:
            raise ValueError(f"path: required for kind={self.kind.value}")
        return self

    @property
    def name(self) -> str:
        """Short provenance label, e.g. ``digits@32`` or ``cifar10:/data/cifar@32``."""
        where = f":{self.path}" if self.path is not None else ""
        sub = f"[{self.subset}]" if self.subset else ""
        return f"{self.kind.value}{where}{sub}@{self.resolution}"


@dataclass(eq=False)
class ProxyData:
    """In-memory, normalised float32 tensors ``[N, 3, R, R]`` and int64 labels; small by construction."""

    train_x: torch.Tensor = field(repr=False)
    train_y: torch.Tensor = field(repr=False)
    val_x: torch.Tensor = field(repr=False)
    val_y: torch.Tensor = field(repr=False)
    num_classes: int
    name: str
    class_names: list[str] = field(default_factory=list, repr=False)

    @property
    def resolution(self) -> int:
        return int(self.train_x.shape[-1])

    def __str__(self) -> str:
        return (f"{self.name}: {len(self.train_y)} train / {len(self.val_y)} val, "
                f"{self.num_classes} classes, {self.resolution}x{self.resolution}")
