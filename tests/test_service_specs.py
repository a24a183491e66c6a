"""Every shipped spec (``search_spaces/specs/``) runs end to end through the service as a user meets it:
uvicorn, Redis, PostgreSQL and real ``nas worker`` processes, in both layouts the README describes:

- ``readme``: ``nas worker -Q search``, ``nas worker -Q train`` and ``nas worker --device D -Q latency.D``;
- ``default``: a bare ``nas worker`` (drivers and training in separate pools) and ``nas worker --device D``.

The specs keep their strategy, reward, latency mode and ``target_reference`` (T measured on the device by
the latency worker, not waited for inside the search task); only the budget and the proxy task shrink
(2 trials, 1 epoch, 200 images), and the device is a fast-timing ONNX Runtime profile, so the file takes
minutes. ``nas best`` (the CLI) must give the architecture the stored trials make best.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from optuna.trial import TrialState

from .api_support import REPO, fresh_pg_database, start_server, stop_server
from .test_distributed import Cluster, wait_for

REDIS_URL = "redis://127.0.0.1:6379/9"  # a database of its own (flushed here; 11-14 belong to other tests)
DEVICE = "e2e-cpu"
# ONNX Runtime on one thread like cpu-ort-1t, timed briefly: these tests need a latency, not a good one.
PROFILE = {"name": DEVICE, "runtime": "onnxruntime", "threads": 1, "speed_canary": False,
           "timing": {"warmup_runs": 2, "warmup_seconds": 0.0, "min_runs": 3, "max_seconds": 0.3,
                      "wait_for_quiet": 0.0},
           "table_timing": {"warmup_runs": 1, "warmup_seconds": 0.0, "min_runs": 3, "max_seconds": 0.02,
                            "wait_for_quiet": 0.0}}
SPECS = sorted((REPO / "search_spaces" / "specs").glob("*.yaml"))
LAYOUTS = {
    "readme": [("search", ["-Q", "search"]), ("train", ["-Q", "train"]),
               ("latency", ["--device", DEVICE, "-Q", f"latency.{DEVICE}"])],
    "default": [("worker", []), ("latency", ["--device", DEVICE])],
}


ARTIFACT_SPEC = "quickstart.yaml"


def reduced(path: Path, layout: str) -> dict[str, Any]:
    """The shipped spec with a small budget and proxy task; what it searches and how it judges stay."""
    doc = yaml.safe_load(path.read_text())
    doc["name"] = f"{doc['name']}-{layout}"
    doc["device"] = DEVICE
    doc["budget"] = {"trials": 2}
    doc["export_onnx"] = path.name == ARTIFACT_SPEC  # the README's example also yields its files
    doc.setdefault("seed", 0)  # the same candidates in both layouts: the second measures them from the cache
    proxy = doc["proxy"]
    proxy["dataset"] = {**proxy["dataset"], "subset": 200}
    proxy["recipe"] = {**proxy["recipe"], "epochs": 1, "batch_size": 32, "threads": 1}
    options = doc["strategy"].get("options", {})
    if doc["strategy"]["name"] == "netadapt":
        options.update(finetune_epochs=1, final_epochs=1, max_proposals=2)
    return doc


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    """One PostgreSQL database for both layouts: the second finds T and the latency-table parts the first
    measured in the latency cache, as a service does after its first searches."""
    with fresh_pg_database("nas_specs") as url:
        yield url


@pytest.fixture(scope="module", params=list(LAYOUTS))
def cluster(request: pytest.FixtureRequest, database: str, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[Cluster]:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL).flushdb()
    except Exception as exc:
        pytest.skip(f"Redis not reachable: {exc}")
    home = tmp_path_factory.mktemp(f"specs-{request.param}")
    (home / "devices").mkdir()
    (home / "devices" / f"{DEVICE}.yaml").write_text(yaml.safe_dump(PROFILE))
    env = {k: v for k, v in os.environ.items() if not k.startswith("NAS_")}
    env.update({"NAS_DATABASE_URL": database, "NAS_REDIS_URL": REDIS_URL, "NAS_HOME": str(home),
                "NAS_DEVICES_DIR": str(home / "devices"), "NAS_DEVICE_TTL": "30",
                "NAS_SEARCH_PARALLELISM": "2", "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"})
    c = Cluster(env, home, database)
    api = None
    try:
        api, c.base_url = start_server(env, home / "api.log")
        created = c.nas("token", "create", f"specs-{request.param}", timeout=120)
        assert created.returncode == 0, created.stderr
        c.token = created.stdout.strip().splitlines()[-1]
        for worker, args in LAYOUTS[request.param]:
            c.start_worker(worker, *args)
        c.layout = request.param  # type: ignore[attr-defined]
        yield c
    finally:
        for proc_name in list(c.procs):
            c.kill(proc_name)
        if api is not None:
            stop_server(api)
        redis.Redis.from_url(REDIS_URL).flushdb()


def expected_best(study: Any) -> Any:
    """The search's definition of best, recomputed from the stored trials: the best-ranked trial (reward;
    accuracy then latency in a Pareto search) within T, by the final measurement's verdict where the
    search re-measured it, else by its latency against the budget; with none within T, the best-ranked
    (the fastest in a Pareto search)."""
    done = [t for t in study.trials if t.state is TrialState.COMPLETE]
    pareto = study.user_attrs["spec"]["reward"]["kind"] == "pareto"
    ranked = sorted(done, key=(lambda t: (-t.user_attrs["accuracy"], t.user_attrs["latency_ms"], t.number)) if pareto
                    else (lambda t: (-t.user_attrs["reward"], t.number)))
    verdicts = (study.user_attrs.get("final_check") or {}).get("verdicts", {})

    def within(t: Any) -> bool:
        key = f"{t.user_attrs['arch_hash']}@{t.user_attrs['architecture']['resolution']}"
        if key in verdicts:
            return bool(verdicts[key]["within"])
        return bool(t.user_attrs["latency_ms"] <= study.user_attrs["budget_ms"])

    chosen = next((t for t in ranked if within(t)), None)
    if chosen is not None:
        return chosen
    return min(done, key=lambda t: t.user_attrs["latency_ms"]) if pareto else ranked[0]


@pytest.mark.timeout(1800)
def test_every_shipped_spec_runs_through_the_service_and_nas_best_is_the_stored_best(
        cluster: Cluster, tmp_path: Path) -> None:
    assert len(SPECS) >= 4, SPECS
    submitted: dict[str, tuple[Path, dict[str, Any]]] = {}
    for path in SPECS:
        doc = reduced(path, cluster.layout)  # type: ignore[attr-defined]
        spec_file = tmp_path / path.name
        spec_file.write_text(yaml.safe_dump(doc))
        out = cluster.nas("submit", str(spec_file), timeout=120)
        assert out.returncode == 0, out.stderr
        submitted[out.stdout.strip().splitlines()[-1]] = (path, doc)

    def status(search_id: str) -> dict[str, Any]:
        got = cluster.nas("status", search_id, "--json", timeout=120)
        assert got.returncode == 0, got.stderr
        return dict(json.loads(got.stdout))

    def ended(search_id: str) -> bool:
        """Polled over HTTP: a CLI process per search and poll took a CPU from the workers doing the searches."""
        got = httpx.get(f"{cluster.base_url}/searches/{search_id}",
                        headers={"Authorization": f"Bearer {cluster.token}"}, timeout=30)
        assert got.status_code == 200, got.text
        return got.json()["status"] in ("succeeded", "failed", "cancelled")

    logs = lambda: "\n".join(f"--- {p.name}\n{p.read_text()[-2500:]}" for p in cluster.home.glob("*.log"))  # noqa: E731
    wait_for(lambda: all(ended(search_id) for search_id in submitted), 1700, "every spec's search to end")
    final = {search_id: status(search_id) for search_id in submitted}  # what `nas status --json` tells the user
    for search_id, (path, _doc) in submitted.items():
        s = final[search_id]
        assert s["status"] == "succeeded", f"{path.name}: {s['status']}: {s['error']}\n{logs()}"
        study = cluster.study(search_id)
        shipped = yaml.safe_load(path.read_text())
        stored = study.user_attrs["spec"]
        assert stored["strategy"]["name"] == shipped["strategy"]["name"]
        assert stored["reward"]["kind"] == shipped["reward"]["kind"]
        assert stored["latency"]["mode"] == shipped["latency"]["mode"]
        reference = study.user_attrs["target_reference"]
        assert reference["name"] == shipped["latency"]["target_reference"] and reference["source"] == "measured"
        assert study.user_attrs["target_ms"] == reference["ms"] > 0, "T is the reference's latency on the device"
        evaluated = [t for t in study.trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
        assert evaluated, f"{path.name}: no trial was evaluated"
        for t in evaluated:
            assert t.user_attrs["latency_source"] == shipped["latency"]["mode"]
            assert t.user_attrs["strategy"] == shipped["strategy"]["name"]
        best_file = tmp_path / f"{search_id}.json"
        got = cluster.nas("best", search_id, "-o", str(best_file), timeout=120)
        assert got.returncode == 0, got.stderr
        top = expected_best(study)
        assert json.loads(best_file.read_text()) == top.user_attrs["architecture"], path.name
        assert s["result"]["best"]["trial"] == top.number
        if path.name == ARTIFACT_SPEC:
            _downloads_run(cluster, search_id, tmp_path)


def _downloads_run(cluster: Cluster, search_id: str, tmp_path: Path) -> None:
    """The best network's files, written by whichever worker trained it, come through the API."""
    import numpy as np
    import onnxruntime as ort

    from nas.export import load_state

    onnx_file, state_file = tmp_path / f"{search_id}.onnx", tmp_path / f"{search_id}.pt"
    got = cluster.nas("best", search_id, "-o", str(tmp_path / "b.json"), "--onnx", str(onnx_file),
                      "--state", str(state_file), timeout=120)
    assert got.returncode == 0, got.stderr
    arch, model, _provenance = load_state(state_file)
    x = np.random.default_rng(0).standard_normal((1, 3, arch.resolution, arch.resolution), dtype=np.float32)
    session = ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    assert session.run(None, {"input": x})[0].shape == (1, arch.num_classes)
