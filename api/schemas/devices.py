"""Device profiles with a live latency worker."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel

from nas.service import DeviceRecord


class DevicePublic(BaseModel):
    profile: str
    hostname: str
    fingerprint: str
    info: dict[str, Any]
    first_seen: datetime
    last_seen: datetime

    @classmethod
    def of(cls, d: DeviceRecord) -> DevicePublic:
        return cls(profile=d.profile, hostname=d.hostname, fingerprint=d.fingerprint, info=d.info,
                   first_seen=d.first_seen, last_seen=d.last_seen)


class DevicesPublic(BaseModel):
    data: list[DevicePublic]
    count: int
