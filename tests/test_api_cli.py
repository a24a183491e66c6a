"""The CLI client and service commands as a user runs them (``nas ...`` in a subprocess) against the live
API on SQLite: output, files written, one-line errors with a non-zero exit code."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from nas.service import SearchStatus, mark_finished, mark_running, update_progress

from .api_support import REPO, SPEC, Service, seed_study, server_env

pytest_plugins = ["tests.service_fixtures"]  # database_url, redis_client, service

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

NAS = "import sys; from nas.cli import main; sys.argv[0] = 'nas'; main()"


def nas(service: Service, *args: str, token: str | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    environment = server_env(service.database_url, service.home, NAS_API_URL=service.base_url,
                             NAS_API_TOKEN=token or "", COLUMNS="200", **env)
    return subprocess.run([sys.executable, "-c", NAS, *args], cwd=REPO, env=environment, capture_output=True,
                          text=True, timeout=120)


@pytest.fixture
def token(service: Service) -> str:
    result = nas(service, "token", "create", f"cli-{uuid.uuid4().hex[:10]}")
    assert result.returncode == 0, result.stderr
    assert "shown again" in result.stderr.replace("\n", " ")
    return result.stdout.strip()


def test_submit_status_searches_trials_best(service: Service, token: str, tmp_path: Path, redis_client: Any) -> None:
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(yaml.safe_dump(SPEC))
    submitted = nas(service, "submit", str(spec_file), "--name", "from-cli", "--trials", "7", token=token)
    assert submitted.returncode == 0, submitted.stderr
    sid = submitted.stdout.strip()
    service.submitted.add(sid)
    assert len(sid) == 32 and "queued" in submitted.stderr

    status = nas(service, "status", sid, token=token)
    assert status.returncode == 0 and "from-cli" in status.stdout and "queued" in status.stdout
    assert "0/7" in status.stdout
    as_json = json.loads(nas(service, "status", sid, "--json", token=token).stdout)
    assert as_json["spec"]["budget"]["trials"] == 7

    listing = nas(service, "searches", token=token)
    assert listing.returncode == 0 and sid in listing.stdout
    assert json.loads(nas(service, "searches", "--status", "running", "--json", token=token).stdout)["count"] == 0

    no_best = nas(service, "best", sid, token=token)
    assert no_best.returncode != 0 and no_best.stderr.strip() == f"error: search {sid} has no completed trial yet"

    seed_study(service.database_url, f"search-{sid}", [(0.4, 9.0), (0.8, 10.5)])
    trials = nas(service, "trials", sid, token=token)
    assert trials.returncode == 0 and "arch-0" in trials.stdout and "arch-1" in trials.stdout
    page = json.loads(nas(service, "trials", sid, "--offset", "1", "--json", token=token).stdout)
    assert page["count"] == 2 and [t["trial"] for t in page["data"]] == [1]
    out = tmp_path / "best.json"
    best = nas(service, "best", sid, "-o", str(out), token=token)
    # T = 10 ms: trial 1 has the higher reward but is over T; the result is trial 0, within T
    assert best.returncode == 0 and "trial 0" in best.stderr and "OVER T" not in best.stderr
    assert json.loads(out.read_text())["name"] == "candidate-0"


def test_an_empty_listing_says_searches_are_per_token(service: Service, token: str) -> None:
    with service.client(token) as c:
        service.submit(c)
    admin = nas(service, "token", "create", f"admin-{uuid.uuid4().hex[:10]}", "--admin").stdout.strip()
    listing = nas(service, "searches", token=admin)  # another user's search exists; the admin has none
    assert listing.returncode == 0
    assert "no searches under this token" in listing.stdout and "nas dashboard" in listing.stdout


def test_watch_until_final_and_cancel(service: Service, token: str) -> None:
    with service.client(token) as c:
        sid = service.submit(c)["id"]
    mark_running(service.database_url, sid, "w")
    update_progress(service.database_url, sid, finished=4, budget_trials=4, running=0, elapsed_seconds=3.0,
                    best_value=0.5, best_trial=2, message="finished")
    mark_finished(service.database_url, sid, SearchStatus.succeeded, result={"best": None})
    watched = nas(service, "status", sid, "--watch", "--interval", "0.2", token=token)
    assert watched.returncode == 0 and f"search {sid}: succeeded" in watched.stderr
    # Not a terminal here: a line per state instead of a progress bar, so a log shows how it went.
    assert "api-test: trials 4/4 [succeeded] best 0.5000 (trial 2)" in watched.stderr

    cancelled = nas(service, "cancel", sid, token=token)
    assert cancelled.returncode != 0
    assert cancelled.stderr.strip().splitlines() == [f"error: search {sid} is already succeeded; only queued or "
                                                     "running searches can be cancelled"]
    with service.client(token) as c:
        queued = service.submit(c)["id"]
    ok = nas(service, "cancel", queued, token=token)
    assert ok.returncode == 0 and "cancelled" in ok.stderr
    failed_watch = nas(service, "status", queued, "--watch", token=token)
    assert failed_watch.returncode == 1  # watching a search that did not succeed exits non-zero


@pytest.mark.parametrize(("args", "message"), [
    (["status", "0123456789abcdef0123456789abcdef"], "error: unknown search '0123456789abcdef0123456789abcdef'"),
    (["searches", "--status", "paused"], "error: status: Input should be"),
])
def test_api_errors_are_one_line(service: Service, token: str, args: list[str], message: str) -> None:
    result = nas(service, *args, token=token)
    assert result.returncode != 0 and len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.startswith(message)


def test_invalid_spec_and_missing_token(service: Service, token: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({**SPEC, "device": "abacus"}))
    result = nas(service, "submit", str(bad), token=token)
    assert result.returncode != 0
    assert result.stderr.startswith("error: device: unknown device profile 'abacus'")
    unauthorised = nas(service, "searches")
    assert unauthorised.returncode != 0 and unauthorised.stderr.startswith("error: missing or invalid API token")
    flag = nas(service, "searches", "--token", token)  # --token instead of NAS_API_TOKEN
    assert flag.returncode == 0


def test_unreachable_service(service: Service, token: str) -> None:
    result = nas(service, "searches", "--url", "http://127.0.0.1:9", token=token)
    assert result.returncode != 0 and result.stderr.startswith("error: cannot reach the NAS service at")


def test_token_list_revoke_and_db_commands(service: Service, tmp_path: Path) -> None:
    created = nas(service, "token", "create", "to-revoke")
    assert created.returncode == 0
    assert "to-revoke" in nas(service, "token", "list").stdout
    assert nas(service, "token", "create", "to-revoke").stderr.startswith("error: a token named 'to-revoke'")
    assert nas(service, "token", "revoke", "to-revoke").returncode == 0
    assert "to-revoke" not in nas(service, "token", "list").stdout

    fresh = f"sqlite:///{tmp_path / 'fresh.db'}"
    upgraded = nas(service, "db", "upgrade", NAS_DATABASE_URL=fresh)
    assert upgraded.returncode == 0 and "revision nas0004" in upgraded.stderr
    assert "at nas0004, newest nas0004" in nas(service, "db", "current", NAS_DATABASE_URL=fresh).stderr
