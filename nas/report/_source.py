"""Which study a report is about: a service search id, an Optuna study name, or a ``nas run`` output folder.

Reading only: a report never creates tables or database files, so pointing it at the wrong database
gives a one-line "not found" instead of an empty schema left behind.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from nas.errors import NASError, NotFoundError


@dataclass(frozen=True)
class StudySource:
    database_url: str
    study_name: str
    search_id: str | None = None
    status: str | None = None


def resolve_source(identifier: str, database_url: str) -> StudySource:
    """A folder holding ``result.json`` names its study; otherwise the id is looked up as a service search,
    then as a study name, in the database."""
    folder = Path(identifier)
    tables = _tables(database_url)
    if folder.is_dir():
        result = folder / "result.json"
        if not result.is_file():
            raise NASError(f"{folder}: not a search output folder (no result.json)")
        study = str(json.loads(result.read_text())["study"])
        _require_study(database_url, tables, study)
        return StudySource(database_url, study)
    if "nas_searches" in tables:
        from nas.service import get_search

        try:
            record = get_search(database_url, identifier)
        except NotFoundError:
            pass
        else:
            _require_study(database_url, tables, record.study_name,
                           f"search {identifier} has no trials yet (status {record.status.value})")
            return StudySource(database_url, record.study_name, record.id, record.status.value)
    _require_study(database_url, tables, identifier, kind="search or study")
    return StudySource(database_url, identifier)


def _tables(url: str) -> set[str]:
    from sqlalchemy import inspect
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database and not Path(parsed.database).is_file():
        raise NotFoundError("database", parsed.database)
    from nas.storage import engine_for

    return set(inspect(engine_for(url)).get_table_names())


def _require_study(url: str, tables: set[str], name: str, missing: str | None = None,
                   kind: str = "study") -> None:
    if "studies" in tables:
        import optuna

        from nas.search._study import rdb_storage

        if name in optuna.get_all_study_names(storage=rdb_storage(url)):
            return
    if missing:
        raise NASError(missing)
    raise NotFoundError(kind, name)
