"""Every read and write of networks trained by the service (``POST /trainings``): rows of ``nas_trainings``.

The life cycle is ``nas.service.spec_jobs``' (queued -> running -> final, one trainer at a time through a
lease; a dead worker's training is taken over and resumed from its last epoch's checkpoint). The
checkpoint, the trained weights (``model.pt``), ``model.onnx``, the device's file(s) and ``summary.json``
are artifacts in the scope ``training-<id>``. Torch-free, so the API can import it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nas.service._models import TrainingRow
from nas.service.spec_jobs import JobRecord, SpecJobs

if TYPE_CHECKING:
    from nas.training import TrainingSpec

CHECKPOINT = "checkpoint.pt"
TRAININGS = SpecJobs(TrainingRow, "training")
get_training, list_trainings, claim_training = TRAININGS.get, TRAININGS.list, TRAININGS.claim
touch_training, update_training_progress = TRAININGS.touch, TRAININGS.update_progress
finish_training, request_training_cancel = TRAININGS.finish, TRAININGS.request_cancel


def artifact_scope(training_id: str) -> str:
    """Where a training's files live in ``nas_artifacts`` (its "study name")."""
    return f"training-{training_id}"


def create_training(url: str, spec: TrainingSpec, owner_id: str | None) -> JobRecord:
    """A queued training of ``spec`` (its architecture resolved: a search's best is written in)."""
    arch = spec.network()
    name = spec.name or f"train-{arch.hash}"
    return TRAININGS.create(url, name, spec.model_dump(mode="json", exclude_none=True),
                            spec.job.fingerprint, owner_id)
