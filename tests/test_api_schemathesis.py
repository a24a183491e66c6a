"""Schemathesis against the OpenAPI document the running server serves: for every operation, generated
requests (valid and invalid, with and without the token) never get a 5xx, and every answer's status code
and body are ones the document declares.

Runs ``schemathesis run`` (its documented command line) over live uvicorn (the ``service`` fixture, on
SQLite and on PostgreSQL), seeded so that a failure reproduces. Half the generated search ids are real
ones (one of them with trials), so the per-search operations are exercised past their 404. Searches the
run creates are queued on Redis DB 14 like the other API tests' and removed with them.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from .api_support import Service, seed_study

pytest_plugins = ["tests.service_fixtures"]  # database_url, redis_client, service

CHECKS = "not_a_server_error,status_code_conformance,response_schema_conformance"
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")


def config_with_real_ids(path: Path, ids: list[str]) -> Path:
    values = ", ".join(f'"{i}"' for i in ids)
    path.write_text(f"[dictionaries.searches]\nvalues = [{values}]\n\n"
                    '[parameters]\n"path.search_id" = { dictionary = "searches", probability = 0.5 }\n')
    return path


def test_no_server_errors_and_every_answer_matches_the_schema(service: Service, tmp_path: Path) -> None:
    token = service.token()
    with service.client(token) as client:
        with_trials = service.submit(client, name="fuzzed-with-trials")
        seed_study(service.database_url, with_trials["study_name"], [(0.6, 9.0), (0.7, 11.0)])
        queued = service.submit(client, name="fuzzed-queued")
        config = config_with_real_ids(tmp_path / "schemathesis.toml", [with_trials["id"], queued["id"]])
        try:
            run = subprocess.run(
                [str(SCHEMATHESIS), "--config-file", str(config), "run", f"{service.base_url}/openapi.json",
                 "-H", f"Authorization: Bearer {token}", "--checks", CHECKS, "--max-examples", "12",
                 "--seed", "1", "--workers", "1", "--request-timeout", "30", "--generation-database", "none",
                 "--no-color"],
                cwd=tmp_path, capture_output=True, text=True, timeout=300)
        finally:  # whatever the run created is cleaned off the queue after the session
            listed = client.get("/searches", params={"limit": 500}).json()
            service.submitted.update(s["id"] for s in listed["data"])
            for kind in ("supernet", "training"):
                listed = client.get(f"/{kind}s", params={"limit": 500}).json()
                service.train_tasks.update(f"{kind}-{s['id']}" for s in listed["data"])
    report = run.stdout[-6000:] + run.stderr[-2000:]
    assert run.returncode == 0, report
    assert "22 selected / 22 total" in run.stdout, report  # every operation of the document was tested
    assert "Server error" not in run.stdout, report
