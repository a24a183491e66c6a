"""``POST /trainings``' document: ``nas train``'s options for one network, named as the service names things.

The network is an architecture (reference name, one-line string or inline document) or a search's best
(``search``: its id); ``supernet`` is a supernet of the service (``POST /supernets``) by name; a teacher is
``largest`` or an architecture taken from that supernet. No server path is accepted: dataset paths only
under ``NAS_DATA_DIRS``, no state files. Validated without torch.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, model_validator

from nas._documents import SERVICE_RULES, first_error, service_rules
from nas.arch import Architecture
from nas.arch._io import ArchitectureRef, architecture_field
from nas.data import DatasetSpec
from nas.errors import SpecError
from nas.proxies import TrainRecipe
from nas.training._job import TeacherSpec, TrainJob


class TrainingSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$", description=(
        "A label (not unique); default: train-<architecture hash>."))
    architecture: ArchitectureRef | None = Field(default=None, description=(
        "The network: a reference name, the one-line string form or an inline document."))
    search: str | None = Field(default=None, min_length=1, max_length=64, description=(
        "Instead of `architecture`: a succeeded search's id; its best network is trained, exported for its "
        "device unless `device` says otherwise. (The stored spec keeps both: `architecture` is that best.)"))
    device: str | None = Field(default=None, min_length=1, max_length=64, description=(
        "Device profile whose deployed format (ONNX, TFLite, OpenVINO, int8) the trained network is exported "
        "in, beside model.pt and model.onnx."))
    dataset: DatasetSpec = DatasetSpec()
    recipe: TrainRecipe = TrainRecipe(epochs=30)
    supernet: str | None = Field(default=None, min_length=1, max_length=100, description=(
        "A supernet of the service, by name, for `inherit` and supernet teachers."))
    inherit: bool = Field(default=False, description="Start from the supernet's weights for this subnet.")
    teacher: TeacherSpec | None = Field(default=None, description=(
        "Knowledge distillation: `largest` (the supernet's largest subnet) or an architecture whose weights "
        "come from the supernet."))

    @model_validator(mode="after")
    def _one_network(self, info: ValidationInfo) -> TrainingSpec:
        if self.architecture is None and self.search is None:
            raise ValueError("architecture: give one of architecture and search")
        if self.architecture is not None:
            architecture_field(self.architecture, files=not service_rules(info), field="architecture")
        if self.teacher is not None:
            if self.teacher.source.endswith(".pt"):
                raise ValueError("teacher.source: state files are server paths; a teacher is `largest` or an "
                                 "architecture whose weights come from the supernet")
            if self.teacher.source != "largest":
                architecture_field(self.teacher.source, files=not service_rules(info), field="teacher.source")
        if self.supernet is None and (self.inherit or self.teacher is not None):
            raise ValueError("supernet: inheriting weights and a teacher take weights from a supernet; name one")
        return self

    @property
    def job(self) -> TrainJob:
        """What is trained (the fingerprint a checkpoint must match); the supernet by its service name."""
        return TrainJob(dataset=self.dataset, recipe=self.recipe, supernet=self.supernet, inherit=self.inherit,
                        teacher=self.teacher)

    def network(self) -> Architecture:
        """The architecture named by ``architecture`` (through the service's rules: no files)."""
        assert self.architecture is not None, "a search's best is resolved into `architecture` at submission"
        return architecture_field(self.architecture, files=False, field="architecture")


def parse_training_spec(data: object, source: str = "<inline>") -> TrainingSpec:
    """Under the service's rules; ``SpecError(source, field, reason)`` for the first problem."""
    if not isinstance(data, dict):
        raise SpecError(source, "(document)", "a training spec must be a mapping")
    try:
        return TrainingSpec.model_validate(data, context=SERVICE_RULES)
    except ValidationError as exc:
        raise SpecError(source, *first_error(exc)) from None


def resolved(spec: TrainingSpec, architecture: dict[str, Any], device: str | None) -> TrainingSpec:
    """``spec`` with a search's best written in as ``architecture`` (and its device, unless one was given)."""
    return spec.model_copy(update={"architecture": architecture, "device": spec.device or device})
