"""The exported lookup-table file: JSON with provenance, entries and calibrations.

A file lets a search worker on another host predict without the database; the fingerprint inside says
which machine and build the numbers belong to. Entries are ``key: [median_ms, p10_ms, p90_ms, runs, params]``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from nas.errors import LatencyError
from nas.latency._timing import LatencyStats

FORMAT, VERSION = "nas-latency-table", 1


def write_table(path: Path, *, profile: dict[str, Any], hardware: dict[str, Any], space: str | None,
                resolution: int | None, entries: dict[str, LatencyStats], calibrations: list[dict[str, Any]],
                params: dict[str, int] | None = None, build: dict[str, Any] | None = None) -> Path:
    doc = {
        "format": FORMAT, "version": VERSION, "profile": profile, "fingerprint": hardware["fingerprint"],
        "hardware": hardware, "space": space, "resolution": resolution, "build": build or {},
        "calibrations": calibrations,
        "entries": {k: [round(s.median_ms, 6), round(s.p10_ms, 6), round(s.p90_ms, 6), s.runs,
                        (params or {}).get(k)] for k, s in sorted(entries.items())},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, separators=(",", ":")) + "\n")
    return path


def read_table(path: Path) -> dict[str, Any]:
    """The file's document with ``entries`` as ``key -> median_ms`` and ``params`` as ``key -> weights``;
    raises ``LatencyError`` if malformed."""
    try:
        doc = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise LatencyError(f"{path}: cannot read latency table: {exc}") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise LatencyError(f"{path}: not a latency table (format must be {FORMAT!r})")
    if doc.get("version") != VERSION:
        raise LatencyError(f"{path}: unsupported latency table version {doc.get('version')!r}")
    try:
        doc["params"] = {str(k): int(v[4]) for k, v in doc["entries"].items() if len(v) > 4 and v[4] is not None}
        doc["entries"] = {str(k): float(v[0]) for k, v in doc["entries"].items()}
        profile = doc["profile"]["name"]
        doc["fingerprint"] = str(doc["fingerprint"])
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise LatencyError(f"{path}: malformed latency table: {exc!r}") from None
    doc["profile_name"] = profile
    return doc
