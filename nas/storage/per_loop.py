"""One value per key and per running event loop: asyncio clients (asyncpg pools, redis.asyncio) belong to
the loop that opened their connections, and tests start a loop per client.

Each entry keeps its loop, so the loop's id (part of the key) cannot be reused by a later loop while the
entry exists; a forked child starts empty, as it must not touch its parent's connections.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

_T = TypeVar("_T")

_caches: list[PerLoop[object]] = []


class PerLoop(Generic[_T]):
    def __init__(self) -> None:
        self._values: dict[tuple[Hashable, int], tuple[asyncio.AbstractEventLoop, _T]] = {}
        _caches.append(self)  # type: ignore[arg-type]

    def get(self, key: Hashable, make: Callable[[asyncio.AbstractEventLoop], _T]) -> _T:
        """The value for ``key`` on the running loop, made by ``make(loop)`` the first time."""
        loop = asyncio.get_running_loop()
        entry = self._values.get((key, id(loop)))
        if entry is None:
            entry = self._values[(key, id(loop))] = (loop, make(loop))
        return entry[1]

    def clear(self) -> None:
        self._values.clear()


def _clear_after_fork() -> None:
    for cache in _caches:
        cache.clear()


os.register_at_fork(after_in_child=_clear_after_fork)
