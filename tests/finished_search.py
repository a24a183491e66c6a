"""A finished multi-objective search in a service database of its own: the fixture the dashboard and report
tests look at (a real tiny NSGA-II search: 4 trials, 1 epoch on 300 digits, latency measured in ONNX Runtime).

Used as a plugin (``pytest_plugins = ["tests.finished_search"]``) so the search runs once per session.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from .search_helpers import tiny_spec

TRIALS = 4
TARGET_REFERENCE = "mobilenetv3-small-0.75"


@dataclass(frozen=True)
class FinishedSearch:
    database_url: str
    search_id: str
    study_name: str
    run_dir: Path
    trials: int
    result: dict  # type: ignore[type-arg]  # what write_outputs returned


def build_finished_search(folder: Path) -> FinishedSearch:
    """Submit, run and finish a search the way a service worker does, all on one SQLite file."""
    from nas.search import run_search, write_outputs
    from nas.service import SearchStatus, create_search, mark_finished, mark_running

    url = f"sqlite:///{folder / 'nas.db'}"
    spec = tiny_spec(name="pareto-report", reward={"kind": "pareto"},
                     strategy={"name": "nsga2", "options": {"population_size": 2}}, budget={"trials": TRIALS},
                     latency={"mode": "measured", "resolution": 64, "target_ms": None,
                              "target_reference": TARGET_REFERENCE})
    record = create_search(url, spec, owner_id=None)
    mark_running(url, record.id, worker="test")
    run_dir = folder / "searches" / record.study_name
    ctx = run_search(spec, study_name=record.study_name, storage_url=url, run_dir=run_dir)
    result = write_outputs(ctx)
    mark_finished(url, record.id, SearchStatus.succeeded, result=result)
    return FinishedSearch(url, record.id, record.study_name, run_dir, TRIALS, result)


@pytest.fixture(scope="session")
def finished_search(tmp_path_factory: pytest.TempPathFactory) -> FinishedSearch:
    return build_finished_search(tmp_path_factory.mktemp("finished-search"))
