"""``nas worker``: a Celery worker for the search, train and/or one device's latency queue.

A search driver waits for the training and latency tasks it sends, so it must never hold the slot that
would run them: with ``search`` and other queues in one Celery pool (concurrency 1), the driver took the
only process and nothing trained, ever. So a worker asked for ``search`` together with other queues (the
default, ``search,train``) runs two Celery workers as child processes: one pool of ``--drivers`` processes
for ``search`` and one of ``--concurrency`` for the rest. It stops both when either ends or on a signal.

A stop (SIGTERM, Ctrl-C) is Celery's soft shutdown: running tasks get ``NAS_WORKER_SHUTDOWN_GRACE`` seconds,
then are cancelled and their unacknowledged messages go back to Redis. Celery's default for SIGTERM, a warm
shutdown, waits for every running task, and a search driver's task lasts as long as its search.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from typing import Annotated

import typer

SEARCH = "search"


def worker(
    device: Annotated[str | None, typer.Option("--device", help="Serve latency.<PROFILE> on this machine.")] = None,
    queues: Annotated[str | None, typer.Option("--queues", "-Q", help="Comma-separated queues.")] = None,
    concurrency: Annotated[int, typer.Option("--concurrency", "-c", min=1, help="Processes for training / "
                                             "latency (for searches when only -Q search).")] = 1,
    drivers: Annotated[int | None, typer.Option("--drivers", min=1, help="Search drivers when `search` is served "
                                                "with other queues (default NAS_SEARCH_DRIVERS, 2).")] = None,
    name: Annotated[str | None, typer.Option("--name", help="Celery node name (default: nas-<queues>@host).")] = None,
    loglevel: Annotated[str, typer.Option("--loglevel")] = "INFO",
) -> None:
    """Start a worker. Without --queues: `search,train` (drivers and training in separate pools), or only
    `latency.<device>` when --device is given."""
    import socket

    os.environ.setdefault("REMAP_SIGTERM", "SIGQUIT")  # read by billiard when imported: SIGTERM -> soft shutdown
    from nas.settings import get_settings

    chosen = [q.strip() for q in queues.split(",") if q.strip()] if queues else []
    if device:
        from nas.latency import load_profile

        profile = load_profile(device)  # unknown profile: a one-line error before anything starts
        if f"latency.{profile.name}" not in chosen:
            chosen.append(f"latency.{profile.name}")
    if not chosen:
        chosen = [SEARCH, "train"]
    settings = get_settings()
    if SEARCH in chosen and len(chosen) > 1:
        rest = [q for q in chosen if q != SEARCH]
        raise typer.Exit(_supervise(
            [["-Q", SEARCH, "-c", str(drivers or settings.search_drivers)],
             ["-Q", ",".join(rest), "-c", str(concurrency), *(["--device", device] if device else [])]],
            name, loglevel, grace=settings.worker_shutdown_grace))
    # the devices this process may time on: only those whose latency queue it serves (``nas.latency._guard``)
    from nas.latency._guard import ENV as TIMING_ENV

    os.environ[TIMING_ENV] = ",".join(q.removeprefix("latency.") for q in chosen if q.startswith("latency."))
    if device:
        from workers import heartbeat

        heartbeat.start(device, max(settings.device_ttl / 4, 1.0))
    from workers.app import celery_app

    node = name or f"nas-{'-'.join(q.replace('.', '_') for q in chosen)}@{socket.gethostname()}"
    celery_app.worker_main(["worker", "-Q", ",".join(chosen), "-c", str(concurrency), "-n", node,
                            "--loglevel", loglevel, "--without-gossip", "--without-mingle"])


def _supervise(children: list[list[str]], name: str | None, loglevel: str, *, grace: float) -> int:
    """Run one ``nas worker`` per argument list; a SIGINT/SIGTERM reaches them as SIGTERM (their soft shutdown);
    when one ends, stop the other. Returns the first exit code."""
    procs = []
    for args in children:
        node = ["--name", f"{args[1].split(',')[0].replace('.', '_')}-{name}"] if name else []
        procs.append(subprocess.Popen([sys.executable, "-m", "nas", "worker", *args, *node, "--loglevel", loglevel]))

    def forward(_signum: int, _frame: object) -> None:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    code: int | None = None
    try:
        while code is None:
            for p in procs:
                try:
                    code = p.wait(timeout=0.5)
                    break
                except subprocess.TimeoutExpired:
                    continue
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(grace + 30)
            except subprocess.TimeoutExpired:
                p.kill()
    return code
