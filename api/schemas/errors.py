"""Error bodies, declared in the OpenAPI document so clients (and schemathesis) know every answer's shape.

422s use FastAPI's own ``HTTPValidationError`` shape (``api.errors`` gives library field errors that shape
too); every other error is ``{"detail": "<one-line reason>"}``.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class ErrorPublic(BaseModel):
    detail: str


def error(description: str) -> dict[str, Any]:
    return {"model": ErrorPublic, "description": description}


UNAUTHORIZED: dict[int | str, dict[str, Any]] = {401: error("Missing, malformed, unknown or revoked API token.")}
UNKNOWN_SEARCH: dict[int | str, dict[str, Any]] = {
    404: error("Unknown search, or another token's (the two are indistinguishable)."),
}
