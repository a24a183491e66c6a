"""Latency workers register their device profile and hardware fingerprint, then heartbeat, so searches
know which devices have a live worker (``GET /devices``; a search for a device without one waits)."""

from __future__ import annotations

import logging
import socket
import threading

log = logging.getLogger(__name__)


def start(profile_name: str, interval: float) -> threading.Event:
    """Register now and every ``interval`` seconds in a daemon thread; set the returned event to stop."""
    from nas.latency import fingerprint_info, load_profile
    from nas.service import register_device
    from nas.settings import get_settings

    profile = load_profile(profile_name)
    info = fingerprint_info(profile)
    url = get_settings().resolved_database_url()
    host = socket.gethostname()
    stop = threading.Event()

    def beat() -> None:
        register_device(url, profile.name, str(info["fingerprint"]), host, info)

    beat()
    log.info("registered device %s (fingerprint %s) on %s", profile.name, info["fingerprint"], host)

    def loop() -> None:
        while not stop.wait(interval):
            try:
                beat()
            except Exception:  # a database hiccup must not kill the worker; the next beat retries
                log.warning("device heartbeat failed", exc_info=True)

    threading.Thread(target=loop, name="device-heartbeat", daemon=True).start()
    return stop
