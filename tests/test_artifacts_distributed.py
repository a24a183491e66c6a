"""The best network's files reach the user whichever machine trained it: a search run by real Celery workers
(a search driver, a latency worker and two train workers) and served by the API on uvicorn, on PostgreSQL and
on SQLite, with real Redis.

Every process is its own "machine": it runs in a folder of its own with ``NAS_HOME=home``, a relative path,
so each one's local files land in its own folder and nobody sees another's (before the artifacts were stored
in the database, the driver found no checkpoint where the train worker had written it and the result
silently had no best.onnx). The client downloads best.onnx and best.pt with ``nas best --onnx --state``;
the ONNX runs in ONNX Runtime and agrees with the state file's network rebuilt in PyTorch.

Redis DB 12 is this module's own: it is flushed before and after, and nothing else.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from .api_support import REPO, free_port, fresh_pg_database
from .latency_support import QUICK_DEVICE, TEST_DEVICES
from .skips import NOT_APPLICABLE

REDIS_URL = "redis://127.0.0.1:6379/12"
WAIT = 900.0


@dataclass
class Deployment:
    root: Path
    database_url: str
    env: dict[str, str]
    base_url: str = ""
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def machine(self, role: str) -> Path:
        """The role's working folder; its ``home`` subfolder is its NAS_HOME."""
        folder = self.root / role
        folder.mkdir(exist_ok=True)
        return folder

    def start(self, role: str, *args: str) -> subprocess.Popen[bytes]:
        log = (self.root / f"{role}.log").open("wb")
        proc = subprocess.Popen([sys.executable, *args], cwd=self.machine(role), env=self.env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
        self.procs[role] = proc
        return proc

    def nas(self, role: str, *args: str, token: str = "", timeout: float = 300) -> subprocess.CompletedProcess[str]:
        env = {**self.env, "NAS_API_URL": self.base_url, "NAS_API_TOKEN": token}
        return subprocess.run([sys.executable, "-m", "nas", *args], cwd=self.machine(role), env=env,
                              capture_output=True, text=True, timeout=timeout)

    def log(self, role: str) -> str:
        return (self.root / f"{role}.log").read_text(errors="replace")[-4000:]

    def stop_all(self) -> None:
        for role, proc in list(self.procs.items()):
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(20)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait(10)
            del self.procs[role]


def _redis() -> Any:
    import redis

    return redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3)


