"""Lookup-table parts timed on the search's device, on behalf of a strategy (NetAdapt's sizing).

A strategy runs in the search driver, which may sit on any machine: parts it needs are timed where the
device is, by whoever judges the search's latencies (in-process for ``nas run``, the ``latency.<device>``
worker in the service, ``workers.executor``). The outcome names the table's fingerprint, the device's
machine's, so the driver reads the entries the device wrote rather than its own machine's (empty) table.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pydantic import BaseModel, ConfigDict

from nas.arch import Architecture, parse_architecture
from nas.search._evaluate import StudyRef

TABLE_OUTCOME_PREFIX = "outcome.table."
"""Study attributes a distributed table task writes to (``{"table": ...}`` or ``{"error": ...}``)."""


class TableRequest(BaseModel):
    model_config = ConfigDict(frozen=True)

    architectures: list[dict[str, Any]]
    device: str
    storage_url: str
    study: StudyRef | None = None
    """Where the distributed outcome goes (``table_request`` names one key per set of networks)."""


class TableOutcome(BaseModel):
    timed: int
    """Parts timed now (0: the table had them all)."""
    fingerprint: str
    """The table's: the machine that timed, with the profile's settings and the runtime's versions."""


def table_request(archs: list[Architecture], device: str, storage_url: str, study_name: str) -> TableRequest:
    """The request for ``archs``' missing parts, keyed on the study by what it asks for: the same networks
    asked again (a resumed iteration) reuse the stored outcome, whose entries are in the table for good."""
    docs = [a.model_dump(mode="json") for a in archs]
    body = json.dumps(sorted(f"{a.hash}@{a.resolution}" for a in archs) + [device])
    key = TABLE_OUTCOME_PREFIX + hashlib.sha256(body.encode()).hexdigest()[:16]
    return TableRequest(architectures=docs, device=device, storage_url=storage_url,
                        study=StudyRef(storage_url=storage_url, study_name=study_name, key=key))


def time_table_parts(req: TableRequest) -> TableOutcome:
    """Time, on this machine, the parts of the request's networks that its table lacks."""
    from nas.latency import ensure_entries, fingerprint, load_profile

    profile = load_profile(req.device)
    timed = ensure_entries([parse_architecture(a) for a in req.architectures], profile, database_url=req.storage_url)
    return TableOutcome(timed=timed, fingerprint=fingerprint(profile))
