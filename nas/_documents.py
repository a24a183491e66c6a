"""Shared handling of user documents (YAML files, JSON bodies): the first validation error as
(field path, reason), reading a YAML mapping with the line of a syntax error, the first value JSON cannot
carry, and which rules a document is validated under (the service's or a local user's)."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError, ValidationInfo

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


SERVICE_RULES: dict[str, Any] = {"service": True}
"""Validation context of a document that came through the service (``parse_spec``'s default): it may name
no server file (architectures by reference name, string form or inline document; datasets only under
``NAS_DATA_DIRS``). Without it (``nas run`` of a local file) a local user's files are allowed."""


def service_rules(info: ValidationInfo) -> bool:
    return bool(info.context and info.context.get("service"))


def non_json_value(value: Any, path: str | None = None) -> tuple[str, str] | None:
    """(field path, reason) of the first value that strict JSON cannot carry: NaN and infinities (Python's
    json writes them, other parsers refuse them), and YAML's dates, binary and sets; None if all is fine."""
    where = "(document)" if path is None else path
    if isinstance(value, float):
        return None if math.isfinite(value) else (where, "must be a finite number")
    if value is None or isinstance(value, str | int | bool):
        return None
    if isinstance(value, dict):
        for key in value:
            if not isinstance(key, str):
                return where, f"a key must be text, got {type(key).__name__} {key!r} (quote it)"
        children: Any = value.items()
    elif isinstance(value, list):
        children = enumerate(value)
    else:
        return where, f"a {type(value).__name__} is not a JSON value (quote it to make it a string)"
    for key, item in children:
        found = non_json_value(item, str(key) if path is None else f"{path}.{key}")
        if found is not None:
            return found
    return None


def read_yaml_mapping(path: Path, error: Callable[[str, str], Exception], what: str) -> dict[str, Any]:
    """``yaml.safe_load`` of a file that must hold a mapping; ``error(field, reason)`` builds the exception."""
    if not path.is_file():
        raise error("(file)", "no such file")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise error("(document)", f"not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise error("(file)", f"cannot read it: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise error(f"line {mark.line + 1}" if mark else "(document)",
                    f"invalid YAML: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(data, dict):
        raise error("(document)", f"{what} must be a YAML mapping")
    return data