@pytest.fixture(scope="module", params=["postgresql", "sqlite"])
def deployment(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    try:
        _redis().flushdb()
    except Exception as exc:
        pytest.skip(f"Redis not reachable at {REDIS_URL}: {exc}")
    root = tmp_path_factory.mktemp(f"machines-{request.param}")
    with ExitStack() as databases:  # a PostgreSQL database is dropped after everything below has stopped
        if request.param == "sqlite":
            url = f"sqlite:///{root / 'shared-db' / 'nas.db'}"
            (root / "shared-db").mkdir()
        else:
            url = databases.enter_context(fresh_pg_database("nas_art"))
        yield from _deployment(root, url)


def _deployment(root: Path, url: str) -> Iterator[Deployment]:
    workers = {"driver": ["-Q", "search"], "latency": ["--device", QUICK_DEVICE], "train-a": ["-Q", "train"],
               "train-b": ["-Q", "train"]}
    try:
        yield from start_deployment(root, url, REDIS_URL, workers, "art")
    finally:
        _redis().flushdb()


def start_deployment(root: Path, url: str, redis_url: str, workers: dict[str, list[str]], tag: str
                     ) -> Iterator[Deployment]:
    """The API and one ``nas worker`` per role (its arguments), each in its own folder; stopped after."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NAS_")}
    env.update({"NAS_DATABASE_URL": url, "NAS_REDIS_URL": redis_url, "NAS_HOME": "home",  # relative: per machine
                "NAS_DEVICE_TTL": "60", "NAS_SEARCH_PARALLELISM": "2", "NAS_DEVICES_DIR": str(TEST_DEVICES),
                "PYTHONPATH": os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])]),
                "OMP_NUM_THREADS": "1"})
    d = Deployment(root, url, env)
    try:
        port = free_port()
        api = d.start("api", "-m", "uvicorn", "api.main:app", "--host", "127.0.0.1", "--port", str(port),
                      "--log-level", "warning")
        d.base_url = f"http://127.0.0.1:{port}"
        _wait(lambda: _answers(d.base_url) or _exited(api, d, "api"), 120, "the API to answer")
        for role, args in workers.items():
            d.start(role, "-m", "nas", "worker", *args, "--name", f"{role}@{tag}")
        yield d
    finally:
        d.stop_all()
        from nas.storage import engine_for

        engine_for(url).dispose()


def _answers(base: str) -> bool:
    try:
        return httpx.get(f"{base}/health", timeout=2).status_code in (200, 503)
    except httpx.HTTPError:
        return False


def _exited(proc: subprocess.Popen[bytes], d: Deployment, role: str) -> bool:
    if proc.poll() is not None:
        raise RuntimeError(f"{role} exited with {proc.returncode}:\n{d.log(role)}")
    return False


def _wait(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def _token(d: Deployment, name: str) -> str:
    created = d.nas("api", "token", "create", name)
    assert created.returncode == 0, created.stderr
    return created.stdout.strip().splitlines()[-1]


def _spec(path: Path, **changes: Any) -> Path:
    doc: dict[str, Any] = {"name": "artifacts", "space": "mobilenetv3-small", "device": QUICK_DEVICE,
           "latency": {"mode": "measured", "resolution": 64, "target_ms": 0.5},
           "strategy": {"name": "random"}, "budget": {"trials": 2}, "export_onnx": True,
           "proxy": {"dataset": {"kind": "digits", "resolution": 32, "subset": 300},
                     "recipe": {"epochs": 1, "resolution": 32, "batch_size": 32, "threads": 1},
                     "pruner": {"name": "none"}}}
    path.write_text(yaml.safe_dump({**doc, **changes}))
    return path


def test_the_best_networks_files_trained_on_other_machines_download_and_run(deployment: Deployment) -> None:
    d = deployment
    owner, stranger = _token(d, "owner"), _token(d, "stranger")
    client = d.machine("client")
    submitted = d.nas("client", "submit", str(_spec(client / "spec.yaml")), token=owner)
    assert submitted.returncode == 0, submitted.stderr
    search_id = submitted.stdout.strip().splitlines()[-1]
    watched = d.nas("client", "status", search_id, "--watch", "--interval", "1", token=owner, timeout=WAIT)
    assert watched.returncode == 0, watched.stderr + d.log("driver") + d.log("train-a") + d.log("train-b")

    got = d.nas("client", "best", search_id, "--onnx", "out/best.onnx", "--state", "out/best.pt", token=owner)
    assert got.returncode == 0, got.stderr
    assert got.stdout == "", "with only --onnx/--state nothing else is printed"
    onnx_file, state_file = client / "out" / "best.onnx", client / "out" / "best.pt"

    # The state file rebuilds the network; ONNX Runtime runs the ONNX file and agrees with it.
    import numpy as np
    import onnxruntime as ort
    import torch

    from nas.export import load_state

    arch, model, provenance = load_state(state_file)
    search = httpx.get(f"{d.base_url}/searches/{search_id}", headers=_auth(owner)).json()
    assert provenance["trial"] == search["result"]["best"]["trial"]
    assert arch.model_dump(mode="json") == httpx.get(f"{d.base_url}/searches/{search_id}/best",
                                                     headers=_auth(owner)).json()
    x = torch.randn(2, 3, arch.resolution, arch.resolution, generator=torch.Generator().manual_seed(1))
    session = ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    logits = session.run(None, {"input": x.numpy()})[0]
    with torch.no_grad():
        expected = model.eval()(x).numpy()
    assert logits.shape == (2, 10)
    # float32 rounding differs between the runtimes in proportion to the logits' size (check_onnx's rule)
    assert float(np.max(np.abs(logits - expected))) < 1e-4 + 1e-3 * float(np.max(np.abs(expected)))

    # The result names them, the listing describes them, and only the owner may read them.
    assert search["result"]["artifacts"] == {"state": "best.pt", "onnx": "best.onnx", "deployable": "best.onnx",
                                             "provenance": "best.provenance.json"}  # cpu-ort-1t times best.onnx
    listing = httpx.get(f"{d.base_url}/searches/{search_id}/artifacts", headers=_auth(owner)).json()
    by_name = {a["name"]: a for a in listing["data"]}
    assert {"best.onnx", "best.pt"} <= set(by_name) and listing["count"] == len(listing["data"])
    for name, path in (("best.onnx", onnx_file), ("best.pt", state_file)):
        assert by_name[name]["size"] == path.stat().st_size
        assert by_name[name]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
        assert by_name[name]["url"] == f"/searches/{search_id}/artifacts/{name}"
    best_checkpoint = f"checkpoints/trial-{search['result']['best']['trial']:05d}.pt"
    assert best_checkpoint in by_name, "the best trial's weights are kept"
    for headers, code in ((_auth(stranger), 404), ({}, 401)):
        for path in ("artifacts", "artifacts/best.onnx"):
            assert httpx.get(f"{d.base_url}/searches/{search_id}/{path}", headers=headers).status_code == code
    missing = httpx.get(f"{d.base_url}/searches/{search_id}/artifacts/nothing.bin", headers=_auth(owner))
    assert missing.status_code == 404 and "no artifact 'nothing.bin'" in missing.json()["detail"]

    # The train workers trained (not the driver), and left no weights on their own disks.
    assert any("accuracy" in (d.root / f"{role}.log").read_text() for role in ("train-a", "train-b"))
    for role in ("train-a", "train-b", "api"):
        assert not list(d.machine(role).rglob("*.pt")) and not list(d.machine(role).rglob("*.onnx")), role


def test_netadapt_proposals_start_from_weights_another_worker_trained(deployment: Deployment) -> None:
    """NetAdapt fine-tunes each proposal from the current network's checkpoint: two train workers, each on its
    own disk, take the proposals, so at least one starts from weights the other one (or the seed's) wrote."""
    if deployment.database_url.startswith("sqlite"):
        pytest.skip(f"{NOT_APPLICABLE} one backend is enough for this one; the store is covered on both")
    d = deployment
    owner = _token(d, f"netadapt-{uuid.uuid4().hex[:6]}")
    spec = _spec(d.machine("client") / "netadapt.yaml", name="netadapt", budget={"trials": 4},
                 latency={"mode": "measured", "resolution": 64, "target_ms": 0.01},
                 strategy={"name": "netadapt", "options": {"seed": "mobilenetv3-small-0.75", "step": 0.02,
                                                           "max_proposals": 2, "final_epochs": 1}})
    before = _trained(d)
    submitted = d.nas("client", "submit", str(spec), token=owner)
    assert submitted.returncode == 0, submitted.stderr
    search_id = submitted.stdout.strip().splitlines()[-1]
    watched = d.nas("client", "status", search_id, "--watch", "--interval", "1", token=owner, timeout=WAIT)
    assert watched.returncode == 0, watched.stderr + d.log("driver") + d.log("train-a") + d.log("train-b")
    trials = httpx.get(f"{d.base_url}/searches/{search_id}/trials", headers=_auth(owner)).json()["data"]
    assert [t["state"] for t in trials] == ["COMPLETE"] * 4
    import optuna

    from nas.search._study import rdb_storage

    study = optuna.load_study(study_name=f"search-{search_id}", storage=rdb_storage(d.database_url))
    adapted = [t for t in study.trials if t.user_attrs["netadapt_kind"] != "seed"]
    assert adapted and all(t.user_attrs["inherited"] > 0 for t in adapted), "proposals inherit weights"
    trained = {role: count - before[role] for role, count in _trained(d).items()}
    assert sum(trained.values()) == 4 and all(trained.values()), f"both workers trained: {trained}"
    got = d.nas("client", "best", search_id, "--onnx", "netadapt.onnx", token=owner)
    assert got.returncode == 0, got.stderr
    assert (d.machine("client") / "netadapt.onnx").stat().st_size > 1000


def test_a_running_searchs_best_files_are_a_clear_404(deployment: Deployment) -> None:
    d = deployment
    owner = _token(d, f"early-{uuid.uuid4().hex[:6]}")
    spec = yaml.safe_load(_spec(d.machine("client") / "early.yaml").read_text())
    spec["device"] = "cpu-torch-1t"  # no latency worker serves it: the search waits, running, for ever
    queued = httpx.post(f"{d.base_url}/searches", json=spec, headers=_auth(owner))
    assert queued.status_code == 202, queued.text
    search_id = queued.json()["id"]
    try:
        got = d.nas("client", "best", search_id, "--onnx", "early.onnx", token=owner)
        assert got.returncode != 0
        assert got.stderr.startswith(f"error: search {search_id} has no artifact 'best.onnx'; best.pt and best.onnx "
                                     "are written when the search succeeds, it is ")
        assert not (d.machine("client") / "early.onnx").exists()
    finally:
        httpx.post(f"{d.base_url}/searches/{search_id}/cancel", headers=_auth(owner))


def _trained(d: Deployment) -> dict[str, int]:
    """Trainings each train worker logged so far."""
    return {role: (d.root / f"{role}.log").read_text().count(": accuracy ") for role in ("train-a", "train-b")}


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
