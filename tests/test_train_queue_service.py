"""The ``train`` queue's leased jobs, for real: the API on uvicorn, Redis, PostgreSQL and Celery worker
processes.

Supernets (``POST /supernets``): a tiny supernet (seconds) submitted with the CLI is trained on the ``train``
queue; its worker killed with SIGKILL after the first stored checkpoint is replaced and the training resumes
from that checkpoint and ends with exactly the weights of an uninterrupted run; a search names the supernet
in ``proxy.supernet`` and its trials are evaluated one-shot with those weights. Bad specs are refused at
submission naming the field; a running supernet is cancelled within a step.

Trainings (``POST /trainings``, ``nas train --submit``): the same resume after SIGKILL, to the weights of a
local ``nas train``; a network inherits the service supernet's weights and distils from its largest subnet,
exported in OpenVINO's format; a search's best is trained by naming the search; bad requests are 422s
naming the field; a training whose message Redis lost is found by ``nas doctor`` and re-sent by ``--fix``.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import torch
import yaml
from optuna.trial import TrialState

from nas.service.artifacts import list_artifacts
from nas.service.supernets import CHECKPOINT, artifact_scope, get_supernet
from nas.supernet import load_supernet

from .api_support import REPO, fresh_pg_database, start_server, stop_server
from .latency_support import QUICK_PROFILE_YAML
from .test_distributed import Cluster, wait_for, write_spec

REDIS_URL = "redis://127.0.0.1:6379/4"  # this module's own database: flushed before and after
LEASE = 6  # seconds a dead trainer's lease lasts; also the broker's redelivery delay
DEVICE = "quick-supernets"  # ONNX Runtime timed briefly: the search test needs latencies, not good ones

TINY: dict[str, Any] = {
    "space": "mobilenetv3-small", "dataset": {"kind": "digits", "resolution": 32, "subset": 500},
    "recipe": {"epochs": 4, "batch_size": 40, "lr": 0.05, "resolution": 32, "bn_recalibration": 96, "threads": 1,
               "seed": 5},
    "sandwich": {"random": 1}, "largest_epochs": 1}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    import redis

    broker = redis.Redis.from_url(REDIS_URL)
    try:
        broker.flushdb()
    except Exception as exc:
        pytest.skip(f"Redis not reachable: {exc}")
    home = tmp_path_factory.mktemp("train-queue")
    (home / "devices").mkdir()
    (home / "devices" / f"{DEVICE}.yaml").write_text(QUICK_PROFILE_YAML)
    with fresh_pg_database("nas_train_queue") as url:
        env = {k: v for k, v in os.environ.items() if not k.startswith("NAS_")}
        env.update({"NAS_DATABASE_URL": url, "NAS_REDIS_URL": REDIS_URL, "NAS_HOME": str(home),
                    "NAS_TASK_VISIBILITY_TIMEOUT": str(LEASE), "NAS_DRIVER_LEASE": str(LEASE),
                    "NAS_DEVICE_TTL": "30", "NAS_DEVICES_DIR": str(home / "devices"),
                    "NAS_SEARCH_PARALLELISM": "2", "PYTHONPATH": str(REPO),
                    "OMP_NUM_THREADS": "1"})
        c = Cluster(env, home, url)
        api = None
        try:
            api, c.base_url = start_server(env, home / "api.log")
            from nas.service import create_token

            c.token = create_token(url, "supernets")[1]
            yield c
        finally:
            for name in list(c.procs):
                c.kill(name)
            if api is not None:
                stop_server(api)
            broker.flushdb()


def http(cluster: Cluster, method: str, path: str, token: str | None = None, **kwargs: Any) -> httpx.Response:
    return httpx.request(method, f"{cluster.base_url}{path}", timeout=30, **kwargs,
                         headers={"Authorization": f"Bearer {token or cluster.token}"})


def spec_file(tmp_path: Path, name: str, **changes: Any) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump({**TINY, "name": name, **changes}))
    return path


def checkpointed_epochs(cluster: Cluster, supernet_id: str) -> int:
    if not any(a.name == CHECKPOINT for a in list_artifacts(cluster.database_url, artifact_scope(supernet_id))):
        return 0
    return int(get_supernet(cluster.database_url, supernet_id).progress.get("epoch") or 0)


def test_a_killed_train_worker_is_replaced_and_the_supernet_resumes_to_the_uninterrupted_weights(
        cluster: Cluster, tmp_path: Path) -> None:
    cluster.start_worker("train-1", "-Q", "train")
    out = cluster.nas("supernet", "submit", str(spec_file(tmp_path, "tiny-svc")), timeout=120)
    assert out.returncode == 0, out.stderr
    supernet_id = out.stdout.strip().splitlines()[-1]
    wait_for(lambda: checkpointed_epochs(cluster, supernet_id) >= 1, 300, "the first stored checkpoint")
    running = get_supernet(cluster.database_url, supernet_id)
    assert running.status.value == "running" and running.progress["epoch"] < TINY["recipe"]["epochs"]
    cluster.kill("train-1")  # SIGKILL, no chance to ack or clean up
    cluster.start_worker("train-2", "-Q", "train")
    watched = cluster.nas("supernet", "status", "tiny-svc", "--watch", "--interval", "0.5", timeout=600)
    assert watched.returncode == 0, watched.stderr + (cluster.home / "train-2.log").read_text()[-3000:]

    done = json.loads(cluster.nas("supernet", "status", "tiny-svc", "--json").stdout)
    assert done["status"] == "succeeded" and done["attempts"] == 2
    assert done["summary"]["resumed_from_step"] > 0, "the second worker resumed from the stored checkpoint"
    assert done["progress"]["fraction"] == 1.0 and done["summary"]["history"][-1]["epoch"] == 4
    got = cluster.nas("supernet", "download", "tiny-svc", "-o", str(tmp_path / "svc.pt"))
    assert got.returncode == 0, got.stderr
    served = load_supernet(str(tmp_path / "svc.pt")).net.state_dict()
    # The reference trains in a fresh process, as each worker attempt did: the first supernet built in a
    # process draws extra numbers from torch's generator (bn_settings builds a block once), so an
    # in-process reference started after other supernets were built would begin from other weights.
    whole = cluster.nas("supernet", "train", str(spec_file(tmp_path, "tiny-svc")), "--quiet", timeout=600)
    assert whole.returncode == 0, whole.stderr
    reference = load_supernet(str(cluster.home / "supernets" / "tiny-svc" / "supernet.pt")).net.state_dict()
    assert served.keys() == reference.keys()
    assert all(torch.equal(served[k], reference[k]) for k in reference), "resumed weights differ"


def test_a_search_names_the_service_supernet_and_its_trials_are_evaluated_one_shot(
        cluster: Cluster, tmp_path: Path) -> None:
    if get_supernet(cluster.database_url, "tiny-svc").status.value != "succeeded":
        pytest.skip("needs the supernet of the test above")
    for name, args in (("search", ("-Q", "search")), ("latency", ("--device", DEVICE)),
                       ("train-3", ("-Q", "train"))):
        if name not in cluster.procs:
            cluster.start_worker(name, *args)
    spec = write_spec(tmp_path / "s.yaml", "oneshot-svc", trials=2, epochs=1)
    doc = yaml.safe_load(spec.read_text())
    doc["device"] = DEVICE
    doc["proxy"].update(supernet="tiny-svc", recipe={**doc["proxy"]["recipe"], "bn_recalibration": 96})
    spec.write_text(yaml.safe_dump(doc))
    out = cluster.nas("submit", str(spec), timeout=120)
    assert out.returncode == 0, out.stderr
    assert "proxy.supernet" not in out.stderr, "no warning: the service has this supernet"
    search_id = out.stdout.strip().splitlines()[-1]
    watched = cluster.nas("status", search_id, "--watch", "--interval", "0.5", timeout=600)
    assert watched.returncode == 0, watched.stderr + (cluster.home / "search.log").read_text()[-3000:]
    complete = [t for t in cluster.study(search_id).trials if t.state is TrialState.COMPLETE]
    assert len(complete) == 2
    assert all(t.user_attrs["epochs_run"] == 0 for t in complete), "evaluated one-shot, not trained"


def test_bad_specs_are_refused_at_submission_naming_the_field(cluster: Cluster) -> None:
    def refused(document: Any) -> tuple[int, str]:
        answer = http(cluster, "POST", "/supernets", json=document)
        detail = answer.json()["detail"]
        return answer.status_code, ".".join(str(p) for p in detail[0]["loc"]) if isinstance(detail, list) else detail

    assert refused({**TINY, "name": "x", "space": "shufflenet"}) == (422, "body.space")
    assert refused({**TINY, "name": "x", "space": "/etc/passwd"}) == (422, "body.space")
    assert refused({**TINY, "name": "x", "recipe": {**TINY["recipe"], "epochs": 0}}) == (422, "body.recipe.epochs")
    assert refused({**TINY, "name": "x", "largest_epochs": 9}) == (422, "body.largest_epochs")
    assert refused({**TINY, "name": "x", "dataset": {"kind": "imagefolder", "path": "/etc"}})[1].startswith(
        "body.dataset")
    assert refused({**TINY, "name": "../x"}) == (422, "body.name")
    assert refused(["not", "a", "mapping"]) == (422, "body")
    stranger = __import__("nas.service", fromlist=["create_token"]).create_token(
        cluster.database_url, f"other-{uuid.uuid4().hex[:6]}")[1]
    for path in ("/supernets/tiny-svc", "/supernets/nope"):
        assert http(cluster, "GET", path, token=stranger).status_code == 404
    assert http(cluster, "GET", "/supernets", token=stranger).json()["count"] == 0


def test_a_running_supernet_is_cancelled_and_a_taken_name_is_a_conflict(cluster: Cluster, tmp_path: Path) -> None:
    if not any(n.startswith("train") for n in cluster.procs):
        cluster.start_worker("train-4", "-Q", "train")
    long = {**TINY, "name": "to-cancel", "recipe": {**TINY["recipe"], "epochs": 50}}
    answer = http(cluster, "POST", "/supernets", json=long)
    assert answer.status_code == 202, answer.text
    assert http(cluster, "POST", "/supernets", json=long).status_code == 409
    supernet_id = answer.json()["id"]
    wait_for(lambda: checkpointed_epochs(cluster, supernet_id) >= 1, 300, "training under way")
    out = cluster.nas("supernet", "cancel", "to-cancel", timeout=120)
    assert out.returncode == 0, out.stderr
    final = http(cluster, "GET", f"/supernets/{supernet_id}").json()
    assert final["status"] == "cancelled" and final["progress"]["epoch"] < 50
    assert http(cluster, "POST", f"/supernets/{supernet_id}/cancel").status_code == 409
    assert http(cluster, "GET", f"/supernets/{supernet_id}/file").status_code == 404


# -- trainings (POST /trainings, `nas train --submit`) -----------------------------------------------------------
TRAIN_OPTIONS = ("--dataset", "digits", "--subset", "600", "--resolution", "32", "--epochs", "4",
                 "--batch-size", "40", "--seed", "3")


def checkpointed_training_epochs(cluster: Cluster, training_id: str) -> int:
    from nas.service.trainings import CHECKPOINT as TRAINING_CHECKPOINT
    from nas.service.trainings import artifact_scope as training_scope
    from nas.service.trainings import get_training

    stored = list_artifacts(cluster.database_url, training_scope(training_id))
    if not any(a.name == TRAINING_CHECKPOINT for a in stored):
        return 0
    return int(get_training(cluster.database_url, training_id).progress.get("epoch") or 0)


def test_a_training_whose_worker_is_killed_resumes_elsewhere_to_the_weights_of_a_local_nas_train(
        cluster: Cluster, tmp_path: Path) -> None:
    from nas.export import load_state

    if not any(n.startswith("train") for n in cluster.procs):
        cluster.start_worker("train-5", "-Q", "train")
    out = cluster.nas("train", "mobilenetv3-small-0.75", *TRAIN_OPTIONS, "--device", DEVICE, "--submit",
                      "--name", "svc-net", timeout=120)
    assert out.returncode == 0, out.stderr
    training_id = out.stdout.strip().splitlines()[-1]
    wait_for(lambda: checkpointed_training_epochs(cluster, training_id) >= 1, 300, "the first stored checkpoint")
    for name in [n for n in cluster.procs if n.startswith("train")]:
        cluster.kill(name)  # SIGKILL mid-training: no chance to ack or clean up
    cluster.start_worker("train-6", "-Q", "train")
    watched = cluster.nas("trainings", "status", "svc-net", "--watch", "--interval", "0.5", timeout=600)
    assert watched.returncode == 0, watched.stderr + (cluster.home / "train-6.log").read_text()[-3000:]

    done = json.loads(cluster.nas("trainings", "status", training_id, "--json").stdout)
    assert done["status"] == "succeeded" and done["attempts"] == 2
    assert done["summary"]["resumed_from_step"] > 0, "the second worker resumed from the stored checkpoint"
    assert [h["epoch"] for h in done["summary"]["history"]] == [1, 2, 3, 4]
    assert set(done["files"]) == {"model.pt", "model.onnx", "model.provenance.json", "summary.json"}
    got = cluster.nas("trainings", "download", "svc-net", "-o", str(tmp_path / "svc"))
    assert got.returncode == 0, got.stderr
    provenance = json.loads((tmp_path / "svc" / "model.provenance.json").read_text())
    assert provenance["device"]["profile"] == DEVICE and provenance["format"] == "onnx"
    assert provenance["files"]["model.onnx"]["size"] == (tmp_path / "svc" / "model.onnx").stat().st_size
    downloaded = json.loads((tmp_path / "svc" / "summary.json").read_text())
    assert downloaded["files"] == sorted(done["files"]), "file names, not the worker's paths"
    assert downloaded["resolution"] == {"trained": TINY["recipe"]["resolution"], "exported": 224}

    local = cluster.nas("train", "mobilenetv3-small-0.75", *TRAIN_OPTIONS, "-q", "-o", str(tmp_path / "local"))
    assert local.returncode == 0, local.stderr
    served = load_state(tmp_path / "svc" / "model.pt")[1].state_dict()
    reference = load_state(tmp_path / "local" / "model.pt")[1].state_dict()
    assert served.keys() == reference.keys()
    assert all(torch.equal(served[k], reference[k]) for k in reference), "resumed weights differ"
    assert done["summary"]["accuracy"] == json.loads(local.stdout)["accuracy"]


def test_a_training_inherits_the_service_supernet_distils_from_its_largest_and_is_exported_for_openvino(
        cluster: Cluster, tmp_path: Path) -> None:
    if get_supernet(cluster.database_url, "tiny-svc").status.value != "succeeded":
        pytest.skip("needs the supernet of the first test")
    if not any(n.startswith("train") for n in cluster.procs):
        cluster.start_worker("train-7", "-Q", "train")
    body = {"architecture": "mobilenetv3-small-1.0", "supernet": "tiny-svc", "inherit": True,
            "teacher": {"source": "largest", "alpha": 0.7}, "device": "cpu-openvino-1t",
            "dataset": TINY["dataset"], "recipe": {**TINY["recipe"], "epochs": 1}}
    answer = http(cluster, "POST", "/trainings", json=body)
    assert answer.status_code == 202, answer.text
    training_id = answer.json()["id"]
    watched = cluster.nas("trainings", "status", training_id, "--watch", "--interval", "0.5", timeout=600)
    assert watched.returncode == 0, watched.stderr
    done = http(cluster, "GET", f"/trainings/{training_id}").json()
    summary = done["summary"]
    assert summary["initial_weights"]["supernet"] == "tiny-svc"  # as named; its file was the worker's download
    assert summary["initial_weights"]["fingerprint"] == get_supernet(cluster.database_url, "tiny-svc").fingerprint
    assert summary["teacher"]["kind"] == "supernet subnet" and summary["teacher"]["alpha"] == 0.7
    assert summary["teacher"]["supernet"] == "tiny-svc" and summary["teacher"]["source"] == "largest"
    assert {"model.xml", "model.bin", "model.provenance.json"} <= set(done["files"])
    for name in ("model.xml", "model.bin", "model.pt"):
        file = http(cluster, "GET", done["files"][name])
        assert file.status_code == 200
        (tmp_path / name).write_bytes(file.content)
    # The OpenVINO file computes what the trained weights do (in f32, as the device profile runs it; a CPU with
    # bf16 units otherwise runs it in bf16, 1% off).
    import openvino as ov

    from nas.export import load_state

    arch, model, _ = load_state(tmp_path / "model.pt")
    x = torch.randn(1, 3, arch.resolution, arch.resolution, generator=torch.Generator().manual_seed(0))
    compiled = ov.Core().compile_model(str(tmp_path / "model.xml"), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    with torch.no_grad():
        expected = model.eval()(x).numpy()
    got = compiled(x.numpy())[compiled.output(0)]
    assert abs(got - expected).max() < 1e-3 * max(1.0, abs(expected).max())
    assert http(cluster, "GET", f"/trainings/{training_id}/files/checkpoint.pt").status_code == 404


def test_a_search_best_is_trained_by_naming_the_search(cluster: Cluster) -> None:
    searches = http(cluster, "GET", "/searches").json()["data"]
    search = next((s for s in searches if s["name"] == "oneshot-svc" and s["status"] == "succeeded"), None)
    if search is None:
        pytest.skip("needs the search of the second test")
    answer = http(cluster, "POST", "/trainings", json={"search": search["id"], "dataset": TINY["dataset"],
                                                       "recipe": {**TINY["recipe"], "epochs": 1}})
    assert answer.status_code == 202, answer.text
    training = answer.json()
    best = http(cluster, "GET", f"/searches/{search['id']}/best").json()
    assert training["spec"]["architecture"] == best and training["spec"]["device"] == DEVICE
    assert training["spec"]["search"] == search["id"]
    named = http(cluster, "GET", f"/searches/{search['id']}").json()["result"]["train"]["service"]
    assert named.startswith(f"nas train --submit --search {search['id']} --dataset digits"), named
    if not any(n.startswith("train") for n in cluster.procs):
        cluster.start_worker("train-8", "-Q", "train")
    watched = cluster.nas("trainings", "status", training["id"], "--watch", "--interval", "0.5", timeout=600)
    assert watched.returncode == 0, watched.stderr


def test_bad_trainings_are_refused_at_submission_naming_the_field(cluster: Cluster) -> None:
    def refused(document: Any, token: str | None = None) -> tuple[int, str]:
        answer = http(cluster, "POST", "/trainings", json=document, token=token)
        detail = answer.json()["detail"]
        return answer.status_code, ".".join(str(p) for p in detail[0]["loc"]) if isinstance(detail, list) else detail

    net = {"architecture": "mobilenetv3-small-1.0"}
    assert refused({}) == (422, "body.architecture")
    assert refused({**net, "search": "abc"}) == (422, "body.architecture")
    assert refused({"architecture": "/etc/passwd"}) == (422, "body.architecture")
    assert refused({"architecture": "nope.json"}) == (422, "body.architecture")
    assert refused({**net, "teacher": {"source": "/tmp/t.pt"}, "supernet": "tiny-svc"}) == (422, "body.teacher.source")
    assert refused({**net, "inherit": True}) == (422, "body.supernet")
    assert refused({**net, "supernet": "no-such-supernet", "inherit": True}) == (422, "body.supernet")
    large = {"architecture": "mobilenetv3-large-1.0", "supernet": "tiny-svc"}  # tiny-svc is mobilenetv3-small's
    assert refused({**large, "inherit": True}) == (422, "body.architecture")
    assert refused({**net, "supernet": "tiny-svc", "teacher": {"source": "mobilenetv3-large-1.0"}}) == (
        422, "body.teacher.source")
    assert refused({**net, "device": "no-such-device"}) == (422, "body.device")
    assert refused({**net, "recipe": {"epochs": 0}}) == (422, "body.recipe.epochs")
    assert refused({**net, "dataset": {"kind": "imagefolder", "path": "/etc"}})[1].startswith("body.dataset")
    assert refused({**net, "name": "../x"}) == (422, "body.name")
    assert refused({"search": "0" * 32}) == (422, "body.search")
    assert refused(["not", "a", "mapping"]) == (422, "body")
    stranger = __import__("nas.service", fromlist=["create_token"]).create_token(
        cluster.database_url, f"other-{uuid.uuid4().hex[:6]}")[1]
    mine = http(cluster, "GET", "/searches").json()["data"]
    if mine:  # another token's search is not found, whatever its state
        assert refused({"search": mine[0]["id"]}, token=stranger) == (422, "body.search")
    for path in ("/trainings/svc-net", "/trainings/nope"):
        assert http(cluster, "GET", path, token=stranger).status_code == 404
    assert http(cluster, "GET", "/trainings", token=stranger).json()["count"] == 0


def test_a_training_whose_message_redis_lost_is_found_and_re_sent_by_the_doctor(cluster: Cluster) -> None:
    import redis

    for name in [n for n in cluster.procs if n.startswith("train")]:
        cluster.kill(name)  # nobody consumes the train queue while its message is lost
    answer = http(cluster, "POST", "/trainings", json={"architecture": "mobilenetv3-small-0.75",
                                                       "dataset": TINY["dataset"],
                                                       "recipe": {**TINY["recipe"], "epochs": 1}})
    assert answer.status_code == 202, answer.text
    training_id = answer.json()["id"]
    broker = redis.Redis.from_url(REDIS_URL)
    lost = [key for key in broker.scan_iter("train*") if broker.type(key) == b"list"]
    assert lost and broker.delete(*lost), "the training's message was on the train queue"  # as a Redis restart

    def doctor(*args: str) -> tuple[int, list[dict[str, Any]]]:
        got = cluster.nas("doctor", "--json", "--queued-after", "0", *args, timeout=120)
        return got.returncode, [p for p in json.loads(got.stdout)["problems"] if p["search_id"] == training_id]

    code, found = doctor()
    assert code == 1 and [(p["kind"], p["job"], p["fixed"]) for p in found] == [("queued-job", "training", False)]
    assert "no train worker has claimed it" in found[0]["reason"]
    code, found = doctor("--fix")
    assert [(p["kind"], p["fixed"]) for p in found] == [("queued-job", True)] and "re-sent" in found[0]["action"]
    cluster.start_worker("train-9", "-Q", "train")
    watched = cluster.nas("trainings", "status", training_id, "--watch", "--interval", "0.5", timeout=600)
    assert watched.returncode == 0, watched.stderr + (cluster.home / "train-9.log").read_text()[-3000:]
    assert doctor()[1] == [], "nothing left to fix once it ran"
