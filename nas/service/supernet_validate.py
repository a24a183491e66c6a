"""Checks on a submitted supernet spec, so a bad request is a 422 naming the field at submission rather
than a failure minutes later on a train worker. Under the service's rules: a shipped space by name, with
mbconv stages only (what the supernet serves), dataset paths only under ``NAS_DATA_DIRS``."""

from __future__ import annotations

from nas._documents import non_json_value
from nas.errors import SpecError
from nas.service.validate import SOURCE, _stems
from nas.supernet import SupernetSpec, parse_supernet_spec


def validate_supernet_submission(document: object) -> SupernetSpec:
    if not isinstance(document, dict):
        raise SpecError(SOURCE, "(document)", "a supernet spec must be a mapping")
    bad = non_json_value(document)
    if bad is not None:
        raise SpecError(SOURCE, *bad)
    spec = parse_supernet_spec(document, SOURCE, local_files=False)
    _check_space(spec.space)
    return spec


def _check_space(name: str) -> None:
    from nas.arch import BlockType
    from nas.paths import search_spaces_dir
    from nas.spaces import list_spaces, load_space

    if name not in _stems(search_spaces_dir(), ".yaml"):
        raise SpecError(SOURCE, "space", f"unknown search space {name!r} (known: {', '.join(list_spaces())})")
    for s, stage in enumerate(load_space(name).definition.stages):
        if stage.block != [BlockType.mbconv]:
            raise SpecError(SOURCE, "space", f"{name} has non-mbconv blocks (stages.{s}); the supernet serves "
                            "mbconv spaces only (e.g. mobilenetv3-small, mobilenetv3-large, mobilenetv2)")
