"""Reachability of what the service depends on (``GET /health``, compose health checks)."""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import Any

from nas.service.store import ping_database

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
