"""What a proxy dataset is (a small, typed spec the API can validate without torch) and what loading gives."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, model_validator

from nas._documents import service_rules

if TYPE_CHECKING:
    import torch


DIGITS_EXAMPLES = 1797
"""scikit-learn's digits: known without loading it, so a larger ``subset`` is refused with the spec."""


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
    def _check_path(self, info: ValidationInfo) -> DatasetSpec:
        if self.kind is DatasetKind.digits and self.path is not None:
            raise ValueError("path: digits ships with scikit-learn and takes no path")
        if self.kind is not DatasetKind.digits and self.path is None:
            raise ValueError(f"path: required for kind={self.kind.value}")
        if self.kind is DatasetKind.digits and self.subset is not None and self.subset > DIGITS_EXAMPLES:
            raise ValueError(f"subset: digits has {DIGITS_EXAMPLES} examples, {self.subset} asked for")
        if self.path is not None and service_rules(info):
            check_under_data_dirs(self.path, "path", "a dataset path")
        return self

    @property
    def name(self) -> str:
        """Short provenance label, e.g. ``digits@32`` or ``cifar10:/data/cifar@32``."""
        where = f":{self.path}" if self.path is not None else ""
        sub = f"[{self.subset}]" if self.subset else ""
        return f"{self.kind.value}{where}{sub}@{self.resolution}"


def check_under_data_dirs(path: Path, field: str, what: str) -> None:
    """Through the service a file or dataset path must lie under a configured data directory (``NAS_DATA_DIRS``).

    Decided on the path's text and the data directories alone: absolute, no ``..``, lexically under a data
    directory, and still under it once symlinks inside it are resolved. Every refusal has the same message,
    so a request can neither make a worker read a server directory nor learn whether a path exists."""
    import os

    from nas.settings import get_settings

    roots = [Path(os.path.abspath(r)) for r in get_settings().data_dirs]
    if not roots:
        raise ValueError(f"{field}: this service takes no server paths (NAS_DATA_DIRS is empty): run the search "
                         "locally with `nas run`" + (", or use kind digits" if field == "path" else ""))
    if not _under(path, roots):
        raise ValueError(f"{field}: {what} submitted to the service must be an absolute path under "
                         + ", ".join(str(r) for r in roots) + " (NAS_DATA_DIRS)")


def _under(path: Path, roots: list[Path]) -> bool:
    import os

    if not path.is_absolute() or ".." in path.parts:
        return False
    lexical = Path(os.path.normpath(path))
    root = next((r for r in roots if lexical.is_relative_to(r)), None)
    try:  # only symlinks inside the data directory are followed: the path is lexically under it
        return root is not None and Path(os.path.realpath(lexical)).is_relative_to(os.path.realpath(root))
    except (OSError, ValueError):  # a NUL byte, a symlink loop: refused like any other
        return False


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
