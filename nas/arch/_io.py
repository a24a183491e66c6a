"""Reading architectures from a file, a reference name or the one-line string form."""

from __future__ import annotations

import json
from pathlib import Path

from nas.arch._model import Architecture, parse_architecture
from nas.errors import ArchitectureError, NotFoundError
from nas.paths import references_dir


def load_architecture(name_or_file: str) -> Architecture:
    """A path to a JSON file, a shipped reference name (``mobilenetv3-small-1.0``) or a one-line string."""
    path = Path(name_or_file)
    if path.suffix == ".json" or path.is_file():
        if not path.is_file():
            raise NotFoundError("architecture file", str(path))
        return _read(path)
    ref = references_dir() / f"{name_or_file}.json"
    if ref.is_file():
        return _read(ref)
    if "|" in name_or_file:
        from nas.arch._string import from_string

        return from_string(name_or_file)
    known = [p.stem for p in references_dir().glob("*.json")]
    raise NotFoundError("architecture or reference", name_or_file, known)


def _read(path: Path) -> Architecture:
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ArchitectureError("(document)", f"invalid JSON at line {exc.lineno}: {exc.msg}", str(path)) from None
    return parse_architecture(data, source=str(path))


def save_architecture(arch: Architecture, path: Path) -> None:
    path.write_text(json.dumps(arch.model_dump(mode="json"), indent=2) + "\n")
