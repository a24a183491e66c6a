"""``GET /spaces``: the search spaces a spec can name."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import CurrentToken
from api.schemas.errors import UNAUTHORIZED
from api.schemas.spaces import SpacePublic, SpacesPublic
from nas.spaces import list_spaces, load_space

router = APIRouter(prefix="/spaces", tags=["spaces"], responses=UNAUTHORIZED)


@router.get("", response_model=SpacesPublic)
def read_spaces(token: CurrentToken) -> SpacesPublic:
    data = [SpacePublic.of(name, load_space(name)) for name in list_spaces()]
    return SpacesPublic(data=data, count=len(data))
