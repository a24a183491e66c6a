"""The service's own state: searches, API tokens and device registrations (SQL, migrated by Alembic).

Torch-free, so the API can import it. The API and the workers go through these functions only.
"""

from __future__ import annotations

from nas.service.migrate import current_revision, ensure_schema, head_revision, upgrade
from nas.service.store import (
    Claim,
    DeviceRecord,
    SearchRecord,
    SearchStatus,
    TokenRecord,
    authenticate,
    cancel_requested,
    claim_search,
    create_search,
    create_token,
    get_search,
    list_searches,
    list_tokens,
    live_devices,
    mark_finished,
    mark_running,
    ping_database,
    register_device,
    request_cancel,
    revoke_token,
    touch_search,
    update_progress,
)

__all__ = [
    "Claim",
    "DeviceRecord",
    "SearchRecord",
    "SearchStatus",
    "TokenRecord",
    "authenticate",
    "cancel_requested",
    "claim_search",
    "create_search",
    "create_token",
    "current_revision",
    "ensure_schema",
    "get_search",
    "head_revision",
    "list_searches",
    "list_tokens",
    "live_devices",
    "mark_finished",
    "mark_running",
    "ping_database",
    "register_device",
    "request_cancel",
    "revoke_token",
    "touch_search",
    "update_progress",
    "upgrade",
]
