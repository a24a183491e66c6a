"""The API queues a search from the event loop (``workers.publish``) instead of Celery's blocking
``send_task``; what lands in Redis must be the very message ``send_task`` would have written, or the
workers would drop or misread it. Real Redis; the end-to-end tests then run such messages through real
Celery workers."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import time
import uuid
from typing import Any

import pytest

from nas.service.health import async_redis, check_redis_async
from workers.app import SEARCH_QUEUE, celery_app
from workers.dispatch import submit_search, submit_search_async

from .api_support import REDIS_URL, free_port

pytest_plugins = ["tests.service_fixtures"]  # redis_client


def _pop(redis_client: Any) -> dict[str, Any]:
    raw = redis_client.rpop(SEARCH_QUEUE)
    assert raw is not None, "nothing was queued"
    return dict(json.loads(raw))


def test_a_search_queued_from_the_event_loop_is_the_message_send_task_writes(redis_client: Any) -> None:
    import redis.asyncio

    redis_client.delete(SEARCH_QUEUE)
    search_id = uuid.uuid4().hex
    with celery_app.connection_for_write(REDIS_URL) as connection:
        submit_search(search_id, connection)
    by_celery = _pop(redis_client)

    async def from_the_loop() -> None:
        broker = redis.asyncio.Redis.from_url(REDIS_URL)
        await submit_search_async(search_id, broker)
        await broker.aclose()

    asyncio.run(from_the_loop())
    by_the_api = _pop(redis_client)
    assert redis_client.llen(SEARCH_QUEUE) == 0
    tags = by_celery["properties"].pop("delivery_tag"), by_the_api["properties"].pop("delivery_tag")
    assert tags[0] != tags[1]  # unique per message, as kombu makes them
    assert by_the_api == by_celery
    assert by_the_api["headers"]["task"] == "nas.search.run" and by_the_api["headers"]["id"] == f"search-{search_id}"


def test_the_loop_s_broker_client_survives_a_redis_restart(tmp_path: Any) -> None:
    """After Redis restarts, the pooled asyncio connection is dead; the next submission's ping and push
    must reconnect rather than answer 'queue unreachable' (the synchronous client retries by itself)."""
    if shutil.which("redis-server") is None:
        pytest.skip("needs redis-server")
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"

    def start() -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                 "--appendonly", "no", "--dir", str(tmp_path)], stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True).stdout.strip() != b"PONG":
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)
        return proc

    async def scenario() -> None:
        server = start()
        try:
            assert await check_redis_async(url) == "ok"
            server.terminate()
            server.wait(10)
            server = start()
            assert await check_redis_async(url) == "ok"
            await submit_search_async("after-restart", async_redis(url))
            assert await async_redis(url).llen(SEARCH_QUEUE) == 1
        finally:
            server.terminate()
            server.wait(10)

    asyncio.run(scenario())
