"""The API queues a search from the event loop (``workers.publish``) instead of Celery's blocking
``send_task``; what lands in Redis must be the very message ``send_task`` would have written, or the
workers would drop or misread it. Real Redis; the end-to-end tests then run such messages through real
Celery workers."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

from workers.app import SEARCH_QUEUE, celery_app
from workers.dispatch import submit_search, submit_search_async

from .api_support import REDIS_URL

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
