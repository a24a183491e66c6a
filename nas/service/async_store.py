"""The API's per-request statements as coroutines: the token check, reading a search, storing a new one.

On PostgreSQL they run on the event loop through asyncpg (``nas.storage.async_pg``): no thread hop, no
ORM, one prepared statement each. On SQLite they run the synchronous functions of ``store`` in a worker
thread, as before. Either way they return the same records and raise the same errors as ``store``, which
stays the one place that decides what a row means (visibility, token comparison, a new search's columns).
The schema is assumed current: the API migrates it when it starts.
"""

from __future__ import annotations

from datetime import timedelta
from functools import partial
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from anyio import to_thread

from nas.service._models import DeviceRow, SearchRow, TokenRow, utcnow
from nas.service.store import (
    TOKEN_PREFIX,
    SearchRecord,
    TokenRecord,
    authenticate,
    create_search,
    get_search,
    live_devices,
    new_search_values,
    token_digest,
    token_matching,
    visible,
)
from nas.storage import async_pg

if TYPE_CHECKING:
    from nas.search import SearchSpec

_SEARCH_COLUMNS = [c.name for c in SearchRow.__table__.c]
_TOKEN_COLUMNS = [c.name for c in TokenRow.__table__.c]

_SELECT_TOKEN = f"SELECT {', '.join(_TOKEN_COLUMNS)} FROM {TokenRow.__tablename__} WHERE token_hash = $1"
_SELECT_SEARCH = f"SELECT {', '.join(_SEARCH_COLUMNS)} FROM {SearchRow.__tablename__} WHERE id = $1"
# ON CONFLICT DO NOTHING: ``async_pg.run`` may send it twice (a dropped connection), and the id is ours.
_INSERT_SEARCH = (f"INSERT INTO {SearchRow.__tablename__} ({', '.join(_SEARCH_COLUMNS)}) "
                  f"VALUES ({', '.join(f'${i + 1}' for i in range(len(_SEARCH_COLUMNS)))}) "
                  "ON CONFLICT (id) DO NOTHING")


def _row(record: Any) -> SimpleNamespace | None:
    """An asyncpg record read like a SQLAlchemy row (by attribute)."""
    return None if record is None else SimpleNamespace(**dict(record.items()))


async def authenticate_async(url: str, token: str) -> TokenRecord | None:
    if not async_pg.is_postgresql(url):
        return await to_thread.run_sync(authenticate, url, token)
    if not token.startswith(TOKEN_PREFIX):
        return None
    digest = token_digest(token)
    record = await async_pg.run(url, lambda c: c.fetchrow(_SELECT_TOKEN, digest))
    return token_matching(_row(record), digest)  # type: ignore[arg-type]


async def get_search_async(url: str, search_id: str, owner_id: str | None = None) -> SearchRecord:
    if not async_pg.is_postgresql(url):
        return await to_thread.run_sync(partial(get_search, url, search_id, owner_id))
    record = await async_pg.run(url, lambda c: c.fetchrow(_SELECT_SEARCH, search_id))
    return SearchRecord.of(visible(_row(record), search_id, owner_id))  # type: ignore[arg-type]


async def create_search_async(url: str, spec: SearchSpec, owner_id: str | None) -> SearchRecord:
    if not async_pg.is_postgresql(url):
        return await to_thread.run_sync(create_search, url, spec, owner_id)
    values = new_search_values(spec, owner_id)
    await async_pg.run(url, lambda c: c.execute(_INSERT_SEARCH, *(values[name] for name in _SEARCH_COLUMNS)))
    return SearchRecord.of(SimpleNamespace(**values))  # type: ignore[arg-type]


_LIVE_DEVICE = f"SELECT 1 FROM {DeviceRow.__tablename__} WHERE profile = $1 AND last_seen >= $2 LIMIT 1"


async def device_live_async(url: str, profile: str, ttl_seconds: float) -> bool:
    """Whether a worker of ``profile`` heartbeat within ``ttl_seconds`` (a submission warns when none did)."""
    if not async_pg.is_postgresql(url):
        found = await to_thread.run_sync(live_devices, url, ttl_seconds)
        return any(d.profile == profile for d in found)
    cutoff = utcnow() - timedelta(seconds=ttl_seconds)
    return await async_pg.run(url, lambda c: c.fetchval(_LIVE_DEVICE, profile, cutoff)) is not None
