"""What ``nas train`` does to a network: data, recipe, where its first weights come from and its teacher.

Validated without torch. The fingerprint names everything that changes the result, so a checkpoint is
resumed only by the job that wrote it.
"""

from __future__ import annotations

import hashlib
import json

from pydantic import BaseModel, ConfigDict, Field, model_validator

from nas.data import DatasetSpec
from nas.proxies import TrainRecipe


class TeacherSpec(BaseModel):
    """``source``: ``largest`` (the supernet's largest subnet), a state file (``.pt`` from ``nas.export``),
    or an architecture (reference name, JSON file, one-line string) whose weights come from the supernet."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str = Field(min_length=1)
    alpha: float = Field(default=0.5, ge=0.0, le=1.0, description="Weight of the KD term; 1 - alpha for CE.")
    temperature: float = Field(default=4.0, gt=0.0, le=100.0)


class TrainJob(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    dataset: DatasetSpec = DatasetSpec()
    recipe: TrainRecipe = TrainRecipe(epochs=30)
    supernet: str | None = Field(default=None, description="Supernet name or file, for `inherit` and teachers.")
    inherit: bool = Field(default=False, description="Start from the supernet's weights for this subnet.")
    teacher: TeacherSpec | None = None

    @model_validator(mode="after")
    def _supernet_when_needed(self) -> TrainJob:
        if self.inherit and self.supernet is None:
            raise ValueError("supernet: inheriting weights needs a supernet")
        if self.teacher is not None and self.supernet is None and not self.teacher.source.endswith(".pt"):
            raise ValueError(f"teacher.source: {self.teacher.source!r} takes its weights from a supernet; "
                             "give one, or a state file (.pt)")
        return self

    @property
    def fingerprint(self) -> str:
        body = self.model_dump(mode="json")
        body["recipe"] = self.recipe.fingerprint
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]
