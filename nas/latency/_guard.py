"""Which devices this process may time on: the rule "every timing on its own device" made checkable.

``nas worker`` sets ``NAS_TIMING_DEVICES`` to the devices whose ``latency.<profile>`` queues it serves (none
for a search driver or a train worker), so a timing that would leak into the wrong process (a driver sizing
NetAdapt proposals on its own CPU, as it once did) fails loudly instead of filling the device's table
with another machine's numbers. Unset (``nas run``, the CLI), every device may be timed here.
"""

from __future__ import annotations

import os

from nas.errors import LatencyError

ENV = "NAS_TIMING_DEVICES"


def allowed_devices() -> set[str] | None:
    """The devices this process may time on, or None for any."""
    value = os.environ.get(ENV)
    return None if value is None else {name.strip() for name in value.split(",") if name.strip()}


def check_may_time(profile: str) -> None:
    """Raise ``LatencyError`` if this process must not time on ``profile``."""
    allowed = allowed_devices()
    if allowed is not None and profile not in allowed:
        served = ", ".join(sorted(allowed)) or "no device"
        raise LatencyError(f"this process may not time on {profile} ({ENV}: it serves {served}); only a "
                           f"worker started with `nas worker --device {profile}` times that device")
