"""Checks on a submitted search spec beyond its schema, so a bad request fails at submission (422 naming
the field) instead of minutes later in a worker.

A service accepts names, not server paths: a space must be a shipped space name or an inline document,
a device a known profile name. Architectures (a target reference, a NetAdapt seed) and dataset paths are
checked by the spec itself under the service's rules (``parse_spec``): no server file is ever read.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from nas._documents import non_json_value
from nas.errors import SpaceError, SpecError
from nas.search import SearchSpec, parse_spec

SOURCE = "body"


def validate_submission(document: object) -> SearchSpec:
    """The spec, or ``SpecError(source='body', field, reason)`` for the first problem found."""
    if not isinstance(document, dict):  # before the scan below, so that a list is not reported by index
        raise SpecError(SOURCE, "(document)", "a search spec must be a mapping")
    bad = non_json_value(document)  # a JSON body can hold NaN and Infinity (Python's json reads them)
    if bad is not None:
        raise SpecError(SOURCE, *bad)
    spec = parse_spec(document, SOURCE)
    _check_space(spec)
    _check_device(spec.device)
    return spec


def _check_space(spec: SearchSpec) -> None:
    from nas.spaces import list_spaces, parse_space

    if isinstance(spec.space, dict):
        try:
            parse_space(spec.space, "space")
        except SpaceError as exc:
            field = "space" if exc.field == "(document)" else f"space.{exc.field}"
            raise SpecError(SOURCE, field, exc.reason) from None
        return
    from nas.paths import search_spaces_dir

    if spec.space in _stems(search_spaces_dir(), ".yaml"):
        return
    known = list_spaces()
    raise SpecError(SOURCE, "space", f"unknown search space {spec.space!r} (known: {', '.join(known)})")


def _stems(directory: Path, suffix: str) -> frozenset[str]:
    """File stems of a shipped directory, listed again only when the directory changes (its mtime):
    every submission checks its names, and listing the directories was a tenth of a POST's CPU."""
    return _listed(directory, suffix, directory.stat().st_mtime_ns)


@lru_cache(maxsize=16)
def _listed(directory: Path, suffix: str, _mtime_ns: int) -> frozenset[str]:
    return frozenset(p.stem for p in directory.glob(f"*{suffix}"))


def _check_device(name: str) -> None:
    from nas.latency import BUILT_IN, list_profiles

    if name in BUILT_IN:  # user profiles (YAML files, read on each call) are looked at only for other names
        return
    known = [p.name for p in list_profiles()]
    if name not in known:
        raise SpecError(SOURCE, "device", f"unknown device profile {name!r} (known: {', '.join(known)})")

