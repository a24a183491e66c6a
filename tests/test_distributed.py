"""The distributed service for real: PostgreSQL, Redis, Celery worker processes and the API on uvicorn.

A small search submitted over HTTP with the CLI is finished by the workers; the best architecture the CLI
fetches is the one in the database; a train worker killed with SIGKILL mid-trial loses nothing and
counts nothing twice. Every process started here is stopped here; servers bind to 127.0.0.1 only.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from .api_support import PG_SERVER, REPO, pg_unreachable, start_server, stop_server
from .latency_support import QUICK_DEVICE, TEST_DEVICES
from .search_helpers import best_within_target

REDIS_URL = "redis://127.0.0.1:6379/13"  # a database of its own: the test flushes it
VISIBILITY = 15  # seconds before Redis redelivers a message whose worker died without acking
LEASE = 8  # seconds a driver's lease lasts without renewal (renewed every 2 s)
DEVICE_WAIT = 25  # seconds a search waits for a live worker on its device before it fails
NOBODY = "nobody-cpu"  # a device profile no worker serves
GRACE = 3  # seconds a stopped worker's running tasks get before they are cancelled and requeued


@dataclass
class Cluster:
    env: dict[str, str]
    home: Path
    database_url: str
    base_url: str = ""
    token: str = ""
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start_worker(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        log = (self.home / f"{name}.log").open("wb")
        proc = subprocess.Popen([sys.executable, "-m", "nas", "worker", "--name", f"{name}@test", *args],
                                cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.procs[name] = proc
        return proc

    def kill(self, name: str) -> None:
        proc = self.procs.pop(name)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)

    def nas(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        env = {**self.env, "NAS_API_URL": self.base_url, "NAS_API_TOKEN": self.token}
        return subprocess.run([sys.executable, "-m", "nas", *args], cwd=REPO, env=env, capture_output=True,
                              text=True, timeout=timeout)

    def study(self, search_id: str) -> optuna.Study:
        from nas.search._study import rdb_storage

        return optuna.load_study(study_name=f"search-{search_id}", storage=rdb_storage(self.database_url))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    reason = pg_unreachable()
    if reason:
        pytest.skip(reason)
    import psycopg
    import redis
    from sqlalchemy.engine import make_url

    try:
        redis.Redis.from_url(REDIS_URL).flushdb()
    except Exception as exc:
        pytest.skip(f"Redis not reachable: {exc}")
    name = f"nas_e2e_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_SERVER, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_url(PG_SERVER).set(drivername="postgresql+psycopg", database=name).render_as_string(False)
    home = tmp_path_factory.mktemp("cluster")
    shutil.copytree(TEST_DEVICES, home / "devices")  # QUICK_DEVICE: timed briefly, not waiting for quiet
    (home / "devices" / f"{NOBODY}.yaml").write_text(yaml.safe_dump({"name": NOBODY, "runtime": "onnxruntime"}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("NAS_")}
    env.update({"NAS_DATABASE_URL": url, "NAS_REDIS_URL": REDIS_URL, "NAS_HOME": str(home),
                "NAS_DEVICE_TTL": "30", "NAS_TASK_VISIBILITY_TIMEOUT": str(VISIBILITY),
                "NAS_DRIVER_LEASE": str(LEASE), "NAS_DEVICE_WAIT": str(DEVICE_WAIT),
                "NAS_WORKER_SHUTDOWN_GRACE": str(GRACE),
                "NAS_DEVICES_DIR": str(home / "devices"),
                "NAS_SEARCH_PARALLELISM": "2", "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"})
    c = Cluster(env, home, url)
    api = None
    try:
        api, c.base_url = start_server(env, home / "api.log")
        created = c.nas("token", "create", "e2e", timeout=120)
        assert created.returncode == 0, created.stderr
        c.token = created.stdout.strip().splitlines()[-1]
        c.start_worker("search", "-Q", "search")
        c.start_worker("latency", "--device", QUICK_DEVICE)
        yield c
    finally:
        for proc_name in list(c.procs):
            c.kill(proc_name)
        if api is not None:
            stop_server(api)
        redis.Redis.from_url(REDIS_URL).flushdb()
        from nas.storage import engine_for

        engine_for(url).dispose()
        with psycopg.connect(PG_SERVER, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def write_spec(path: Path, name: str, trials: int, epochs: int, **extra: Any) -> Path:
    doc: dict[str, Any] = {
        "name": name, "space": "mobilenetv3-small", "device": QUICK_DEVICE,
        "latency": {"mode": "measured", "resolution": 64, "target_ms": 0.5},
        "strategy": {"name": "random"}, "budget": {"trials": trials}, "export_onnx": False,
        "proxy": {"dataset": {"kind": "digits", "resolution": 32, "subset": 400},
                  "recipe": {"epochs": epochs, "resolution": 32, "batch_size": 32, "threads": 1},
                  "pruner": {"name": "none"}}}
    path.write_text(yaml.safe_dump({**doc, **extra}))
    return path


def wait_for(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def submit(cluster: Cluster, spec: Path) -> str:
    out = cluster.nas("submit", str(spec), timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().splitlines()[-1]


def assert_every_trial_once(cluster: Cluster, search_id: str, budget: int) -> None:
    study = cluster.study(search_id)
    complete = [t for t in study.trials if t.state is TrialState.COMPLETE]
    counted = [t for t in study.trials if not t.user_attrs.get("interrupted")]
    assert len(complete) == budget and len(counted) == budget
    assert len({t.number for t in study.trials}) == len(study.trials)
    for t in complete:
        assert "outcome.train" in t.user_attrs and "outcome.latency" in t.user_attrs
        assert t.user_attrs["accuracy"] == t.user_attrs["outcome.train"]["accuracy"]


def stop_training(cluster: Cluster) -> None:
    for name in [n for n in cluster.procs if n.startswith("train")]:
        cluster.kill(name)


def status_of(cluster: Cluster, search_id: str) -> dict[str, Any]:
    import httpx

    got = httpx.get(f"{cluster.base_url}/searches/{search_id}", headers={"Authorization": f"Bearer {cluster.token}"},
                    timeout=30)
    assert got.status_code == 200, got.text
    return dict(got.json())


def in_flight(cluster: Cluster, search_id: str) -> bool:
    """A trial whose tasks were sent and whose outcome has not all come back."""
    try:
        study = cluster.study(search_id)
    except KeyError:
        return False
    return any(t.state is TrialState.RUNNING and "task" in t.user_attrs and "outcome.train" not in t.user_attrs
               for t in study.trials)


def worker_logs(cluster: Cluster, prefix: str) -> str:
    return "".join(p.read_text(errors="replace") for p in cluster.home.glob(f"{prefix}*.log"))


@dataclass
class WaitedSearch:
    """A search submitted while no train worker ran: its status while it waited, then its end."""

    search_id: str
    first: dict[str, Any]
    later: dict[str, Any]
    watched: subprocess.CompletedProcess[str]


@pytest.fixture(scope="module")
def waited_search(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> WaitedSearch:
    """One 3-trial search for two tests: submitted over HTTP with the CLI while training is stopped (its status
    names the phase, 12 s apart), then finished by a train worker started afterwards, which takes the tasks
    already waiting in Redis."""
    stop_training(cluster)
    spec = write_spec(tmp_path_factory.mktemp("waited") / "s.yaml", "e2e", trials=3, epochs=1)
    search_id = submit(cluster, spec)
    wait_for(lambda: status_of(cluster, search_id)["progress"]["message"] == "training 2 candidate(s)", 180,
             "the status to say the search waits for training")
    first = status_of(cluster, search_id)["progress"]
    time.sleep(12)  # the driver reports at least every 10 s while it waits
    later = status_of(cluster, search_id)["progress"]
    cluster.start_worker("train-a", "-Q", "train")
    watched = cluster.nas("status", search_id, "--watch", "--interval", "0.5", timeout=600)
    return WaitedSearch(search_id, first, later, watched)


def test_a_waiting_search_names_its_phase_and_its_elapsed_time_stays_live(waited_search: WaitedSearch) -> None:
    first, later = waited_search.first, waited_search.later
    assert later["finished"] == first["finished"] == 0 and later["running"] == 2
    assert later["elapsed_seconds"] >= first["elapsed_seconds"] + 5, (first, later)
    assert waited_search.watched.returncode == 0, waited_search.watched.stderr


def test_a_search_submitted_over_http_is_finished_by_workers_and_its_best_matches_the_db(
        cluster: Cluster, waited_search: WaitedSearch, tmp_path: Path) -> None:
    search_id, watched = waited_search.search_id, waited_search.watched
    assert watched.returncode == 0, watched.stderr + (cluster.home / "search.log").read_text()[-3000:]
    got = cluster.nas("best", search_id, "-o", str(tmp_path / "best.json"))
    assert got.returncode == 0, got.stderr
    best = json.loads((tmp_path / "best.json").read_text())
    study = cluster.study(search_id)
    assert best == best_within_target(study, 0.5).user_attrs["architecture"]
    assert_every_trial_once(cluster, search_id, 3)
    status = json.loads(cluster.nas("status", search_id, "--json").stdout)
    assert status["status"] == "succeeded" and status["progress"]["finished"] == 3
    import httpx

    devices = httpx.get(f"{cluster.base_url}/devices", headers={"Authorization": f"Bearer {cluster.token}"}).json()
    assert QUICK_DEVICE in json.dumps(devices), "the latency worker registered its device"


def test_a_train_worker_killed_mid_trial_loses_nothing_and_counts_nothing_twice(cluster, tmp_path) -> None:  # type: ignore[no-untyped-def]
    stop_training(cluster)
    cluster.start_worker("train-b", "-Q", "train")
    search_id = submit(cluster, write_spec(tmp_path / "k.yaml", "e2e-kill", trials=2, epochs=4))
    wait_for(lambda: in_flight(cluster, search_id) and f"nas.train[train-search-{search_id}" in worker_logs(
        cluster, "train-b"), 300, "train-b to take a trial's training")
    time.sleep(3)  # inside the training loop by now (start-up of a trial takes about a second)
    cluster.kill("train-b")
    cluster.start_worker("train-c", "-Q", "train")
    watched = cluster.nas("status", search_id, "--watch", "--interval", "0.5", timeout=900)
    assert watched.returncode == 0, watched.stderr + (cluster.home / "search.log").read_text()[-3000:]
    assert_every_trial_once(cluster, search_id, 2)
    log = (cluster.home / "train-c.log").read_text()
    assert f"nas.train[train-search-{search_id}" in log, "the killed worker's training was done again elsewhere"


def test_a_pruned_pareto_search_sends_latency_first_then_training_that_knows_it(cluster, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Pareto pruning judges a candidate against the finished trials at least as fast, so through the
    workers its latency is measured first and the training task is sent with it."""
    cluster.start_worker("train-p", "-Q", "train")
    proxy = {"dataset": {"kind": "digits", "resolution": 32, "subset": 400},
             "recipe": {"epochs": 2, "resolution": 32, "batch_size": 32, "threads": 1},
             "pruner": {"name": "median", "startup_trials": 1}}
    search_id = submit(cluster, write_spec(tmp_path / "p.yaml", "e2e-pareto", trials=3, epochs=2,
                                           reward={"kind": "pareto"}, proxy=proxy))
    watched = cluster.nas("status", search_id, "--watch", "--interval", "0.5", timeout=600)
    assert watched.returncode == 0, watched.stderr + (cluster.home / "search.log").read_text()[-3000:]
    study = cluster.study(search_id)
    assert len(study.trials) == 3
    for t in study.trials:
        assert t.state in (TrialState.COMPLETE, TrialState.PRUNED), t.state
        measured = t.user_attrs["outcome.latency"]["ms"]
        assert t.user_attrs["latency_ms"] == measured
        assert t.user_attrs["task"]["train"]["latency_ms"] == measured, "training was sent knowing the latency"
        assert t.user_attrs["outcome.train"]["epochs_run"] in (1, 2)
    assert study.user_attrs.get("spec", {}).get("reward", {}).get("kind") == "pareto"


