"""Searches: submit, list, read, trials, best architecture, Pareto front, cancel.

Every route reads through ``get_search(url, id, owner)`` (or its coroutine twin), so a token only ever
sees its own searches (another token's search is a 404, indistinguishable from a missing one).
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, Response, status
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from api.deps import CurrentToken, DatabaseUrl, Limit, Offset, SettingsDep
from api.openapi import SEARCH_SPEC_BODY
from api.schemas.errors import UNAUTHORIZED, UNKNOWN_SEARCH, error
from api.schemas.searches import (
    ParetoPublic,
    ParetoTrialPublic,
    SearchesPublic,
    SearchPublic,
    TrialPublic,
    TrialsPublic,
)
from nas.service import SearchStatus, get_search, list_searches, mark_finished, request_cancel
from nas.service.async_store import create_search_async, device_live_async, get_search_async
from nas.service.health import async_redis, check_redis_async
from nas.service.results import best_architecture, pareto_front, trials_page
from nas.service.supernets import supernet_warnings
from nas.service.validate import validate_submission
from workers.dispatch import submit_search_async

log = logging.getLogger(__name__)

router = APIRouter(prefix="/searches", tags=["searches"], responses=UNAUTHORIZED)


@router.post("", status_code=status.HTTP_202_ACCEPTED, response_model=SearchPublic,
             openapi_extra=SEARCH_SPEC_BODY,
             responses={400: error("The body could not be read as JSON text (e.g. it is not UTF-8)."),
                        413: error("The body is larger than NAS_MAX_BODY_BYTES."),
                        503: error("The search queue is unreachable.")})
async def submit(document: Annotated[Any, Body()], token: CurrentToken, url: DatabaseUrl, settings: SettingsDep,
                 response: Response) -> SearchPublic:
    """Store the search (queued) and put it on the ``search`` queue; a search worker picks it up.
    On PostgreSQL every step runs on the event loop (the two Redis calls time out after 2 s), so the
    process serves other requests meanwhile; see ``nas.service.async_store`` and ``workers.publish``."""
    spec = validate_submission(document)
    if await check_redis_async(settings.redis_url) != "ok":  # 2 s, twice at most; Celery retries ~20 s
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "the search queue is unreachable; "
                            "nothing was stored, submit again later")
    record = await create_search_async(url, spec, token.id)
    try:
        await submit_search_async(record.id, async_redis(settings.redis_url))
    except Exception as exc:  # the broker is down: do not leave a queued search nobody will ever run
        log.error("could not queue search %s: %s", record.id, exc)
        await run_in_threadpool(partial(mark_finished, url, record.id, SearchStatus.failed,
                                        error=f"could not queue the search: {exc}"))
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "the search queue is unreachable; "
                            f"search {record.id} was marked failed, submit it again later") from None
    response.headers["Location"] = f"/searches/{record.id}"
    warnings = await _warnings(url, spec.device, settings)
    if spec.proxy.supernet is not None:
        warnings += await run_in_threadpool(supernet_warnings, url, spec.proxy.supernet)
    return SearchPublic.of(record, warnings)


async def _warnings(url: str, device: str, settings: Any) -> list[str]:
    """What the search will wait for: a device with no live latency worker fails after NAS_DEVICE_WAIT."""
    if await device_live_async(url, device, settings.device_ttl):
        return []
    return [f"no live worker serves latency.{device}: the search waits for one (start it on the device: "
            f"nas worker --device {device}) and fails after {settings.device_wait:.0f} s without one"]


@router.get("", response_model=SearchesPublic)
def read_searches(token: CurrentToken, url: DatabaseUrl, offset: Offset = 0, limit: Limit = 50,
                  status: SearchStatus | None = None) -> SearchesPublic:
    """Newest first."""
    records, count = list_searches(url, token.id, status=status, offset=offset, limit=limit)
    return SearchesPublic(data=[SearchPublic.of(r) for r in records], count=count)


@router.get("/{search_id}", response_model=SearchPublic, responses=UNKNOWN_SEARCH)
async def read_search(search_id: str, token: CurrentToken, url: DatabaseUrl) -> SearchPublic:
    return SearchPublic.of(await get_search_async(url, search_id, token.id))


@router.get("/{search_id}/trials", response_model=TrialsPublic, responses=UNKNOWN_SEARCH)
def read_trials(search_id: str, token: CurrentToken, url: DatabaseUrl, offset: Offset = 0,
                limit: Limit = 50) -> TrialsPublic:
    """Trials by number, from the search's Optuna study (empty until the search starts)."""
    data, count = trials_page(url, get_search(url, search_id, token.id), offset, limit)
    return TrialsPublic(data=[TrialPublic.model_validate(t) for t in data], count=count)


@router.get("/{search_id}/best", response_model=dict[str, Any],
            responses={404: error("Unknown search, or no trial has completed yet.")})
def read_best(search_id: str, token: CurrentToken, url: DatabaseUrl) -> JSONResponse:
    """The best architecture so far as its canonical JSON document (the file `nas run` writes as
    best.json): the best-ranked network within T (by the final measurement once the search ends). Headers:
    ``X-NAS-Trial`` (its trial), ``X-NAS-Within-Target`` (``false`` when no network so far is within T),
    ``X-NAS-Latency-Ms`` and ``X-NAS-Target-Ms``."""
    best = best_architecture(url, get_search(url, search_id, token.id))
    if best is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"search {search_id} has no completed trial yet")
    summary, architecture = best
    final = summary.get("final_latency") or {}
    headers = {"X-NAS-Trial": str(summary["trial"]),
               "X-NAS-Within-Target": "true" if summary.get("within_target", True) else "false",
               "X-NAS-Latency-Ms": f"{final.get('latency_ms', summary['latency_ms']):.4f}"}
    if summary.get("target_ms") is not None:
        headers["X-NAS-Target-Ms"] = f"{summary['target_ms']:.4f}"
    return JSONResponse(architecture, headers=headers)


@router.get("/{search_id}/pareto", response_model=ParetoPublic, responses=UNKNOWN_SEARCH)
def read_pareto(search_id: str, token: CurrentToken, url: DatabaseUrl) -> ParetoPublic:
    data = pareto_front(url, get_search(url, search_id, token.id))
    return ParetoPublic(data=[ParetoTrialPublic.model_validate(t) for t in data], count=len(data))


@router.post("/{search_id}/cancel", response_model=SearchPublic,
             responses={**UNKNOWN_SEARCH, 409: error("The search already finished.")})
def cancel(search_id: str, token: CurrentToken, url: DatabaseUrl) -> SearchPublic:
    """A queued search is cancelled at once. A running one stops at its driver's next poll (about a
    second): its running trials are marked failed ("cancelled") and their training stops after the
    current epoch; ``GET /searches/{id}`` shows ``cancelled`` once it has."""
    return SearchPublic.of(request_cancel(url, search_id, token.id))
