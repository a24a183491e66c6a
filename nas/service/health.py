"""Reachability of what the service depends on (``GET /health``, compose health checks)."""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import Any

from nas.service.store import ping_database
from nas.storage.per_loop import PerLoop

log = logging.getLogger(__name__)


def check_database(url: str) -> str:
    """"ok" or the reason, in one line; never raises (a health check reports, it does not fail)."""
    try:
        ping_database(url)
    except Exception as exc:
        log.warning("database health check failed: %s", exc)
        return f"error: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    return "ok"


@lru_cache(maxsize=8)
def _redis_client(url: str, timeout: float) -> Any:
    """One pooled client per URL and process: the API checks the broker on every submission, and a
    fresh TCP connection each time cost more than the rest of the request. The pool reconnects by
    itself after Redis restarts."""
    import redis

    return redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout,
                                health_check_interval=30)


def check_redis(url: str, timeout: float = 2.0) -> str:
    """"ok" or the reason; a short timeout so a dead broker makes the check fail fast, not hang."""
    try:
        _redis_client(url, timeout).ping()
    except Exception as exc:
        log.warning("redis health check failed: %s", exc)
        return f"error: {type(exc).__name__}: {exc}"
    return "ok"


_async_clients: PerLoop[Any] = PerLoop()


def async_redis(url: str, timeout: float = 2.0) -> Any:
    """An asyncio client per URL and event loop (its connections belong to the loop that opened them);
    ``timeout`` bounds connecting and every command, so a dead broker fails a request, not hangs it."""
    import redis.asyncio
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    # One retry: after Redis restarts, a pooled connection's first command fails ("Connection closed by
    # server"), and the asyncio client, unlike the synchronous one, does not try again by itself.
    return _async_clients.get((url, timeout), lambda _loop: redis.asyncio.Redis.from_url(
        url, socket_connect_timeout=timeout, socket_timeout=timeout, health_check_interval=30,
        retry=Retry(NoBackoff(), 1)))


async def check_redis_async(url: str, timeout: float = 2.0) -> str:
    """``check_redis`` on the event loop: every submission pings the broker, and a worker thread for a
    30-microsecond ping cost more than the ping."""
    try:
        await async_redis(url, timeout).ping()
    except Exception as exc:
        log.warning("redis health check failed: %s", exc)
        return f"error: {type(exc).__name__}: {exc}"
    return "ok"