# -- what a user meets: cancel, a dead device, one driver per search ------------------------------------------

def test_cancelling_a_running_search_ends_its_trials_and_stops_their_training(cluster, tmp_path) -> None:  # type: ignore[no-untyped-def]
    if not any(n.startswith("train") for n in cluster.procs):
        cluster.start_worker("train-c2", "-Q", "train")
    search_id = submit(cluster, write_spec(tmp_path / "c.yaml", "e2e-cancel", trials=2, epochs=300))
    wait_for(lambda: in_flight(cluster, search_id) and "nas.train[train-search-" + search_id in worker_logs(
        cluster, "train"), 180, "a trial in training")
    time.sleep(3)  # inside its epochs by now
    cancelled = cluster.nas("cancel", search_id)
    assert cancelled.returncode == 0, cancelled.stderr
    assert f"search {search_id}: cancelled" in cancelled.stderr and "running trial(s) stopped" in cancelled.stderr
    study = cluster.study(search_id)
    assert study.trials and all(t.state is TrialState.FAIL for t in study.trials), [t.state for t in study.trials]
    assert all(t.user_attrs["error"] == "cancelled" for t in study.trials)
    trials = cluster.nas("trials", search_id, "--json")
    assert {t["state"] for t in json.loads(trials.stdout)["data"]} == {"FAIL"}
    # The training task sees its trial ended at its next epoch and stops, recording nothing (within 180 s on a
    # host busy with the other test worker; its 300 epochs would take far longer).
    wait_for(lambda: "'abandoned'" in worker_logs(cluster, "train"), 180, "the training task to stop")
    assert all("outcome.train" not in t.user_attrs for t in cluster.study(search_id).trials)
    again = cluster.nas("cancel", search_id)
    assert again.returncode == 0 and f"search {search_id} is already cancelled" in again.stderr, again.stderr


