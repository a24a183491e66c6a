"""The FastAPI application: assembles the routers, the error translation and the body limit.

Run it with ``nas serve`` (or ``uvicorn api.main:app``). On start it migrates the service tables.
It never imports torch: specs are validated and work is queued by task name only.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from sqlalchemy.exc import OperationalError
from starlette.concurrency import run_in_threadpool

from api import docs, openapi
from api.errors import database_unavailable_handler, nas_error_handler
from api.limits import BodySizeLimit
from api.routes import artifacts, devices, health, searches, spaces, supernets, trainings
from nas.errors import DatabaseUnavailableError, NASError
from nas.service import upgrade
from nas.settings import get_settings

log = logging.getLogger(__name__)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    url = get_settings().resolved_database_url()
    await run_in_threadpool(upgrade, url)
    # What is loaded by now (FastAPI, pydantic, SQLAlchemy, Celery: ~140,000 objects) lives as long as the
    # process; moved out of the collector's sight, a full collection under load takes microseconds
    # instead of ~30 ms, a pause every request in flight would wait for.
    gc.collect()
    gc.freeze()
    yield


def create_app() -> FastAPI:
    settings = get_settings()
    app = FastAPI(title="Platform-aware NAS", version="0.1.0", lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Submit neural architecture searches for a device and latency target; "
                              "follow them and fetch the best architecture. Authenticate with "
                              "`Authorization: Bearer <token>` (`nas token create NAME`).")
    app.add_exception_handler(NASError, nas_error_handler)
    app.add_exception_handler(OperationalError, database_unavailable_handler)
    app.add_exception_handler(DatabaseUnavailableError, database_unavailable_handler)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    if settings.cors_origins:  # off unless configured: browsers on other origins get no CORS headers
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins, allow_credentials=False,
                           allow_methods=["GET", "POST"], allow_headers=["Authorization", "Content-Type"])
    for module in (health, searches, artifacts, supernets, trainings, spaces, devices):
        app.include_router(module.router)
    openapi.install(app)
    docs.install(app)  # Swagger UI and ReDoc from local files: no CDN
    return app


app = create_app()
