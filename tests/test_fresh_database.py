"""Processes that first use a fresh database at the same moment all get a working schema."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.api_support import REPO, fresh_pg_database

# Each process imports what it needs, says so, waits for the go file, then does what a search or a latency
# worker does first: open Optuna's storage (which creates Optuna's tables) and the latency cache (its own).
FIRST_USE = """
import os, sys, time
from nas.latency._cache import ensure_tables
from nas.search._study import rdb_storage
print("ready", flush=True)
while not os.path.exists(sys.argv[2]):
    time.sleep(0.001)
rdb_storage(sys.argv[1])
ensure_tables(sys.argv[1])
print("ok")
"""


def _first_use_at_once(url: str, go: Path, processes: int = 3) -> list[subprocess.CompletedProcess[str]]:
    running = [subprocess.Popen([sys.executable, "-c", FIRST_USE, url, str(go)], cwd=REPO, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(processes)]
    for p in running:
        assert p.stdout is not None and p.stdout.readline().strip() == "ready", p.stderr and p.stderr.read()
    go.touch()
    return [subprocess.CompletedProcess(p.args, p.wait(timeout=120), *p.communicate()) for p in running]


def _assert_all_succeeded(results: list[subprocess.CompletedProcess[str]]) -> None:
    failures = [next((line for line in reversed(r.stderr.splitlines()) if "Error" in line), r.stderr[-300:])
                for r in results if r.returncode != 0]
    assert not failures, f"{len(failures)} of {len(results)} processes failed: {failures[0]}"
    assert all(r.stdout.strip() == "ok" for r in results)


def test_searches_starting_together_on_a_fresh_postgresql_database_all_start(tmp_path: Path) -> None:
    """Without a lock all but one failed: "duplicate key value violates unique constraint
    pg_type_typname_nsp_index" while each created Optuna's enum types and tables."""
    with fresh_pg_database("nas_fresh") as url:
        _assert_all_succeeded(_first_use_at_once(url, tmp_path / "go"))


def test_searches_starting_together_on_a_fresh_sqlite_file_all_start(tmp_path: Path) -> None:
    _assert_all_succeeded(_first_use_at_once(f"sqlite:///{tmp_path / 'fresh.db'}", tmp_path / "go"))


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:"])
def test_an_in_memory_database_needs_no_lock(url: str) -> None:
    from nas.storage import schema_lock

    with schema_lock(url):
        pass
