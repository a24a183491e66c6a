"""Where shipped data lives; ``NAS_SEARCH_SPACES_DIR`` moves it for installed (non-editable) deployments."""

from __future__ import annotations

from pathlib import Path

_REPO = Path(__file__).resolve().parents[1]


def search_spaces_dir() -> Path:
    from nas.settings import get_settings

    return get_settings().search_spaces_dir or _REPO / "search_spaces"


def references_dir() -> Path:
    return search_spaces_dir() / "references"
