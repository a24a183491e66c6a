"""A search's artifacts: ``best.onnx``, ``best.pt``, the device's own file (e.g. ``best.tflite``) and
``best.provenance.json`` naming it (written when the search succeeds with ``export_onnx``), and the
checkpoints it kept (the best trial's, the Pareto front's).

They are stored in the service database (``nas.service.artifacts``), so the API serves them whichever
machine trained or exported them. Read through ``get_search(url, id, owner)`` first, like every search
route: another token's search is a 404.
"""

from __future__ import annotations

import hashlib
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Response, status

from api.deps import CurrentToken, DatabaseUrl
from api.schemas.artifacts import ArtifactPublic, ArtifactsPublic
from api.schemas.errors import UNAUTHORIZED, UNKNOWN_SEARCH, error
from nas.errors import NotFoundError
from nas.service import SearchStatus, get_search
from nas.service.artifacts import (
    BEST_ONNX,
    BEST_PROVENANCE,
    BEST_STATE,
    MAX_NAME,
    NAME_PATTERN,
    list_artifacts,
    media_type_of,
    read_artifact,
)

ArtifactName = Annotated[str, Path(pattern=NAME_PATTERN, max_length=MAX_NAME,
                                   description="e.g. best.onnx, best.pt, best.tflite, best.provenance.json, "
                                               "checkpoints/trial-00003.pt")]

router = APIRouter(prefix="/searches", tags=["artifacts"], responses=UNAUTHORIZED)


@router.get("/{search_id}/artifacts", response_model=ArtifactsPublic, responses=UNKNOWN_SEARCH)
def read_artifacts(search_id: str, token: CurrentToken, url: DatabaseUrl) -> ArtifactsPublic:
    """The search's artifacts by name (sizes and sha256, not their content)."""
    record = get_search(url, search_id, token.id)
    data = [ArtifactPublic.of(search_id, a) for a in list_artifacts(url, record.study_name)]
    return ArtifactsPublic(data=data, count=len(data))


@router.get("/{search_id}/artifacts/{name:path}", response_class=Response,
            responses={200: {"content": {"application/octet-stream": {}}, "description": "The file."},
                       404: error("Unknown search (or another token's), or no such artifact (yet).")})
def read_artifact_content(search_id: str, name: ArtifactName, token: CurrentToken, url: DatabaseUrl) -> Response:
    """Download one artifact, e.g. ``best.onnx``; the ``ETag`` is its sha256."""
    record = get_search(url, search_id, token.id)
    try:
        content = read_artifact(url, record.study_name, name)
    except NotFoundError:
        hint = _why_missing(record.status) if name in (BEST_STATE, BEST_ONNX, BEST_PROVENANCE) else ""
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"search {search_id} has no artifact {name!r}{hint}") from None
    filename = name.rsplit("/", 1)[-1]
    return Response(content, media_type=media_type_of(name),
                    headers={"Content-Disposition": f'attachment; filename="{filename}"',
                             "ETag": f'"{hashlib.sha256(content).hexdigest()}"'})


def _why_missing(state: SearchStatus) -> str:
    if state is SearchStatus.succeeded:
        return ": it stored none (spec export_onnx: false, or its best trial kept no weights)"
    if state.is_final():
        return f": {BEST_STATE} and {BEST_ONNX} are written only when a search succeeds; it {state.value}"
    return f"; {BEST_STATE} and {BEST_ONNX} are written when the search succeeds, it is {state.value}"
