"""``nas worker``: a Celery worker for the search, train and/or one device's latency queue."""

from __future__ import annotations

from typing import Annotated

import typer


def worker(
    device: Annotated[str | None, typer.Option("--device", help="Serve latency.<PROFILE> on this machine.")] = None,
    queues: Annotated[str | None, typer.Option("--queues", "-Q", help="Comma-separated queues.")] = None,
    concurrency: Annotated[int, typer.Option("--concurrency", "-c", min=1)] = 1,
    name: Annotated[str | None, typer.Option("--name", help="Celery node name (default: nas-<queues>@host).")] = None,
    loglevel: Annotated[str, typer.Option("--loglevel")] = "INFO",
) -> None:
    """Start a worker. Without --queues: `search,train`, or only `latency.<device>` when --device is given."""
    import socket

    from nas.settings import get_settings

    chosen = [q.strip() for q in queues.split(",") if q.strip()] if queues else []
    if device:
        from nas.latency import load_profile

        profile = load_profile(device)  # unknown profile: a one-line error before anything starts
        if f"latency.{profile.name}" not in chosen:
            chosen.append(f"latency.{profile.name}")
    if not chosen:
        chosen = ["search", "train"]
    settings = get_settings()
    if device:
        from workers import heartbeat

        heartbeat.start(device, max(settings.device_ttl / 4, 1.0))
    from workers.app import celery_app

    node = name or f"nas-{'-'.join(q.replace('.', '_') for q in chosen)}@{socket.gethostname()}"
    celery_app.worker_main(["worker", "-Q", ",".join(chosen), "-c", str(concurrency), "-n", node,
                            "--loglevel", loglevel, "--without-gossip", "--without-mingle"])
