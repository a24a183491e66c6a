"""Supernets as the API shows them. The request body is a ``nas.supernet.SupernetSpec`` document."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from nas.service.store import SearchStatus
from nas.service.supernets import SupernetRecord


class SupernetProgressPublic(BaseModel):
    phase: str = Field(description="queued, loading data, largest (the largest subnet alone), sandwich or uniform "
                       "(the spec's rule; -dense while 1x1 group counts are held dense), saving.")
    epoch: int | None = None
    epochs: int | None = None
    step: int | None = None
    total_steps: int | None = None
    fraction: float | None = Field(None, description="step / total_steps.")
    loss: float | None = Field(None, description="Mean loss of the last step's subnets.")
    last_eval: dict[str, float] = Field(default_factory=dict, description="Validation accuracy of the largest "
                                        "and smallest subnets at the last evaluated epoch.")
    elapsed_seconds: float | None = Field(None, description="Training time of the current attempt.")
    resumed_from_step: int | None = Field(None, description="The step the current attempt resumed from.")


class SupernetPublic(BaseModel):
    id: str
    name: str = Field(description="Unique in the service; a search spec's `proxy.supernet` names it.")
    status: SearchStatus
    progress: SupernetProgressPublic
    message: str
    error: str | None
    cancel_requested: bool
    attempts: int = Field(description="How many times a worker started (or resumed) the training.")
    worker: str | None
    fingerprint: str = Field(description="What a checkpoint must match to be resumed (space, data, recipe).")
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    spec: dict[str, Any]
    summary: dict[str, Any] | None = Field(description="Training history, written when it succeeded.")
    file: str | None = Field(description="Download of the trained supernet (once succeeded).")

    @classmethod
    def of(cls, r: SupernetRecord) -> SupernetPublic:
        p = dict(r.progress)
        steps, total = p.get("step"), p.get("total_steps")
        p["fraction"] = min(steps / total, 1.0) if steps is not None and total else None
        done = r.status is SearchStatus.succeeded
        return cls(id=r.id, name=r.name, status=r.status, progress=SupernetProgressPublic.model_validate(p),
                   message=r.message, error=r.error, cancel_requested=r.cancel_requested, attempts=r.attempts,
                   worker=r.worker, fingerprint=r.fingerprint, created_at=r.created_at, updated_at=r.updated_at,
                   started_at=r.started_at, finished_at=r.finished_at, spec=r.spec, summary=r.summary,
                   file=f"/supernets/{r.id}/file" if done else None)


class SupernetsPublic(BaseModel):
    data: list[SupernetPublic]
    count: int
