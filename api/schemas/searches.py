"""Searches as the API shows them. The request body is a ``nas.search.SearchSpec`` document."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from nas.service import SearchRecord, SearchStatus


class SearchProgress(BaseModel):
    finished: int = Field(description="Trials that used budget (completed, pruned or failed).")
    budget_trials: int | None
    running: int = Field(description="Candidates being evaluated now.")
    elapsed_seconds: float
    fraction: float | None = Field(description="finished / budget_trials, when there is a trial budget.")
    message: str


class SearchBest(BaseModel):
    trial: int | None = Field(description="Number of the best trial so far.")
    value: float | None = Field(description="Its reward (accuracy for Pareto searches).")
    within_target: bool | None = Field(default=None, description=(
        "Whether the result is within T by the final measurement (once the search succeeded; false means no "
        "network of the search is within T). While it runs, see `GET /searches/{id}/best`'s headers."))


class SearchPublic(BaseModel):
    id: str
    name: str
    study_name: str = Field(description="The Optuna study holding the trials (same database; see the dashboard).")
    status: SearchStatus
    progress: SearchProgress
    best: SearchBest
    error: str | None
    cancel_requested: bool
    attempts: int = Field(description="How many times a worker started (or resumed) the search.")
    worker: str | None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    spec: dict[str, Any]
    result: dict[str, Any] | None = Field(description="Summary written when the search succeeded.")
    warnings: list[str] = Field(default_factory=list, description="Things the search will wait for, found at "
                                "submission (e.g. no live worker on its device's latency queue).")

    @classmethod
    def of(cls, r: SearchRecord, warnings: list[str] | None = None) -> SearchPublic:
        fraction = min(r.finished / r.budget_trials, 1.0) if r.budget_trials else None
        return cls(
            id=r.id, name=r.name, study_name=r.study_name, status=r.status,
            progress=SearchProgress(finished=r.finished, budget_trials=r.budget_trials, running=r.running,
                                    elapsed_seconds=r.elapsed_seconds, fraction=fraction, message=r.message),
            best=SearchBest(trial=r.best_trial, value=r.best_value, within_target=_within(r.result)), error=r.error,
            cancel_requested=r.cancel_requested, attempts=r.attempts, worker=r.worker, created_at=r.created_at,
            updated_at=r.updated_at, started_at=r.started_at, finished_at=r.finished_at, spec=r.spec,
            result=r.result, warnings=warnings or [])


def _within(result: dict[str, Any] | None) -> bool | None:
    best = (result or {}).get("best") or {}
    within = best.get("within_target")
    return bool(within) if within is not None else None


class SearchesPublic(BaseModel):
    data: list[SearchPublic]
    count: int = Field(description="All searches matching the filter, not only this page.")


class TrialPublic(BaseModel):
    trial: int
    state: str
    arch_hash: str | None = None
    arch_string: str | None = None
    accuracy: float | None = None
    latency_ms: float | None = None
    latency_source: str | None = None
    latency_p10_ms: float | None = None
    latency_p90_ms: float | None = None
    reward: float | None = None
    params: int | None = None
    macs: int | None = None
    epochs_run: int | None = None
    strategy: str | None = None
    values: list[float | None] | None = None
    error: str | None = None
    datetime_start: datetime | None = None
    datetime_complete: datetime | None = None


class TrialsPublic(BaseModel):
    data: list[TrialPublic]
    count: int


class ParetoTrialPublic(TrialPublic):
    architecture: dict[str, Any] | None = None


class ParetoPublic(BaseModel):
    data: list[ParetoTrialPublic] = Field(description="Non-dominated (accuracy, latency) trials, fastest first.")
    count: int
