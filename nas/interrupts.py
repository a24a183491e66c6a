"""Ctrl-C handled between steps: long training loops save a consistent checkpoint and then stop."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def deferred_interrupt() -> Iterator[list[bool]]:
    """SIGINT sets ``flag[0]``, which the loop checks after each step (so no update is half-applied); a
    second Ctrl-C stops at once. Outside the main thread signals cannot be handled: the flag stays False."""
    flag = [False]
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def handler(_sig: int, _frame: object) -> None:
        if flag[0]:
            raise KeyboardInterrupt
        flag[0] = True

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)
