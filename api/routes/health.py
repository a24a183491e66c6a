"""``GET /health``: open (no token), for load balancers and compose health checks."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.deps import DatabaseUrl, SettingsDep
from api.schemas.health import HealthPublic
from nas.service import current_revision
from nas.service.health import check_database, check_redis

router = APIRouter(tags=["health"])


@router.get("/health", response_model=HealthPublic, responses={503: {"model": HealthPublic}})
def health(settings: SettingsDep, url: DatabaseUrl) -> JSONResponse:
    """200 when both the database and Redis answer, else 503 naming which one did not."""
    database, redis = check_database(url), check_redis(settings.redis_url)
    ok = database == "ok" and redis == "ok"
    body = HealthPublic(status="ok" if ok else "unavailable", database=database, redis=redis,
                        schema_revision=current_revision(url) if database == "ok" else None)
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503)
