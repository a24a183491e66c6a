"""Queueing a search from the event loop: Celery's message, pushed to Redis with an asyncio client.

Why not ``send_task``: it blocks (kombu's synchronous Redis client, with retries that sleep), so the API
ran it in a worker thread, and under load that publish and its thread hop were half of a submission's
CPU (0.97 of 1.84 ms). Here Celery still writes the message (``as_task_v2``: headers, properties, body)
and kombu still serialises it; only the last step, kombu's Redis envelope and the ``LPUSH``, is done on
the loop. ``tests/test_publish.py`` holds this envelope equal to what ``send_task`` puts in Redis, and the
end-to-end tests run every submitted search through real Celery workers.
"""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

from kombu.serialization import dumps

from workers.app import celery_app

PERSISTENT = 2  # kombu's delivery_mode for a message that survives a broker restart (where it can)


def envelope(task_id: str, name: str, args: list[Any], queue: str) -> bytes:
    """The bytes kombu's Redis transport would push for ``send_task(name, args, queue=queue,
    task_id=task_id, ignore_result=True)`` on the default (direct) exchange."""
    headers, properties, body, _ = celery_app.amqp.as_task_v2(
        task_id, name, args=args, kwargs={}, reply_to=celery_app.thread_oid, ignore_result=True)
    content_type, content_encoding, data = dumps(body, serializer=celery_app.conf.task_serializer)
    raw = data.encode(content_encoding) if isinstance(data, str) else data
    message = {"body": base64.b64encode(raw).decode("ascii"), "content-encoding": content_encoding,
               "content-type": content_type, "headers": headers,
               "properties": {**properties, "delivery_mode": PERSISTENT,
                              "delivery_info": {"exchange": "", "routing_key": queue}, "priority": 0,
                              "body_encoding": "base64", "delivery_tag": str(uuid.uuid4())}}
    return json.dumps(message).encode()


async def push(client: Any, task_id: str, name: str, args: list[Any], queue: str) -> None:
    """``LPUSH`` the message on ``queue`` (priority 0 is the queue's own list); ``client`` is a
    ``redis.asyncio.Redis`` on the broker."""
    await client.lpush(queue, envelope(task_id, name, args, queue))
