"""The one translation of library errors into HTTP answers.

Field errors (specs, spaces, architectures) are shaped like FastAPI's own validation errors, so a
client reads every 422 the same way: ``{"detail": [{"loc": ["body", ...], "msg": ..., "type": ...}]}``.
"""

from __future__ import annotations

import logging

from fastapi import Request, status
from fastapi.responses import JSONResponse

from nas.errors import ArchitectureError, ConflictError, NASError, NotFoundError, SpaceError, SpecError

log = logging.getLogger(__name__)


def _loc(field: str) -> list[str | int]:
    if field in ("", "(document)"):
        return ["body"]
    return ["body", *(int(p) if p.isdigit() else p for p in field.split("."))]


def to_response(exc: NASError) -> JSONResponse:
    if isinstance(exc, NotFoundError):
        return JSONResponse({"detail": str(exc)}, status.HTTP_404_NOT_FOUND)
    if isinstance(exc, SpecError | SpaceError | ArchitectureError):
        detail = [{"type": "value_error", "loc": _loc(exc.field), "msg": exc.reason}]
        return JSONResponse({"detail": detail}, status.HTTP_422_UNPROCESSABLE_CONTENT)
    if isinstance(exc, ConflictError):
        return JSONResponse({"detail": str(exc)}, status.HTTP_409_CONFLICT)
    return JSONResponse({"detail": str(exc)}, status.HTTP_400_BAD_REQUEST)


async def nas_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, NASError)
    return to_response(exc)


async def database_unavailable_handler(request: Request, exc: Exception) -> JSONResponse:
    """The database refused or dropped the connection (restarting, out of connections): a 503 the client
    can retry, instead of a 500 that reads like a bug. Nothing was half-written: each store call is one
    transaction. Only the first line of the driver's message is shown (it never holds the password)."""
    reason = str(getattr(exc, "orig", exc)).strip().splitlines()
    log.warning("database unavailable on %s %s: %s", request.method, request.url.path, reason[0] if reason else exc)
    return JSONResponse({"detail": "the database is unavailable, retry shortly" + (f": {reason[0]}" if reason else "")},
                        status.HTTP_503_SERVICE_UNAVAILABLE, headers={"Retry-After": "2"})
