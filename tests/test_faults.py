"""Faults, for real, on servers of our own: the latency worker and the API killed with SIGKILL, Redis and
PostgreSQL restarted, each mid-search; and ``nas doctor`` finding and re-sending work that was lost.

In every case the search reaches a final state, every trial is stored exactly once (by trial number, and
by architecture: a trial interrupted by the fault is re-evaluated once, under a new number, and the
interrupted one does not count), and the best architecture fetched afterwards is the one recomputed from
the stored trials. Redis and PostgreSQL are private to this module (free ports, a temporary data
directory, 127.0.0.1 only), so restarting them disturbs nobody else's tests.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from optuna.trial import TrialState

from .api_support import REPO, free_port
from .search_helpers import best_within_target
from .test_distributed import Cluster, assert_every_trial_once, in_flight, wait_for, write_spec

VISIBILITY = 6  # broker visibility timeout, and how long a driver waits for an outcome before re-sending
REDIS_DB = 11
PG_BIN = sorted(Path("/usr/lib/postgresql").glob("*/bin"))
DEVICE = "faults-cpu"
# cpu-ort-1t timed for a fixed ~2 s, without waiting for the machine to go quiet: these tests need a
# latency task long enough to be killed in, not a good measurement.
PROFILE = {"name": DEVICE, "runtime": "onnxruntime", "threads": 1,
           "timing": {"warmup_runs": 2, "warmup_seconds": 0.0, "min_runs": 3, "max_runs": 100_000,
                      "max_seconds": 2.0, "min_windows": 100_000, "wait_for_quiet": 0.0}}


def _as_postgres(cmd: list[str]) -> list[str]:
    """initdb and pg_ctl refuse to run as root."""
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@dataclass
class Servers:
    """A Redis and a PostgreSQL cluster nobody else uses, restartable at will."""

    root: Path
    redis_port: int
    pg_port: int
    redis: subprocess.Popen[bytes] | None = None

    @property
    def database_url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.pg_port}/nas"

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/{REDIS_DB}"

    def start_redis(self) -> None:
        import redis

        log = (self.root / "redis.log").open("ab")
        self.redis = subprocess.Popen(["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1",
                                       "--save", "", "--appendonly", "no", "--dir", str(self.root)],
                                      stdout=log, stderr=subprocess.STDOUT)
        wait_for(lambda: _answers(lambda: redis.Redis(port=self.redis_port).ping()), 20, "redis to answer")

    def stop_redis(self) -> None:
        if self.redis is not None:
            self.redis.terminate()
            self.redis.wait(20)
            self.redis = None

    def restart_redis(self) -> None:
        """Without persistence: every queued and unacked message is gone, as after a crash."""
        self.stop_redis()
        self.start_redis()

    def pg_ctl(self, *args: str) -> None:
        cmd = [str(PG_BIN[-1] / "pg_ctl"), "-D", str(self.root / "pgdata"), "-w", "-t", "60", *args]
        subprocess.run(_as_postgres(cmd), check=True, capture_output=True, timeout=90)

    def start_pg(self) -> None:
        options = f"-p {self.pg_port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self.pg_ctl("-o", options, "-l", str(self.root / "pg.log"), "start")

    def restart_pg(self, down_seconds: float = 0.0, while_down: Callable[[], None] | None = None) -> None:
        """Fast shutdown (every open connection of the API and the workers is cut), a pause, a start."""
        self.pg_ctl("-m", "fast", "stop")
        t0 = time.monotonic()
        if while_down is not None:
            while_down()
        time.sleep(max(0.0, down_seconds - (time.monotonic() - t0)))
        self.start_pg()


def _answers(call: Any) -> bool:
    try:
        call()
        return True
    except Exception:
        return False


@pytest.fixture(scope="module")
def servers() -> Iterator[Servers]:
    if not PG_BIN or shutil.which("redis-server") is None:
        pytest.skip("needs PostgreSQL's server binaries and redis-server")
    root = Path(tempfile.mkdtemp(prefix="nas-faults-"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    s = Servers(root, free_port(), free_port())
    try:
        subprocess.run(_as_postgres([str(PG_BIN[-1] / "initdb"), "-D", str(root / "pgdata"), "-U", "postgres",
                                     "--auth=trust", "--no-sync"]), check=True, capture_output=True, timeout=120)
        s.start_pg()
        import psycopg

        with psycopg.connect(f"postgresql://postgres@127.0.0.1:{s.pg_port}/postgres", autocommit=True) as conn:
            conn.execute("CREATE DATABASE nas")
        s.start_redis()
        yield s
    finally:
        s.stop_redis()
        if (root / "pgdata" / "postmaster.pid").exists():
            s.pg_ctl("-m", "immediate", "stop")
        shutil.rmtree(root, ignore_errors=True)


@dataclass
class FaultCluster(Cluster):
    api: subprocess.Popen[bytes] | None = None
    log_starts: dict[str, int] = field(default_factory=dict)

    def start_api(self, port: int) -> None:
        """uvicorn on a fixed port, so a restarted API is where clients already point."""
        log = (self.home / "api.log").open("ab")
        self.api = subprocess.Popen([sys.executable, "-m", "uvicorn", "api.main:app", "--host", "127.0.0.1",
                                     "--port", str(port), "--log-level", "warning"],
                                    cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        self.base_url = f"http://127.0.0.1:{port}"
        wait_for(lambda: _answers(lambda: httpx.get(f"{self.base_url}/health", timeout=2)), 90, "the API")

    def kill_api(self) -> None:
        assert self.api is not None
        self.api.send_signal(signal.SIGKILL)
        self.api.wait(10)
        self.api = None

    def start_worker(self, name: str, *args: str, env: dict[str, str] | None = None,
                     wait: bool = True) -> subprocess.Popen[bytes]:
        """Logs are appended (a restarted worker keeps its predecessor's log); ``wait``: until it consumes."""
        log = self.home / f"{name}.log"
        self.log_starts[name] = log.stat().st_size if log.exists() else 0
        with log.open("ab") as out:
            proc = subprocess.Popen([sys.executable, "-m", "nas", "worker", "--name", f"{name}@faults", *args],
                                    cwd=REPO, env={**self.env, **(env or {})}, stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        self.procs[name] = proc
        if wait:
            self.wait_ready(name)
        return proc

    def wait_ready(self, name: str) -> None:
        proc, log = self.procs[name], self.home / f"{name}.log"
        wait_for(lambda: b" ready." in log.read_bytes()[self.log_starts[name]:] or proc.poll() is not None, 120,
                 f"worker {name}")
        assert proc.poll() is None, log.read_text()[-3000:]

    def http(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """The API over HTTP (as the CLI client does; without a process start per call)."""
        return httpx.request(method, f"{self.base_url}{path}", headers={"Authorization": f"Bearer {self.token}"},
                             timeout=30, **kwargs)

    def submit(self, spec: dict[str, Any]) -> str:
        answer = self.http("POST", "/searches", json=spec)
        assert answer.status_code == 202, answer.text
        return str(answer.json()["id"])

    def status(self, search_id: str) -> dict[str, Any]:
        answer = self.http("GET", f"/searches/{search_id}")
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    def finish(self, search_id: str) -> dict[str, Any]:
        """Wait for a final state; the search's own status is the answer."""
        log = self.home / "search.log"
        wait_for(lambda: self.status(search_id)["status"] in ("succeeded", "failed", "cancelled"), 150,
                 f"search {search_id} to end; search log:\n{log.read_text()[-3000:] if log.exists() else ''}")
        return self.status(search_id)

    def doctor(self, *args: str) -> tuple[int, dict[str, Any]]:
        got = subprocess.run([sys.executable, "-m", "nas", "doctor", "--json", *args], cwd=REPO, env=self.env,
                             capture_output=True, text=True, timeout=60)
        assert got.stdout, got.stderr
        return got.returncode, json.loads(got.stdout)


@pytest.fixture(scope="module")
def cluster(servers: Servers, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultCluster]:
    home = tmp_path_factory.mktemp("faults")
    env = {k: v for k, v in os.environ.items() if not k.startswith("NAS_")}
    (home / "devices").mkdir()
    (home / "devices" / f"{DEVICE}.yaml").write_text(yaml.safe_dump(PROFILE))
    env.update({"NAS_DEVICES_DIR": str(home / "devices"), "NAS_DATABASE_URL": servers.database_url,
                "NAS_REDIS_URL": servers.redis_url, "NAS_HOME": str(home),
                "NAS_DEVICE_TTL": "30", "NAS_TASK_VISIBILITY_TIMEOUT": str(VISIBILITY),
                "NAS_DRIVER_LEASE": str(VISIBILITY),  # a killed driver's search is taken over within seconds
                "NAS_SEARCH_PARALLELISM": "2", "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"})
    c = FaultCluster(env, home, servers.database_url)
    try:
        c.start_api(free_port())
        from nas.service import create_token

        c.token = create_token(servers.database_url, "faults")[1]
        c.start_worker("search", "-Q", "search", wait=False)
        c.start_worker("latency", "--device", DEVICE, wait=False)
        c.start_worker("latency-spare", "--device", DEVICE, wait=False)
        c.start_worker("train", "-Q", "train", wait=False)
        for name in ("search", "latency", "latency-spare", "train"):
            c.wait_ready(name)
        yield c
    finally:
        for name in list(c.procs):
            c.kill(name)
        if c.api is not None:
            c.kill_api()
        from nas.storage import engine_for

        engine_for(servers.database_url).dispose()


def assert_stored_once_and_best_unchanged(cluster: FaultCluster, search_id: str, budget: int) -> None:
    """Every trial once (by number and by architecture), and the best the API serves is the one the
    stored trials give, as recorded when the search finished."""
    assert_every_trial_once(cluster, search_id, budget)
    study = cluster.study(search_id)
    complete = [t for t in study.trials if t.state is TrialState.COMPLETE and "duplicate_of" not in t.user_attrs]
    hashes = [t.user_attrs["arch_hash"] for t in complete]
    assert len(hashes) == len(set(hashes)), "an architecture was evaluated twice"
    for t in study.trials:
        if t.user_attrs.get("interrupted") and "arch_hash" in t.user_attrs:
            assert t.user_attrs["arch_hash"] in hashes, f"interrupted trial {t.number} was not re-run"
    top = best_within_target(study, 0.5)
    best = cluster.http("GET", f"/searches/{search_id}/best")
    assert best.status_code == 200 and best.json() == top.user_attrs["architecture"]
    assert best.headers["X-NAS-Trial"] == str(top.number)
    recorded = cluster.status(search_id)["result"]["best"]
    assert (recorded["trial"], recorded["arch_hash"]) == (top.number, top.user_attrs["arch_hash"])


def spec(name: str, trials: int = 2, seed: int = 0) -> dict[str, Any]:
    """``write_spec``'s tiny search; ``seed`` picks other candidates (the latency cache knows seed 0's).
    Without the final re-measurement pass (``confirm: 0``): every fault here strikes mid-trial, and that pass
    would time the best networks again for ~2 s each after the fault is over (tests/test_final_check_service.py
    runs it through the service)."""
    with tempfile.TemporaryDirectory() as tmp:
        body = yaml.safe_load(write_spec(Path(tmp) / "spec.yaml", name, trials=trials, epochs=1).read_text())
    return {**body, "seed": seed, "device": DEVICE, "latency": {**body["latency"], "confirm": 0}}


def log_since(cluster: FaultCluster, name: str, start: int) -> str:
    return (cluster.home / f"{name}.log").read_bytes()[start:].decode(errors="replace")


def log_size(cluster: FaultCluster, name: str) -> int:
    path = cluster.home / f"{name}.log"
    return path.stat().st_size if path.exists() else 0


@pytest.mark.timeout(180)
def test_a_latency_worker_killed_mid_measurement_is_replaced_and_nothing_is_counted_twice(
        cluster: FaultCluster) -> None:
    workers = ("latency", "latency-spare")
    starts = {name: log_size(cluster, name) for name in workers}
    search_id = cluster.submit(spec("kill-latency", trials=1, seed=101))
    task = f"nas.latency[latency-search-{search_id}"

    def measuring() -> list[str]:
        return [name for name in workers if task in log_since(cluster, name, starts[name])]

    wait_for(lambda: bool(measuring()), 120, "a latency measurement to start")
    victim = measuring()[0]
    survivor = next(name for name in workers if name != victim)
    cluster.kill(victim)
    assert cluster.finish(search_id)["status"] == "succeeded"
    assert task in log_since(cluster, survivor, starts[survivor]), "the other worker measured it again"
    assert_stored_once_and_best_unchanged(cluster, search_id, 1)


@pytest.mark.timeout(180)
def test_the_api_killed_mid_search_does_not_stop_it_and_answers_again_after_restart(
        cluster: FaultCluster) -> None:
    search_id = cluster.submit(spec("kill-api"))
    wait_for(lambda: in_flight(cluster, search_id), 120, "a trial in flight")
    port = int(cluster.base_url.rsplit(":", 1)[1])
    cluster.kill_api()
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{cluster.base_url}/health", timeout=2)
    cluster.start_api(port)
    assert cluster.status(search_id)["status"] in ("running", "succeeded")
    assert cluster.finish(search_id)["status"] == "succeeded"
    assert_stored_once_and_best_unchanged(cluster, search_id, 2)


@pytest.mark.timeout(180)
def test_redis_restarted_mid_search_loses_queued_tasks_and_the_driver_sends_them_again(
        cluster: FaultCluster, servers: Servers) -> None:
    cluster.kill("train")  # so the trials' training messages are sure to be waiting in Redis
    start = log_size(cluster, "search")
    search_id = cluster.submit(spec("restart-redis"))
    wait_for(lambda: in_flight(cluster, search_id), 120, "a trial in flight")
    servers.restart_redis()
    cluster.start_worker("train", "-Q", "train")
    assert cluster.finish(search_id)["status"] == "succeeded"
    assert f"outcome {VISIBILITY} s after sending; sending again" in log_since(cluster, "search", start)
    assert_stored_once_and_best_unchanged(cluster, search_id, 2)


@pytest.mark.timeout(180)
def test_postgresql_down_mid_search_is_survived_by_a_resumed_driver(
        cluster: FaultCluster, servers: Servers) -> None:
    search_id = cluster.submit(spec("restart-pg"))
    wait_for(lambda: in_flight(cluster, search_id), 120, "a trial in flight")
    answers: list[httpx.Response] = []
    servers.restart_pg(down_seconds=3,  # the driver polls every second: it meets the outage
                       while_down=lambda: answers.append(cluster.http("GET", f"/searches/{search_id}")))
    assert answers[0].status_code == 503, answers[0].text  # retryable, not a 500
    assert "database is unavailable" in answers[0].json()["detail"]
    assert answers[0].headers["Retry-After"]
    status = cluster.finish(search_id)
    assert status["status"] == "succeeded", status.get("error")
    assert status["attempts"] >= 2, "the driver was resumed after the outage"
    assert_stored_once_and_best_unchanged(cluster, search_id, 2)


@pytest.mark.timeout(240)
def test_doctor_finds_lost_tasks_and_a_dead_driver_and_fix_lets_the_search_finish(
        cluster: FaultCluster, servers: Servers) -> None:
    import redis

    # A driver that would wait 600 s before re-sending by itself, and no training worker: the training
    # messages wait in Redis, and the restart loses them for good.
    cluster.kill("search")
    cluster.kill("train")
    cluster.start_worker("search-patient", "-Q", "search", env={"NAS_TASK_VISIBILITY_TIMEOUT": "600"}, wait=False)
    search_id = cluster.submit(spec("doctor"))
    wait_for(lambda: in_flight(cluster, search_id), 120, "a trial in flight")
    servers.restart_redis()
    time.sleep(1)

    code, report = cluster.doctor("--orphan-after", "0.5")
    orphans = [p for p in report["problems"] if p["kind"] == "orphaned-trial"]
    assert code == 1 and orphans and {p["search_id"] for p in report["problems"]} == {search_id}
    assert not any(p["fixed"] for p in report["problems"])

    code, report = cluster.doctor("--orphan-after", "0.5", "--fix")
    assert code == 0, report
    assert all("re-sent its train" in p["action"] for p in report["problems"])
    messages = redis.Redis.from_url(servers.redis_url).lrange("train", 0, -1)
    queued = [json.loads(raw)["headers"]["id"] for raw in messages]
    assert sorted(queued) == sorted(f"train-search-{search_id}-{_trial_id(cluster, search_id, p['trial_number'])}"
                                    for p in orphans), "the doctor put the lost training tasks back"

    # Now the driver dies too. Its message went with the old Redis: nothing would ever resume the search.
    cluster.kill("search-patient")
    cluster.start_worker("search", "-Q", "search", wait=False)
    cluster.start_worker("train", "-Q", "train")
    cluster.wait_ready("search")
    code, report = cluster.doctor("--stuck-after", "1", "--fix")
    assert code == 0, report
    stuck = [p for p in report["problems"] if p["kind"] == "stuck-search"]
    assert [p["search_id"] for p in stuck] == [search_id] and stuck[0]["fixed"] and report["search_workers"] == 1
    assert cluster.finish(search_id)["status"] == "succeeded"
    assert_stored_once_and_best_unchanged(cluster, search_id, 2)
    code, report = cluster.doctor()
    assert code == 0 and report["problems"] == [], report


def _trial_id(cluster: FaultCluster, search_id: str, number: int) -> int:
    return next(t._trial_id for t in cluster.study(search_id).trials if t.number == number)
