"""``GET /devices``: device profiles that have a live latency worker (heartbeat within NAS_DEVICE_TTL)."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import CurrentToken, DatabaseUrl, SettingsDep
from api.schemas.devices import DevicePublic, DevicesPublic
from api.schemas.errors import UNAUTHORIZED
from nas.service import live_devices

router = APIRouter(prefix="/devices", tags=["devices"], responses=UNAUTHORIZED)


@router.get("", response_model=DevicesPublic)
def read_devices(token: CurrentToken, url: DatabaseUrl, settings: SettingsDep) -> DevicesPublic:
    """A search for a device not listed here waits in its latency queue until a worker for it starts."""
    data = [DevicePublic.of(d) for d in live_devices(url, settings.device_ttl)]
    return DevicesPublic(data=data, count=len(data))
