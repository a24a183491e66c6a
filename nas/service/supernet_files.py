"""A search trial's ``proxy.supernet: NAME`` on a worker: the supernet the service trained under that name,
copied from the database into a local cache (by its sha256, so a re-trained supernet is fetched again and an
unchanged one only once per machine); None when the service has no succeeded supernet of that name, and
the worker then looks in its own ``NAS_HOME/supernets`` (supernets trained there with ``nas supernet train``)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from nas.service._models import ArtifactRow
from nas.service.artifacts import read_artifact
from nas.service.migrate import ensure_schema
from nas.service.store import SearchStatus
from nas.service.supernets import SUPERNET_FILE, artifact_scope, find_named
from nas.storage import read


def cached_supernet(url: str, name: str) -> Path | None:
    from nas.settings import get_settings

    record = find_named(url, name)
    if record is None or record.status is not SearchStatus.succeeded:
        return None
    scope = artifact_scope(record.id)
    digest = read(ensure_schema(url), lambda s: s.scalar(
        select(ArtifactRow.sha256).where(ArtifactRow.study_name == scope, ArtifactRow.name == SUPERNET_FILE)))
    if digest is None:
        return None
    path = get_settings().home / "supernets" / ".service" / f"{name}-{digest[:16]}.pt"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(read_artifact(url, scope, SUPERNET_FILE))
        tmp.replace(path)
    return path


def resolve_supernet(url: str, name_or_path: str) -> Path:
    """What a trial's ``proxy.supernet`` names: the service's supernet of that name, else a local one."""
    from nas.supernet import resolve

    if not name_or_path.endswith(".pt") and not Path(name_or_path).is_file():
        found = cached_supernet(url, name_or_path)
        if found is not None:
            return found
    return resolve(name_or_path)