def test_a_search_on_a_device_nobody_serves_is_warned_reported_and_fails_with_the_reason(cluster, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import httpx

    spec = write_spec(tmp_path / "d.yaml", "e2e-dead-device", trials=2, epochs=1, device=NOBODY)
    out = cluster.nas("submit", str(spec), timeout=120)
    assert out.returncode == 0, out.stderr
    assert f"warning: no live worker serves latency.{NOBODY}" in out.stderr
    search_id = out.stdout.strip().splitlines()[-1]
    body = yaml.safe_load(spec.read_text())
    answer = httpx.post(f"{cluster.base_url}/searches", json=body, headers={"Authorization": f"Bearer {cluster.token}"},
                        timeout=30)
    assert answer.status_code == 202 and any(f"latency.{NOBODY}" in w for w in answer.json()["warnings"])
    waiting = f"waiting for a worker on latency.{NOBODY}"
    wait_for(lambda: waiting in status_of(cluster, search_id)["progress"]["message"], 120,
             "the status to say what the search waits for")
    doctor = cluster.nas("doctor", "--json", timeout=120)
    report = json.loads(doctor.stdout)
    dead = [p for p in report["problems"] if p["kind"] == "dead-device" and p["search_id"] == search_id]
    assert doctor.returncode == 1 and dead, report
    assert f"latency.{NOBODY}" in dead[0]["reason"] and "nas worker --device" in dead[0]["reason"]
    wait_for(lambda: status_of(cluster, search_id)["status"] == "failed", DEVICE_WAIT + 90, "the search to fail")
    final = status_of(cluster, search_id)
    assert f"no worker served latency.{NOBODY}" in final["error"] and "NAS_DEVICE_WAIT" in final["error"]
    assert all(t.state is TrialState.FAIL for t in cluster.study(search_id).trials)
    # The second search (there for the HTTP answer's warning) would fail the same way after its own wait
    # (the search worker drives one search at a time); cancelled instead, it frees the driver for the next test.
    second = answer.json()["id"]
    cancelled = httpx.post(f"{cluster.base_url}/searches/{second}/cancel",
                           headers={"Authorization": f"Bearer {cluster.token}"}, timeout=30)
    assert cancelled.status_code in (200, 409), cancelled.text  # 409: it had already failed
    wait_for(lambda: status_of(cluster, second)["status"] in ("cancelled", "failed"), 60, "the second search to end")


def test_one_driver_per_search_a_second_delivery_and_doctor_fix_leave_the_live_driver_alone(cluster, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import redis

    from workers.dispatch import RUN_SEARCH
    from workers.publish import envelope

    stop_training(cluster)  # so the search stays running while its message is delivered again
    cluster.start_worker("search-2", "-Q", "search")
    search_id = submit(cluster, write_spec(tmp_path / "l.yaml", "e2e-lease", trials=2, epochs=1))
    wait_for(lambda: in_flight(cluster, search_id), 180, "the first driver to send its trials")
    first = status_of(cluster, search_id)
    assert first["attempts"] == 1
    # The same message again (as Redis redelivers it after the visibility timeout), then the doctor's resend.
    redis.Redis.from_url(REDIS_URL).lpush("search", envelope(f"search-{search_id}", RUN_SEARCH, [search_id], "search"))
    doctor = cluster.nas("doctor", "--stuck-after", "0", "--fix", "--json", timeout=120)
    report = json.loads(doctor.stdout)
    assert any(p["kind"] == "stuck-search" and p["search_id"] == search_id and "re-sent" in p["action"]
               for p in report["problems"]), report
    wait_for(lambda: worker_logs(cluster, "search").count(f"nas.search.run[search-{search_id}] retry") >= 2, 120,
             "both extra deliveries to be declined")
    assert status_of(cluster, search_id)["attempts"] == 1, "nobody claimed the live driver's search"
    cluster.start_worker("train-l", "-Q", "train")
    watched = cluster.nas("status", search_id, "--watch", "--interval", "0.5", timeout=600)
    assert watched.returncode == 0, watched.stderr + worker_logs(cluster, "search")[-3000:]
    final = status_of(cluster, search_id)
    assert final["attempts"] == 1 and final["worker"] == first["worker"]
    assert not any(t.user_attrs.get("interrupted") for t in cluster.study(search_id).trials)
    assert_every_trial_once(cluster, search_id, 2)


def test_a_stopped_worker_lets_go_of_its_running_search_within_its_grace_and_another_finishes_it(
        cluster, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """SIGTERM to a default `nas worker` (search and train in one command) mid-search: it is gone, with every
    process it started, within NAS_WORKER_SHUTDOWN_GRACE and a little, its tasks cancelled and their
    messages back on Redis, and workers started afterwards finish the search, each trial once.
    Celery's warm shutdown would have waited for the whole search."""
    for name in [n for n in cluster.procs if n.startswith(("search", "train"))]:
        cluster.kill(name)
    both = cluster.start_worker("both", "-Q", "search,train")
    search_id = submit(cluster, write_spec(tmp_path / "t.yaml", "e2e-stop", trials=3, epochs=30))
    wait_for(lambda: in_flight(cluster, search_id) and f"nas.train[train-search-{search_id}" in worker_logs(
        cluster, "both"), 300, "the worker to drive the search and train a trial")
    time.sleep(2)
    stopped_at = time.monotonic()
    both.send_signal(signal.SIGTERM)
    both.wait(GRACE + 25)
    took = time.monotonic() - stopped_at
    cluster.procs.pop("both")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # pool processes go with their parent
        try:
            os.killpg(both.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.2)
    else:
        raise AssertionError("processes of the stopped worker are still running")
    assert took < GRACE + 20, f"stopping took {took:.1f} s"
    assert status_of(cluster, search_id)["status"] == "running"
    cluster.start_worker("search", "-Q", "search")
    cluster.start_worker("train-after-stop", "-Q", "train")
    watched = cluster.nas("status", search_id, "--watch", "--interval", "0.5", timeout=900)
    assert watched.returncode == 0, watched.stderr + worker_logs(cluster, "search")[-3000:]
    assert_every_trial_once(cluster, search_id, 3)
    assert status_of(cluster, search_id)["attempts"] >= 2, "a second driver finished it"
