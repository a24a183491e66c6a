"""The Celery application: configured in one place, JSON only, late acks, results go to the database.

Queues: ``search`` (search drivers), ``train`` (proxy training), ``latency.<profile>`` (served only by
workers started on that device with ``nas worker --device PROFILE``).
"""

from __future__ import annotations

from celery import Celery
from celery.signals import worker_process_init

from nas.settings import get_settings

SEARCH_QUEUE = "search"
TRAIN_QUEUE = "train"


def latency_queue(profile: str) -> str:
    return f"latency.{profile}"


def create_app() -> Celery:
    settings = get_settings()
    app = Celery("nas", broker=settings.redis_url, backend=settings.redis_url, include=["workers.tasks"])
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_track_started=True,
        worker_prefetch_multiplier=1,
        task_default_queue=TRAIN_QUEUE,
        broker_transport_options={"visibility_timeout": settings.task_visibility_timeout},
        result_expires=24 * 3600,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        # with REMAP_SIGTERM=SIGQUIT (set by `nas worker`) a stop is Celery's soft shutdown: running tasks get
        # this long, then are cancelled and requeued (late acks), instead of a warm shutdown waiting for hours
        worker_soft_shutdown_timeout=settings.worker_shutdown_grace,
    )
    return app


celery_app = create_app()


@worker_process_init.connect
def _fresh_connections(**_: object) -> None:
    """Pool children start with their own database connections (see ``nas.storage`` at-fork handling)."""
    from nas.search._evaluate import _storage as train_storage
    from workers.outcomes import _storage as outcome_storage

    train_storage.cache_clear()
    outcome_storage.cache_clear()
