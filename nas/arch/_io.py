"""Reading architectures from a file, a reference name, the one-line string form or an inline document."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from nas.arch._model import Architecture, parse_architecture
from nas.errors import ArchitectureError, NotFoundError
from nas.paths import references_dir

ArchitectureRef = str | dict[str, Any]
"""How a spec names an architecture: a shipped reference name, the one-line string form, an inline
document, or (only for a local user, ``nas run``) a JSON file."""


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


def resolve_architecture(ref: ArchitectureRef, *, files: bool) -> Architecture:
    """The architecture ``ref`` names. Without ``files`` (a spec that came through the service) no path is
    ever looked at: a string is a shipped reference name (matched against the listing, so ``../x`` is just
    an unknown name) or the string form, so an error can neither echo a server file nor tell whether one
    exists."""
    if isinstance(ref, dict):
        return parse_architecture(ref)
    if files:
        return load_architecture(ref)
    if ref in reference_names():
        return _reference(ref)
    if "|" in ref:
        from nas.arch._string import from_string

        return from_string(ref)
    raise ArchitectureError("(document)", f"unknown reference network {ref!r}: through the service an architecture "
                            "is a reference name (known: " + ", ".join(sorted(reference_names())) + "), the "
                            "one-line string form or an inline document; server files are not read")


def architecture_field(ref: ArchitectureRef, *, files: bool, field: str) -> Architecture:
    """:func:`resolve_architecture` for a pydantic validator: a failure is ``ValueError("field.path: reason")``."""
    try:
        return resolve_architecture(ref, files=files)
    except ArchitectureError as exc:
        where = field if exc.field == "(document)" else f"{field}.{exc.field}"
        reason = f"{exc.source}: {exc.reason}" if exc.source and files else exc.reason
        raise ValueError(f"{where}: {reason}") from None
    except NotFoundError as exc:
        raise ValueError(f"{field}: {exc}") from None


def reference_names() -> frozenset[str]:
    """The shipped reference networks, listed again only when their directory changes."""
    directory = references_dir()
    return _listed(directory, directory.stat().st_mtime_ns)


@lru_cache(maxsize=4)
def _listed(directory: Path, _mtime_ns: int) -> frozenset[str]:
    return frozenset(p.stem for p in directory.glob("*.json"))


def _reference(name: str) -> Architecture:
    path = references_dir() / f"{name}.json"
    return _read_cached(path, path.stat().st_mtime_ns)


@lru_cache(maxsize=64)
def _read_cached(path: Path, _mtime_ns: int) -> Architecture:
    return _read(path)  # an Architecture is frozen: one parsed copy serves every submission


def _read(path: Path) -> Architecture:
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ArchitectureError("(document)", f"invalid JSON at line {exc.lineno}: {exc.msg}", str(path)) from None
    return parse_architecture(data, source=str(path))


def save_architecture(arch: Architecture, path: Path) -> None:
    path.write_text(json.dumps(arch.model_dump(mode="json"), indent=2) + "\n")
