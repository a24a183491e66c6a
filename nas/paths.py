"""Where shipped data lives; overridable by environment for installed (non-editable) deployments."""

from __future__ import annotations

import os
from pathlib import Path

_REPO = Path(__file__).resolve().parents[1]


def search_spaces_dir() -> Path:
    return Path(os.environ.get("NAS_SEARCH_SPACES_DIR", _REPO / "search_spaces"))


def references_dir() -> Path:
    return search_spaces_dir() / "references"
