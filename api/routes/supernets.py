"""Supernets: submit (train one on the ``train`` queue), list, read, cancel, download the trained file.

A supernet is addressed by its id or its name (names are unique in the service), so a search spec's
``proxy.supernet: NAME`` uses it once it succeeded. Another token's supernet is a 404 here, but its name
stays taken, and a search can name it: supernets are shared by name.
"""

from __future__ import annotations

import hashlib
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, Response, status

from api.deps import CurrentToken, DatabaseUrl, Limit, Offset, SettingsDep
from api.openapi import SUPERNET_SPEC_BODY
from api.routes._queued import store_and_queue
from api.schemas.errors import UNAUTHORIZED, error
from api.schemas.supernets import SupernetPublic, SupernetsPublic
from nas.errors import NotFoundError
from nas.service.artifacts import read_artifact
from nas.service.supernet_validate import validate_supernet_submission
from nas.service.supernets import (
    SUPERNET_FILE,
    SUPERNETS,
    artifact_scope,
    create_supernet,
    get_supernet,
    list_supernets,
    request_supernet_cancel,
)
from workers.dispatch import submit_supernet_async

router = APIRouter(prefix="/supernets", tags=["supernets"], responses=UNAUTHORIZED)
UNKNOWN: dict[int | str, dict[str, Any]] = {
    404: error("Unknown supernet, or another token's (the two are indistinguishable)."),
}


@router.post("", status_code=status.HTTP_202_ACCEPTED, response_model=SupernetPublic,
             openapi_extra=SUPERNET_SPEC_BODY,
             responses={400: error("The body could not be read as JSON text (e.g. it is not UTF-8)."),
                        409: error("The name is taken."), 413: error("The body is larger than NAS_MAX_BODY_BYTES."),
                        503: error("The train queue is unreachable.")})
async def submit(document: Annotated[Any, Body()], token: CurrentToken, url: DatabaseUrl, settings: SettingsDep,
                 response: Response) -> SupernetPublic:
    """Store the supernet (queued) and put its training on the ``train`` queue. A train worker trains it,
    uploading a checkpoint every epoch; a worker that dies is replaced by the next one, which resumes."""
    spec = validate_supernet_submission(document)
    record = await store_and_queue(SUPERNETS, url, settings.redis_url, partial(create_supernet, url, spec, token.id),
                                   submit_supernet_async, resubmit="submit it again under another name")
    response.headers["Location"] = f"/supernets/{record.id}"
    return SupernetPublic.of(record)


@router.get("", response_model=SupernetsPublic)
def read_supernets(token: CurrentToken, url: DatabaseUrl, offset: Offset = 0, limit: Limit = 50) -> SupernetsPublic:
    """Newest first."""
    records, count = list_supernets(url, token.id, offset=offset, limit=limit)
    return SupernetsPublic(data=[SupernetPublic.of(r) for r in records], count=count)


@router.get("/{key}", response_model=SupernetPublic, responses=UNKNOWN)
def read_supernet(key: str, token: CurrentToken, url: DatabaseUrl) -> SupernetPublic:
    """By id or name."""
    return SupernetPublic.of(get_supernet(url, key, token.id))


@router.post("/{key}/cancel", response_model=SupernetPublic,
             responses={**UNKNOWN, 409: error("The supernet already finished.")})
def cancel(key: str, token: CurrentToken, url: DatabaseUrl) -> SupernetPublic:
    """Queued: cancelled at once. Running: the trainer stops within a step and the status becomes
    ``cancelled`` (its last epoch's checkpoint is kept)."""
    return SupernetPublic.of(request_supernet_cancel(url, key, token.id))


@router.get("/{key}/file", response_class=Response,
            responses={200: {"content": {"application/octet-stream": {}}, "description": "supernet.pt"},
                       **UNKNOWN})
def read_file(key: str, token: CurrentToken, url: DatabaseUrl) -> Response:
    """The trained supernet (the file `nas supernet train` writes); the ``ETag`` is its sha256."""
    record = get_supernet(url, key, token.id)
    try:
        content = read_artifact(url, artifact_scope(record.id), SUPERNET_FILE)
    except NotFoundError:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"supernet {record.name} has no file yet: it is "
                            f"{record.status.value}") from None
    return Response(content, media_type="application/octet-stream",
                    headers={"Content-Disposition": f'attachment; filename="{record.name}.pt"',
                             "ETag": f'"{hashlib.sha256(content).hexdigest()}"'})
