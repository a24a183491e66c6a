"""The driver finds repeated architectures in an index kept current as results come in, not by rescanning
every trial of the study for each proposal (which made a search quadratic in its trials)."""

from __future__ import annotations

from pathlib import Path

import pytest

from nas.search import _driver, run_search

from .search_helpers import tiny_spec


def test_duplicates_are_found_from_an_index_built_once_not_a_scan_per_proposal(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = f"sqlite:///{tmp_path / 'nas.db'}"
    spec = tiny_spec(name="index", budget={"trials": 4})
    first = run_search(spec.model_copy(update={"budget": spec.budget.model_copy(update={"trials": 1})}),
                       storage_url=db, run_dir=tmp_path)
    for _ in range(3):  # three proposals of the architecture trial 0 already evaluated
        first.study.enqueue_trial(first.study.trials[0].params)
    scans: list[int] = []
    real = _driver.completed_by_hash

    def counted(study):  # type: ignore[no-untyped-def]
        scans.append(len(study.trials))
        return real(study)

    monkeypatch.setattr(_driver, "completed_by_hash", counted)
    ctx = run_search(spec, storage_url=db, run_dir=tmp_path)
    assert [t.user_attrs.get("duplicate_of") is not None for t in ctx.study.trials] == [False, True, True, True]
    assert len({t.user_attrs["arch_hash"] for t in ctx.study.trials}) == 1
    assert len(scans) == 1, f"the study was scanned for duplicates {len(scans)} times"
