"""Every timing on its own device, and what it timed is what the user downloads.

A NetAdapt search (whose proposals are sized with the device's lookup table, parts timed on demand) runs
through real Celery workers on PostgreSQL and Redis: a search driver, a train worker and a latency worker
for ``test-openvino-quick`` (``cpu-openvino-1t`` timed briefly: ``tests/fixtures/devices``), each in a folder
of its own. ``nas worker`` lets a process time only the devices whose latency queue it serves
(``NAS_TIMING_DEVICES``), so any timing in the driver or the train worker fails the search. Then
``nas best --deployable`` downloads the OpenVINO IR the search wrote with its provenance, and OpenVINO runs
it with the trained PyTorch network's top-1.

Redis DB 1 is this module's own: flushed before and after, nothing else.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from .api_support import fresh_pg_database
from .test_artifacts_distributed import Deployment, _auth, _spec, _token, start_deployment

REDIS_URL = "redis://127.0.0.1:6379/1"
DEVICE = "test-openvino-quick"
WAIT = 1500.0


def _redis():  # type: ignore[no-untyped-def]
    import redis

    return redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3)


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    try:
        _redis().flushdb()
    except Exception as exc:
        pytest.skip(f"Redis not reachable at {REDIS_URL}: {exc}")
    root = tmp_path_factory.mktemp("device-timing")
    workers = {"driver": ["-Q", "search"], "train": ["-Q", "train"], "latency": ["--device", DEVICE]}
    with fresh_pg_database("nas_dev") as url:
        try:
            yield from start_deployment(root, url, REDIS_URL, workers, "dev")
        finally:
            _redis().flushdb()
            from nas.storage import engine_for

            engine_for(url).dispose()


@pytest.mark.timeout(WAIT + 300)
def test_netadapt_through_celery_times_only_on_the_latency_worker_and_deploys_what_it_timed(
        deployment: Deployment) -> None:
    d = deployment
    owner = _token(d, "owner")
    # A cut of 0.5% of the seed's latency per step: with 2% (0.010 ms of a seed measured at 0.484 ms) no
    # layer at 64x64 was estimated to save that much on one host, no proposal was made and the step skipped.
    spec = _spec(d.machine("client") / "netadapt.yaml", name="netadapt", device=DEVICE, budget={"trials": 3},
                 latency={"mode": "measured", "resolution": 64, "target_ms": 0.01},
                 strategy={"name": "netadapt", "options": {"seed": "mobilenetv3-small-0.75", "step": 0.005,
                                                           "max_proposals": 1, "final_epochs": 1}})
    submitted = d.nas("client", "submit", str(spec), token=owner)
    assert submitted.returncode == 0, submitted.stderr
    search_id = submitted.stdout.strip().splitlines()[-1]
    watched = d.nas("client", "status", search_id, "--watch", "--interval", "2", token=owner, timeout=WAIT)
    assert watched.returncode == 0, watched.stderr + d.log("driver") + d.log("latency")

    # NetAdapt sized a proposal with table parts, which only the latency worker timed.
    import optuna

    from nas.search._study import rdb_storage

    study = optuna.load_study(study_name=f"search-{search_id}", storage=rdb_storage(d.database_url))
    kinds = [t.user_attrs["netadapt_kind"] for t in study.trials]
    assert kinds == ["seed", "adapt", "final"], d.log("driver")
    tables = {k: v for k, v in study.user_attrs.items() if k.startswith("outcome.table.")}
    assert tables and all("table" in v for v in tables.values()), tables
    assert sum(v["table"]["timed"] for v in tables.values()) > 0, "the table's missing parts were timed"
    latency_log = (d.root / "latency.log").read_text()
    assert "nas.latency.table" in latency_log and "succeeded" in latency_log
    for role in ("driver", "train"):
        log = (d.root / f"{role}.log").read_text()
        assert "may not time" not in log, f"{role} tried to time:\n{log[-3000:]}"

    # The OpenVINO IR the search wrote is what `nas best --deployable` downloads, with its provenance.
    got = d.nas("client", "best", search_id, "--deployable", "out/model.xml", "--state", "out/best.pt",
                token=owner)
    assert got.returncode == 0, got.stderr
    out = d.machine("client") / "out"
    assert (out / "model.xml").is_file() and (out / "model.bin").is_file()
    provenance = json.loads((out / "model.xml.provenance.json").read_text())
    best = httpx.get(f"{d.base_url}/searches/{search_id}", headers=_auth(owner)).json()["result"]["best"]
    assert provenance["search"] == search_id and provenance["trial"] == best["trial"]
    assert provenance["device"]["profile"] == DEVICE and provenance["format"] == "openvino"
    assert provenance["latency"]["ms"] == best["latency_ms"] and provenance["latency"]["source"] == "measured"
    assert provenance["versions"]["openvino"] != "absent"
    listing = httpx.get(f"{d.base_url}/searches/{search_id}/artifacts", headers=_auth(owner)).json()
    assert {"best.xml", "best.bin", "best.provenance.json", "best.onnx", "best.pt"} <= {a["name"] for a in
                                                                                        listing["data"]}
    _agrees_with_pytorch(out / "model.xml", out / "best.pt")


def _agrees_with_pytorch(xml: Path, state: Path) -> None:
    import openvino as ov
    import torch

    from nas.data import DatasetSpec, load_dataset
    from nas.export import load_state

    arch, model, _ = load_state(state)
    x = load_dataset(DatasetSpec(kind="digits", resolution=arch.resolution, subset=300)).val_x[:8]
    compiled = ov.Core().compile_model(str(xml), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    got = np.concatenate([compiled(image[None].numpy())[0] for image in x])
    with torch.no_grad():
        expected = model.eval()(x).numpy()
    assert (got.argmax(1) == expected.argmax(1)).all()
    assert float(np.max(np.abs(got - expected))) < 1e-3 + 1e-3 * float(np.max(np.abs(expected)))


def test_a_process_times_only_the_devices_its_role_serves(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The guard ``nas worker`` enables: a search or train worker serves no latency queue, so any timing
    raises before a measuring process starts, naming the device and what would time it."""
    from nas.errors import LatencyError
    from nas.latency import measure

    db = f"sqlite:///{tmp_path / 'nas.db'}"
    for served in ("", "cpu-torch-1t"):
        monkeypatch.setenv("NAS_TIMING_DEVICES", served)
        with pytest.raises(LatencyError, match=r"may not time on cpu-ort-1t .*nas worker --device cpu-ort-1t"):
            measure("mobilenetv3-small-0.75", "cpu-ort-1t", 32, database_url=db, use_cache=False)
