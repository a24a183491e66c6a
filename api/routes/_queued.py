"""Storing a leased job (a supernet, a training) and putting it on the ``train`` queue, as one step: a
job that could not be queued is marked failed with the reason, never left "queued" for ever."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from fastapi import HTTPException, status
from starlette.concurrency import run_in_threadpool

from nas.service.health import async_redis, check_redis_async
from nas.service.spec_jobs import JobRecord, SpecJobs
from nas.service.store import SearchStatus

log = logging.getLogger(__name__)


async def store_and_queue(jobs: SpecJobs[Any], url: str, redis_url: str, create: Callable[[], JobRecord],
                          push: Callable[[str, Any], Awaitable[None]], resubmit: str = "submit it again") -> JobRecord:
    """``create()`` the row (in a thread) and ``push(id, broker)`` its message; 503 if the queue is down."""
    if await check_redis_async(redis_url) != "ok":
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "the train queue is unreachable; "
                            "nothing was stored, submit again later")
    record = await run_in_threadpool(create)
    try:
        await push(record.id, async_redis(redis_url))
    except Exception as exc:
        log.error("could not queue %s %s: %s", jobs.noun, record.id, exc)
        await run_in_threadpool(partial(jobs.finish, url, record.id, SearchStatus.failed, token=None,
                                        error=f"could not queue the training: {exc}"))
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, f"the train queue is unreachable; {jobs.noun} "
                            f"{record.id} was marked failed, {resubmit}") from None
    return record
