"""Shared console helpers: JSON to stdout, tables via rich."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console

# Wide enough for block tables when piped (rich falls back to 80 columns without a terminal).
console = Console(width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True)


def print_json(obj: Any) -> None:
    """Plain JSON on one line (machine-readable; no rich markup or wrapping)."""
    sys.stdout.write(json.dumps(obj, sort_keys=False) + "\n")
