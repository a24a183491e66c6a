"""Dependencies shared by the routes, as ``Annotated`` aliases; they raise the HTTP errors themselves,
so a route's body only does its own work."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Query, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from nas.service import TokenRecord
from nas.service.async_store import authenticate_async
from nas.settings import Settings, get_settings


async def settings() -> Settings:
    """``async`` on purpose, like ``database_url``: FastAPI runs sync dependencies in its thread pool, and
    a thread hop per trivial dependency was a measurable share of every request's CPU."""
    return get_settings()


SettingsDep = Annotated[Settings, Depends(settings)]


async def database_url(settings: SettingsDep) -> str:
    return settings.resolved_database_url()


DatabaseUrl = Annotated[str, Depends(database_url)]

_bearer = HTTPBearer(auto_error=False, description="An API token from `nas token create NAME`.")


async def current_token(url: DatabaseUrl,
                        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> TokenRecord:
    """401 for a missing, malformed or unknown token (the same answer for all three, on purpose).
    A coroutine: on PostgreSQL the lookup runs on the event loop (see ``nas.service.async_store``)."""
    token = await authenticate_async(url, credentials.credentials) if credentials is not None else None
    if token is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing or invalid API token "
                            "(send 'Authorization: Bearer <token>'; create one with `nas token create NAME`)",
                            headers={"WWW-Authenticate": "Bearer"})
    return token


CurrentToken = Annotated[TokenRecord, Depends(current_token)]

# Bounded above so an absurd offset is a 422, not a database integer overflow (a 500 before).
Offset = Annotated[int, Query(ge=0, le=1_000_000_000, description="Items to skip.")]
Limit = Annotated[int, Query(ge=1, le=500, description="Items per page.")]
