"""The distributed service for real: PostgreSQL, Redis, Celery worker processes and the API on uvicorn.

A small search submitted over HTTP with the CLI is finished by the workers; the best architecture the CLI
fetches is the one in the database; a train worker killed with SIGKILL mid-trial loses nothing and
counts nothing twice. Every process started here is stopped here; servers bind to 127.0.0.1 only.
"""

from __future__ import annotations

import json
import os
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

REDIS_URL = "redis://127.0.0.1:6379/13"  # a database of its own: the test flushes it
VISIBILITY = 15  # seconds before Redis redelivers a message whose worker died without acking


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
    env = {k: v for k, v in os.environ.items() if not k.startswith("NAS_")}
    env.update({"NAS_DATABASE_URL": url, "NAS_REDIS_URL": REDIS_URL, "NAS_HOME": str(home),
                "NAS_DEVICE_TTL": "30", "NAS_TASK_VISIBILITY_TIMEOUT": str(VISIBILITY),
                "NAS_SEARCH_PARALLELISM": "2", "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"})
    c = Cluster(env, home, url)
    api = None
    try:
        api, c.base_url = start_server(env, home / "api.log")
        created = c.nas("token", "create", "e2e", timeout=120)
        assert created.returncode == 0, created.stderr
        c.token = created.stdout.strip().splitlines()[-1]
        c.start_worker("search", "-Q", "search")
        c.start_worker("latency", "--device", "cpu-ort-1t")
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
        "name": name, "space": "mobilenetv3-small", "device": "cpu-ort-1t",
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


def test_a_search_submitted_over_http_is_finished_by_workers_and_its_best_matches_the_db(cluster, tmp_path) -> None:  # type: ignore[no-untyped-def]
    cluster.start_worker("train-a", "-Q", "train")
    search_id = submit(cluster, write_spec(tmp_path / "s.yaml", "e2e", trials=3, epochs=1))
    watched = cluster.nas("status", search_id, "--watch", "--interval", "0.5", timeout=600)
    assert watched.returncode == 0, watched.stderr + (cluster.home / "search.log").read_text()[-3000:]
    got = cluster.nas("best", search_id, "-o", str(tmp_path / "best.json"))
    assert got.returncode == 0, got.stderr
    best = json.loads((tmp_path / "best.json").read_text())
    study = cluster.study(search_id)
    top = max((t for t in study.trials if t.state is TrialState.COMPLETE), key=lambda t: t.value)
    assert best == top.user_attrs["architecture"]
    assert_every_trial_once(cluster, search_id, 3)
    status = json.loads(cluster.nas("status", search_id, "--json").stdout)
    assert status["status"] == "succeeded" and status["progress"]["finished"] == 3
    import httpx

    devices = httpx.get(f"{cluster.base_url}/devices", headers={"Authorization": f"Bearer {cluster.token}"}).json()
    assert "cpu-ort-1t" in json.dumps(devices), "the latency worker registered its device"


def test_a_train_worker_killed_mid_trial_loses_nothing_and_counts_nothing_twice(cluster, tmp_path) -> None:  # type: ignore[no-untyped-def]
    for name in [n for n in cluster.procs if n.startswith("train")]:
        cluster.kill(name)
    cluster.start_worker("train-b", "-Q", "train")
    search_id = submit(cluster, write_spec(tmp_path / "k.yaml", "e2e-kill", trials=3, epochs=4))

    def training_started() -> bool:
        try:
            study = cluster.study(search_id)
        except KeyError:
            return False
        return any(t.state is TrialState.RUNNING and "architecture" in t.user_attrs
                   and "outcome.train" not in t.user_attrs for t in study.trials)

    wait_for(training_started, 300, "a trial in training")
    time.sleep(3)  # inside the training loop by now (start-up of a trial takes about a second)
    cluster.kill("train-b")
    cluster.start_worker("train-c", "-Q", "train")
    watched = cluster.nas("status", search_id, "--watch", "--interval", "0.5", timeout=900)
    assert watched.returncode == 0, watched.stderr + (cluster.home / "search.log").read_text()[-3000:]
    assert_every_trial_once(cluster, search_id, 3)
    log = (cluster.home / "train-c.log").read_text()
    assert "nas.train" in log


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
