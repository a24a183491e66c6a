"""Trainings: train a network to convergence on the ``train`` queue (what ``nas train`` does), list, read,
cancel, download its files.

The network is an architecture or a succeeded search's best (``search``); it can start from a service
supernet's weights (``inherit``) and learn from a teacher (``teacher``: ``largest`` or an architecture
from that supernet). The trained weights, ONNX and the device's own file with its provenance are served
under ``/trainings/{id}/files/``. Another token's training is a 404.
"""

from __future__ import annotations

import hashlib
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, Response, status
from starlette.concurrency import run_in_threadpool

from api.deps import CurrentToken, DatabaseUrl, Limit, Offset, SettingsDep
from api.openapi import TRAINING_SPEC_BODY
from api.routes._queued import store_and_queue
from api.schemas.errors import UNAUTHORIZED, error
from api.schemas.trainings import TrainingPublic, TrainingsPublic
from nas.errors import NotFoundError
from nas.service.artifacts import read_artifact
from nas.service.training_validate import validate_training_submission
from nas.service.trainings import (
    CHECKPOINT,
    TRAININGS,
    artifact_scope,
    create_training,
    get_training,
    list_trainings,
    request_training_cancel,
)
from workers.dispatch import submit_training_async

router = APIRouter(prefix="/trainings", tags=["trainings"], responses=UNAUTHORIZED)
UNKNOWN: dict[int | str, dict[str, Any]] = {
    404: error("Unknown training, or another token's (the two are indistinguishable)."),
}
MEDIA = {".json": "application/json", ".onnx": "application/octet-stream", ".xml": "application/xml"}


@router.post("", status_code=status.HTTP_202_ACCEPTED, response_model=TrainingPublic,
             openapi_extra=TRAINING_SPEC_BODY,
             responses={400: error("The body could not be read as JSON text (e.g. it is not UTF-8)."),
                        413: error("The body is larger than NAS_MAX_BODY_BYTES."),
                        503: error("The train queue is unreachable.")})
async def submit(document: Annotated[Any, Body()], token: CurrentToken, url: DatabaseUrl, settings: SettingsDep,
                 response: Response) -> TrainingPublic:
    """Store the training (queued) and put it on the ``train`` queue. A train worker trains it, uploading a
    checkpoint every epoch; a worker that dies is replaced by the next one, which resumes."""
    spec = await run_in_threadpool(validate_training_submission, document, url, token.id)
    record = await store_and_queue(TRAININGS, url, settings.redis_url, partial(create_training, url, spec, token.id),
                                   submit_training_async)
    response.headers["Location"] = f"/trainings/{record.id}"
    return TrainingPublic.of(record)


@router.get("", response_model=TrainingsPublic)
def read_trainings(token: CurrentToken, url: DatabaseUrl, offset: Offset = 0, limit: Limit = 50) -> TrainingsPublic:
    """Newest first."""
    records, count = list_trainings(url, token.id, offset=offset, limit=limit)
    return TrainingsPublic(data=[TrainingPublic.of(r) for r in records], count=count)


@router.get("/{key}", response_model=TrainingPublic, responses=UNKNOWN)
def read_training(key: str, token: CurrentToken, url: DatabaseUrl) -> TrainingPublic:
    """By id, or by name (your newest of that name)."""
    return TrainingPublic.of(get_training(url, key, token.id))


@router.post("/{key}/cancel", response_model=TrainingPublic,
             responses={**UNKNOWN, 409: error("The training already finished.")})
def cancel(key: str, token: CurrentToken, url: DatabaseUrl) -> TrainingPublic:
    """Queued: cancelled at once. Running: the trainer stops within a step and the status becomes
    ``cancelled`` (its last epoch's checkpoint is kept)."""
    return TrainingPublic.of(request_training_cancel(url, key, token.id))


@router.get("/{key}/files/{name}", response_class=Response,
            responses={200: {"content": {"application/octet-stream": {}}, "description": "The file."}, **UNKNOWN})
def read_file(key: str, name: str, token: CurrentToken, url: DatabaseUrl) -> Response:
    """One of the files of a succeeded training (``files`` in its record); the ``ETag`` is its sha256."""
    record = get_training(url, key, token.id)
    names = (record.summary or {}).get("files", [])
    if name not in names or name == CHECKPOINT:
        listed = ", ".join(names) if names else f"none yet: it is {record.status.value}"
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"training {record.name} has no file {name!r} (files: "
                            f"{listed})")
    try:
        content = read_artifact(url, artifact_scope(record.id), name)
    except NotFoundError:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"training {record.name}'s file {name} is gone") from None
    media = next((m for suffix, m in MEDIA.items() if name.endswith(suffix)), "application/octet-stream")
    return Response(content, media_type=media,
                    headers={"Content-Disposition": f'attachment; filename="{name}"',
                             "ETag": f'"{hashlib.sha256(content).hexdigest()}"'})
