"""Every read and write of artifacts: the files a search produces (checkpoints, best.pt, best.onnx, the
device's own file such as best.tflite, and best.provenance.json).

They are rows of the database that holds the search's Optuna study, scoped by the study's name, so any
machine that can reach the study reads what any worker wrote: a train worker resuming from another one's
checkpoint (NetAdapt), the driver exporting the best network, the API serving it. Files a local ``nas run``
also leaves in its run folder are copies for the user; code that needs an artifact reads it here.
Torch-free: content is bytes.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Row, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from nas.errors import NASError, NotFoundError
from nas.service._models import ArtifactRow, utcnow
from nas.service.migrate import ensure_schema
from nas.storage import read, session_scope

# Segments of letters, digits, '.', '_' and '-' joined by '/', none starting with '.' (so never '.' or '..'):
# a name is never a path that leaves its scope, whoever asks for it. The API documents the same pattern.
NAME_PATTERN = r"^[A-Za-z0-9_-][A-Za-z0-9._-]*(?:/[A-Za-z0-9_-][A-Za-z0-9._-]*)*$"
_NAME = re.compile(NAME_PATTERN)
MAX_NAME = 255

MEDIA_TYPES = {".onnx": "application/onnx", ".pt": "application/octet-stream", ".json": "application/json",
               ".xml": "application/xml"}

BEST_STATE, BEST_ONNX = "best.pt", "best.onnx"
BEST_PROVENANCE = "best.provenance.json"
"""Names the device's own file(s) of the best network (``files``, the one to load first) and how they came to be."""
CHECKPOINTS = "checkpoints/"


@dataclass(frozen=True)
class ArtifactRecord:
    """What is known about an artifact without reading its content."""

    name: str
    media_type: str
    size: int
    sha256: str
    created_at: datetime


def checkpoint_name(trial_number: int) -> str:
    """The artifact a trial's trained weights are stored under (what ``TrainRequest.save_checkpoint`` names)."""
    return f"{CHECKPOINTS}trial-{trial_number:05d}.pt"


def checkpoint_trial(name: str) -> int | None:
    """The trial number of a checkpoint's name, or None for any other artifact."""
    match = re.fullmatch(re.escape(CHECKPOINTS) + r"trial-(\d+)\.pt", name)
    return int(match.group(1)) if match else None


def check_name(name: str) -> str:
    if len(name) > MAX_NAME or not _NAME.fullmatch(name):
        raise NASError(f"invalid artifact name {name!r}: use letters, digits, '.', '_', '-' and '/' between "
                       f"parts (none starting with '.'), at most {MAX_NAME} characters")
    return name


def media_type_of(name: str) -> str:
    return MEDIA_TYPES.get(Path(name).suffix, "application/octet-stream")


def put_artifact(url: str, study_name: str, name: str, content: bytes, media_type: str | None = None
                 ) -> ArtifactRecord:
    """Store (or replace) ``name`` in the study's scope. A redelivered task writing the same artifact again
    replaces it; two writers racing on the first insert end with one row, the later content."""
    check_name(name)
    values = dict(media_type=media_type or media_type_of(name), size=len(content),
                  sha256=hashlib.sha256(content).hexdigest(), content=content, created_at=utcnow())
    for attempt in range(2):
        try:
            with session_scope(ensure_schema(url)) as s:
                row = _find(s, study_name, name)
                if row is None:
                    row = ArtifactRow(study_name=study_name, name=name, **values)
                    s.add(row)
                else:
                    for key, value in values.items():
                        setattr(row, key, value)
                s.flush()
                return _record(row)
        except IntegrityError:  # another writer inserted it first: replace theirs
            if attempt:
                raise
    raise AssertionError("unreachable")


def put_file(url: str, study_name: str, name: str, path: Path) -> ArtifactRecord:
    return put_artifact(url, study_name, name, path.read_bytes())


def read_artifact(url: str, study_name: str, name: str) -> bytes:
    """The content of ``name``; ``NotFoundError`` when the study has no such artifact."""
    check_name(name)
    content = read(ensure_schema(url), lambda s: s.scalar(
        select(ArtifactRow.content).where(ArtifactRow.study_name == study_name, ArtifactRow.name == name)))
    if content is None:
        raise NotFoundError("artifact", name)
    return bytes(content)


def list_artifacts(url: str, study_name: str, prefix: str = "") -> list[ArtifactRecord]:
    """The study's artifacts by name (their content is not read)."""
    columns = (ArtifactRow.name, ArtifactRow.media_type, ArtifactRow.size, ArtifactRow.sha256,
               ArtifactRow.created_at)
    query = select(*columns).where(ArtifactRow.study_name == study_name).order_by(ArtifactRow.name)
    if prefix:
        query = query.where(ArtifactRow.name.startswith(prefix, autoescape=True))
    rows = read(ensure_schema(url), lambda s: s.execute(query).all())
    return [_record(r) for r in rows]  # type: ignore[arg-type]


def delete_artifacts(url: str, study_name: str, names: Iterable[str]) -> int:
    """Remove these artifacts of the study (missing ones are ignored); returns how many went."""
    names = list(names)
    if not names:
        return 0
    with session_scope(ensure_schema(url)) as s:
        result = s.execute(delete(ArtifactRow).where(ArtifactRow.study_name == study_name,
                                                     ArtifactRow.name.in_(names)))
        return int(result.rowcount or 0)  # type: ignore[attr-defined]


def _find(s: Session, study_name: str, name: str) -> ArtifactRow | None:
    return s.scalars(select(ArtifactRow).where(ArtifactRow.study_name == study_name,
                                               ArtifactRow.name == name)).first()


def _record(row: ArtifactRow | Row[Any]) -> ArtifactRecord:
    created = row.created_at  # SQLite hands back naive datetimes; everything stored is UTC
    return ArtifactRecord(name=row.name, media_type=row.media_type, size=int(row.size), sha256=row.sha256,
                          created_at=created.replace(tzinfo=UTC) if created.tzinfo is None else created)


__all__ = ["BEST_ONNX", "BEST_PROVENANCE", "BEST_STATE", "MAX_NAME", "NAME_PATTERN", "ArtifactRecord", "check_name",
           "checkpoint_name", "checkpoint_trial", "delete_artifacts", "list_artifacts", "put_artifact", "put_file",
           "read_artifact"]
