"""Checks on a submitted training (``POST /trainings``), so a bad request is a 422 naming the field at
submission rather than a failure later on a train worker: the spec under the service's rules, a known
device profile, a supernet of the service that has succeeded, and a search of the caller's that has
succeeded with a best network (written into the spec as ``architecture``)."""

from __future__ import annotations

from nas._documents import non_json_value
from nas.arch._io import architecture_field
from nas.errors import NotFoundError, SpecError
from nas.service.validate import SOURCE, _check_device
from nas.training import TrainingSpec, parse_training_spec, resolved


def validate_training_submission(document: object, url: str, owner_id: str | None) -> TrainingSpec:
    if not isinstance(document, dict):
        raise SpecError(SOURCE, "(document)", "a training spec must be a mapping")
    bad = non_json_value(document)
    if bad is not None:
        raise SpecError(SOURCE, *bad)
    if document.get("architecture") is not None and document.get("search") is not None:
        raise SpecError(SOURCE, "architecture", "give one of architecture and search, not both")
    spec = parse_training_spec(document, SOURCE)
    if spec.search is not None:
        spec = _with_search_best(spec, url, owner_id)
    if spec.device is not None:
        _check_device(spec.device)
    if spec.supernet is not None:
        _check_supernet(url, spec)
    return spec


def _with_search_best(spec: TrainingSpec, url: str, owner_id: str | None) -> TrainingSpec:
    from nas.service.results import best_architecture
    from nas.service.store import SearchStatus, get_search

    assert spec.search is not None
    try:
        record = get_search(url, spec.search, owner_id)
    except NotFoundError:
        raise SpecError(SOURCE, "search", f"no search {spec.search!r} of yours") from None
    if record.status is not SearchStatus.succeeded:
        raise SpecError(SOURCE, "search", f"search {record.id} is {record.status.value}; its best network can be "
                        "trained once it has succeeded")
    best = best_architecture(url, record)
    if best is None:
        raise SpecError(SOURCE, "search", f"search {record.id} has no completed trial to train")
    return resolved(spec, best[1], record.spec.get("device"))


def _check_supernet(url: str, spec: TrainingSpec) -> None:
    """The supernet exists, has succeeded, and serves the networks taken from it (a student it starts, a
    teacher other than its largest)."""
    from nas.errors import ArchitectureError
    from nas.service.store import SearchStatus
    from nas.service.supernets import find_named
    from nas.spaces import check_member, load_space

    assert spec.supernet is not None
    record = find_named(url, spec.supernet)
    if record is None:
        raise SpecError(SOURCE, "supernet", f"the service has no supernet named {spec.supernet!r} (POST /supernets)")
    if record.status is not SearchStatus.succeeded:
        raise SpecError(SOURCE, "supernet", f"supernet {spec.supernet!r} is {record.status.value}; a training can "
                        "inherit or distil from it once it has succeeded")
    space = load_space(str(record.spec["space"]))
    taken = [("architecture", spec.network())] if spec.inherit else []
    if spec.teacher is not None and spec.teacher.source != "largest":
        taken.append(("teacher.source", architecture_field(spec.teacher.source, files=False,
                                                           field="teacher.source")))
    for field, arch in taken:
        try:
            check_member(space, arch)
        except ArchitectureError as exc:
            raise SpecError(SOURCE, field, f"not a subnet of supernet {spec.supernet!r} ({space.name}): "
                            f"{exc.field}: {exc.reason}") from None
