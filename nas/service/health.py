"""Reachability of what the service depends on (``GET /health``, compose health checks)."""

from __future__ import annotations

import logging

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


def check_redis(url: str, timeout: float = 2.0) -> str:
    """"ok" or the reason; a short timeout so a dead broker makes the check fail fast, not hang."""
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
    try:
        client.ping()
    except Exception as exc:
        log.warning("redis health check failed: %s", exc)
        return f"error: {type(exc).__name__}: {exc}"
    finally:
        client.close()
    return "ok"
