"""Every read and write of service-trained supernets (``POST /supernets``): rows of ``nas_supernets``.

The life cycle is ``nas.service.spec_jobs``' (queued -> running -> final, one trainer at a time through a
lease; a dead worker's supernet is taken over and resumed from its last checkpoint). Checkpoint and final
file are artifacts (``nas.service.artifacts``) in the scope ``supernet-<id>``. Torch-free, so the API can
import it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from nas.errors import ConflictError
from nas.service._models import SupernetRow
from nas.service.migrate import ensure_schema
from nas.service.spec_jobs import JobClaim, JobRecord, SpecJobs
from nas.service.store import SearchStatus
from nas.storage import read

if TYPE_CHECKING:
    from nas.supernet import SupernetSpec

SupernetStatus = SearchStatus  # the same five states and the same meaning of "final"
SupernetRecord = JobRecord
SupernetClaim = JobClaim
CHECKPOINT, SUPERNET_FILE = "checkpoint.pt", "supernet.pt"
SUPERNETS = SpecJobs(SupernetRow, "supernet")
get_supernet, list_supernets, claim_supernet = SUPERNETS.get, SUPERNETS.list, SUPERNETS.claim
touch_supernet, update_supernet_progress = SUPERNETS.touch, SUPERNETS.update_progress
finish_supernet, request_supernet_cancel = SUPERNETS.finish, SUPERNETS.request_cancel


def artifact_scope(supernet_id: str) -> str:
    """Where a supernet's files live in ``nas_artifacts`` (its "study name")."""
    return f"supernet-{supernet_id}"


def create_supernet(url: str, spec: SupernetSpec, owner_id: str | None) -> SupernetRecord:
    """``ConflictError`` if the name is taken (names are unique in the service: searches name them)."""
    taken = ConflictError(f"a supernet named {spec.name!r} already exists; choose another name")

    def name_free(s: Session) -> None:
        if s.scalar(select(SupernetRow.id).where(SupernetRow.name == spec.name)) is not None:
            raise taken
    try:
        return SUPERNETS.create(url, spec.name, spec.model_dump(mode="json"), spec.fingerprint, owner_id,
                                check=name_free)
    except IntegrityError:  # two submissions raced on the name: the unique constraint decided
        raise taken from None


def find_named(url: str, name: str) -> SupernetRecord | None:
    """The supernet called ``name``, any owner's (searches address supernets by name), or None."""
    def found(s: Session) -> SupernetRecord | None:
        row = s.scalars(select(SupernetRow).where(SupernetRow.name == name)).first()
        return None if row is None else JobRecord.of(row)
    return read(ensure_schema(url), found)


def supernet_warnings(url: str, name: str) -> list[str]:
    """What a search naming supernet ``name`` should know at submission: trials fail unless it is trained
    by then (here, or in a train worker's own NAS_HOME/supernets)."""
    record = find_named(url, name)
    if record is None:
        return [f"proxy.supernet: the service has no supernet named {name!r} (POST /supernets); trials fail "
                "unless every train worker has one of that name in its NAS_HOME/supernets"]
    if record.status is not SearchStatus.succeeded:
        return [f"proxy.supernet: supernet {name!r} is {record.status.value}; trials fail unless it has "
                "succeeded by the time they run"]
    return []
