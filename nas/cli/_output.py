"""Shared console helpers: JSON to stdout, tables via rich."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable, Iterator
from typing import Any

from rich.console import Console

# Wide enough for block tables when piped (rich falls back to 80 columns without a terminal).
console = Console(width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True)


def print_json(obj: Any) -> None:
    """Plain JSON on one line (machine-readable; no rich markup or wrapping)."""
    sys.stdout.write(json.dumps(obj, sort_keys=False) + "\n")


@contextlib.contextmanager
def progress_bars(disable: bool = False, describe: Callable[[str], str] = str
                  ) -> Iterator[Callable[[str, int, int], None]]:
    """A ``progress(what, done, total)`` callback for the library, drawing one bar per ``what`` on stderr
    (gone when done, so the table or JSON on stdout stands alone)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err_console, transient=True, disable=disable) as bar:
        tasks: dict[str, TaskID] = {}

        def progress(what: str, done: int, total: int) -> None:
            if what not in tasks:
                tasks[what] = bar.add_task(describe(what), total=total)
            bar.update(tasks[what], completed=done)

        yield progress
