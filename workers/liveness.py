"""Who is alive, from the database: a search's device (latency workers heartbeat ``nas_devices``) and the
search's own driver (its lease on the ``nas_searches`` row, renewed from a thread of its own)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


class DeviceWatch:
    """Whether a worker serves ``latency.<device>`` now; a search waits for one at most ``wait`` seconds.

    The clock starts when this driver first finds no live worker and restarts when one appears, so a
    worker that comes back in time loses nothing, and a search on a dead device fails with a reason
    instead of waiting for the broker's visibility timeout (hours)."""

    def __init__(self, url: str, device: str, *, ttl: float, wait: float, check_seconds: float = 2.0) -> None:
        self.url, self.device, self.ttl, self.wait = url, device, ttl, wait
        self.check_seconds = check_seconds
        self._live, self._checked = True, float("-inf")
        self._since: float | None = None

    def live(self) -> bool:
        """Asked on every poll; the database at most every ``check_seconds``. Raises ``DeviceUnavailable``
        once nobody served the device for ``wait`` seconds."""
        now = time.monotonic()
        if now - self._checked >= self.check_seconds:
            from nas.service import live_devices

            self._live = any(d.profile == self.device for d in live_devices(self.url, self.ttl))
            self._checked = now
            if self._live:
                self._since = None
            elif self._since is None:
                log.warning("no live worker for device %s: waiting up to %.0f s", self.device, self.wait)
                self._since = now
        if not self._live and self._since is not None and now - self._since > self.wait:
            from nas.errors import DeviceUnavailable

            raise DeviceUnavailable(
                f"no worker served latency.{self.device} for {now - self._since:.0f} s (NAS_DEVICE_WAIT="
                f"{self.wait:.0f}): start one on the device with `nas worker --device {self.device}` and "
                "submit the search again")
        return self._live

    def waiting_message(self) -> str:
        from nas.service.store import device_last_seen

        seen = device_last_seen(self.url, self.device)
        when = "never seen" if seen is None else f"last seen {seen:%Y-%m-%d %H:%M:%S} UTC"
        left = self.wait - (time.monotonic() - (self._since or time.monotonic()))
        return (f"waiting for a worker on latency.{self.device} ({when}; start one: nas worker --device "
                f"{self.device}; the search fails in {max(left, 0):.0f} s)")


class LeaseKeeper:
    """Renews a driver's lease every ``interval`` seconds from a daemon thread, so a driver busy in a long
    step (building a study, a sampler's ask) still counts as alive; ``check()`` raises ``LeaseLost`` in the
    driver's own thread once a renewal found another driver holding the search. ``touch``: the renewal
    (default ``nas.service.touch_search``; a supernet's trainer passes ``touch_supernet``)."""

    def __init__(self, url: str, search_id: str, token: int, interval: float,
                 touch: Callable[[str, str, int], None] | None = None) -> None:
        self.url, self.search_id, self.token, self.interval = url, search_id, token, interval
        self._touch = touch
        self._stop = threading.Event()
        self._lost: str | None = None
        self._thread = threading.Thread(target=self._loop, name=f"lease-{search_id}", daemon=True)

    def start(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def check(self) -> None:
        if self._lost is not None:
            from nas.errors import LeaseLost

            raise LeaseLost(self._lost)

    def _loop(self) -> None:
        from nas.errors import LeaseLost
        from nas.service import touch_search

        while not self._stop.wait(self.interval):
            try:
                (self._touch or touch_search)(self.url, self.search_id, self.token)
            except LeaseLost as exc:
                self._lost = str(exc)
                return
            except Exception:  # a database hiccup: the next renewal retries (the lease lasts 4 intervals)
                log.warning("lease renewal of search %s failed", self.search_id, exc_info=True)
