"""Shared handling of user documents (YAML files, JSON bodies): the first validation error as
(field path, reason), and reading a YAML mapping with the line of a syntax error."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

_FIELD = re.compile(r"^[A-Za-z_][\w.\[\]]*$")
_PLAIN_KEY = re.compile(r"^[\w-]+$")


def _path_part(part: object) -> str:
    """A key that could be misread as a path (a dot, a bracket, a space, empty) is JSON-quoted."""
    text = str(part)
    return text if isinstance(part, int) or _PLAIN_KEY.match(text) else json.dumps(text)


def first_error(exc: ValidationError) -> tuple[str, str]:
    """The first error's dotted field path and reason. A model validator that raises "field: reason"
    names its field in the message; that field is appended to the location."""
    err = exc.errors()[0]
    loc = ".".join(_path_part(p) for p in err["loc"]) or "(document)"
    msg = str(err["msg"]).removeprefix("Value error, ")
    head, sep, rest = msg.partition(": ")
    if sep and _FIELD.match(head):
        loc, msg = (head if loc == "(document)" else f"{loc}.{head}"), rest
    return loc, msg


def read_yaml_mapping(path: Path, error: Callable[[str, str], Exception], what: str) -> dict[str, Any]:
    """``yaml.safe_load`` of a file that must hold a mapping; ``error(field, reason)`` builds the exception."""
    if not path.is_file():
        raise error("(file)", "no such file")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise error(f"line {mark.line + 1}" if mark else "(document)",
                    f"invalid YAML: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(data, dict):
        raise error("(document)", f"{what} must be a YAML mapping")
    return data
