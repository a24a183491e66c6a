"""Trainings as the API shows them. The request body is a ``nas.training.TrainingSpec`` document."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from nas.service.spec_jobs import JobRecord
from nas.service.store import SearchStatus


class TrainingProgressPublic(BaseModel):
    phase: str = Field(description="queued, loading data, training, saving.")
    epoch: int | None = None
    epochs: int | None = None
    step: int | None = None
    total_steps: int | None = None
    fraction: float | None = Field(None, description="step / total_steps.")
    loss: float | None = Field(None, description="Mean training loss of the epoch so far.")
    val_accuracy: float | None = Field(None, description="Validation accuracy after the last finished epoch.")
    elapsed_seconds: float | None = Field(None, description="Training time of the current attempt.")
    resumed_from_step: int | None = Field(None, description="The step the current attempt resumed from.")


class TrainingPublic(BaseModel):
    id: str
    name: str = Field(description="A label; GET /trainings/{name} finds your newest of that name.")
    status: SearchStatus
    progress: TrainingProgressPublic
    message: str
    error: str | None
    cancel_requested: bool
    attempts: int = Field(description="How many times a worker started (or resumed) the training.")
    worker: str | None
    fingerprint: str = Field(description="What a checkpoint must match to be resumed (data, recipe, teacher).")
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    spec: dict[str, Any] = Field(description="As submitted, with a search's best written in as `architecture`.")
    summary: dict[str, Any] | None = Field(description="Accuracy, history and provenance, written when it "
                                           "succeeded.")
    files: dict[str, str] = Field(description="Downloads by file name (model.pt, model.onnx, the device's file, "
                                  "its provenance, summary.json), once succeeded.")

    @classmethod
    def of(cls, r: JobRecord) -> TrainingPublic:
        p = dict(r.progress)
        steps, total = p.get("step"), p.get("total_steps")
        p["fraction"] = min(steps / total, 1.0) if steps is not None and total else None
        names = (r.summary or {}).get("files", []) if r.status is SearchStatus.succeeded else []
        return cls(id=r.id, name=r.name, status=r.status, progress=TrainingProgressPublic.model_validate(p),
                   message=r.message, error=r.error, cancel_requested=r.cancel_requested, attempts=r.attempts,
                   worker=r.worker, fingerprint=r.fingerprint, created_at=r.created_at, updated_at=r.updated_at,
                   started_at=r.started_at, finished_at=r.finished_at, spec=r.spec, summary=r.summary,
                   files={name: f"/trainings/{r.id}/files/{name}" for name in names})


class TrainingsPublic(BaseModel):
    data: list[TrainingPublic]
    count: int
