"""Loading spaces from YAML files or by name, with errors naming the file, the field and the reason."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import ValidationError

from nas._documents import first_error
from nas.arch import Architecture
from nas.errors import ArchitectureError, NotFoundError, SpaceError
from nas.paths import search_spaces_dir
from nas.spaces._membership import membership_problems
from nas.spaces._schema import SpaceDefinition
from nas.spaces._space import SearchSpace


def list_spaces() -> list[str]:
    return sorted(p.stem for p in search_spaces_dir().glob("*.yaml"))


def load_space(name_or_file: str) -> SearchSpace:
    path = Path(name_or_file)
    if not (path.suffix in (".yaml", ".yml") or path.is_file()):
        path = search_spaces_dir() / f"{name_or_file}.yaml"
        if not path.is_file():
            raise NotFoundError("search space", name_or_file, list_spaces())
    elif not path.is_file():
        raise NotFoundError("search space file", str(path))
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else "(document)"
        raise SpaceError(str(path), where, f"invalid YAML: {getattr(exc, 'problem', exc)}") from None
    return parse_space(data, str(path))


def parse_space(data: object, source: str = "<inline>") -> SearchSpace:
    if not isinstance(data, dict):
        raise SpaceError(source, "(document)", "a search space must be a YAML mapping")
    try:
        definition = SpaceDefinition.model_validate(data)
    except ValidationError as exc:
        raise SpaceError(source, *first_error(exc)) from None
    return SearchSpace(definition, source)


def check_member(space: SearchSpace, arch: Architecture) -> None:
    """Raise ``ArchitectureError`` naming the first field that keeps ``arch`` out of ``space``."""
    problems = membership_problems(space, arch)
    if problems:
        field, reason = problems[0]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise ArchitectureError(field, f"{reason}{more}", source=f"space {space.name}")
