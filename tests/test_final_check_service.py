"""The final check and self-calibration in the service: every timing on the ``latency.<device>`` worker.

Real API server, PostgreSQL, Redis (database 3, flushed) and ``nas worker`` processes for the driver,
training and the device. A ``mode: predicted`` search with a calibration skewed to predict half the
latency: its top candidates are measured by the latency worker and the stored calibration is refitted;
the final pass (the network and T's reference, interleaved) runs there too, and its outcome is written
onto the study by that worker's task, the only one that writes it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml

from .api_support import REPO, fresh_pg_database, start_server, stop_server
from .latency_support import QUICK_PROFILE_YAML

REDIS_URL = "redis://127.0.0.1:6379/3"  # a database of its own: flushed before and after
SPACE, RES, DEVICE = "mobilenetv3-small", 64, "quick-ort"  # ONNX Runtime, 1 thread, short timing


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL).flushdb()
    except Exception as exc:
        pytest.skip(f"Redis not reachable: {exc}")
    home = tmp_path_factory.mktemp("final-check")
    (home / "devices").mkdir()
    (home / "devices" / f"{DEVICE}.yaml").write_text(QUICK_PROFILE_YAML)
    with fresh_pg_database("nas_final") as url:
        env = {k: v for k, v in os.environ.items() if not k.startswith("NAS_")}
        env.update({"NAS_DATABASE_URL": url, "NAS_REDIS_URL": REDIS_URL, "NAS_HOME": str(home),
                    "NAS_DEVICE_TTL": "30", "NAS_DEVICES_DIR": str(home / "devices"),
                    "NAS_SEARCH_PARALLELISM": "2", "PYTHONPATH": str(REPO),
                    "OMP_NUM_THREADS": "1"})
        procs: list[subprocess.Popen[bytes]] = []
        api = None
        try:
            api, base = start_server(env, home / "api.log")
            for name, args in (("search", ["-Q", "search"]), ("train", ["-Q", "train"]),
                               ("latency", ["--device", DEVICE])):
                log = (home / f"{name}.log").open("wb")
                procs.append(subprocess.Popen([sys.executable, "-m", "nas", "worker", "--name", f"{name}@final", *args],
                                              cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                                              start_new_session=True))
            created = _nas(env, base, "", "token", "create", "final")
            assert created.returncode == 0, created.stderr
            yield {"env": env, "base": base, "token": created.stdout.strip().splitlines()[-1], "url": url, "home": home}
        finally:
            for proc in procs:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
            if api is not None:
                stop_server(api)
            redis.Redis.from_url(REDIS_URL).flushdb()


def _nas(env: dict[str, str], base: str, token: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "nas", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=900, env={**env, "NAS_API_URL": base, "NAS_API_TOKEN": token})


def test_a_predicted_search_in_the_service_refits_and_confirms_on_the_latency_worker(
        service: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from nas.latency import LatencyPredictor, load_profile
    from nas.latency._calibration import Calibration
    from nas.latency._fingerprint import fingerprint
    from nas.latency._lut import _store
    from nas.search._final import CALIBRATION_KEY, FINAL_KEY
    from nas.search._study import rdb_storage

    url, env, base, token = service["url"], service["env"], service["base"], service["token"]
    monkeypatch.setenv("NAS_DEVICES_DIR", env["NAS_DEVICES_DIR"])  # the quick profile, as the workers see it
    # A calibration far off (about 4x under here): the refits must pull the predictions to the measurements.
    # At 0.5 it was near enough that on a loaded machine the refitted error (0.167) came out above the
    # planted one (0.157) although quiet runs improve 23% -> 10%.
    _store(url, DEVICE, fingerprint(load_profile(DEVICE)), Calibration(0.2, 0.0, SPACE, RES, []))
    spec = {"name": "final-service", "space": SPACE, "device": DEVICE,
            "latency": {"mode": "predicted", "resolution": RES, "target_reference": "mobilenetv3-small-1.0",
                        "confirm": 2, "recalibrate_every": 2},
            "strategy": {"name": "random"}, "budget": {"trials": 4}, "export_onnx": False,
            "proxy": {"dataset": {"kind": "digits", "resolution": 32, "subset": 300},
                      "recipe": {"epochs": 1, "resolution": 32, "batch_size": 32, "threads": 1},
                      "pruner": {"name": "none"}}}
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    submitted = _nas(env, base, token, "submit", str(tmp_path / "spec.yaml"))
    assert submitted.returncode == 0, submitted.stderr
    search_id = submitted.stdout.strip().splitlines()[-1]
    watched = _nas(env, base, token, "status", search_id, "--watch", "--interval", "1")
    home = service["home"]
    assert watched.returncode == 0, watched.stderr + (home / "search.log").read_text()[-3000:]

    study = optuna.load_study(study_name=f"search-{search_id}", storage=rdb_storage(url))
    attrs = study.user_attrs
    refitted = attrs[CALIBRATION_KEY]
    assert len(refitted["networks"]) == 4 and len(refitted["refits"]) == 2, refitted  # 2 refits, top 2 each
    assert _mean_error(refitted["networks"], "repredicted_ms") < _mean_error(refitted["networks"], "predicted_ms")
    cal = LatencyPredictor.from_database(DEVICE, database_url=url).calibration_for(SPACE, RES)
    assert cal.slope != 0.2 and len(cal.points) >= 2, "the latency worker stored the refitted calibration"
    # Each pass's outcome is on the study under its own key: written only by the latency worker's task.
    passes = [k for k in attrs if k.startswith("outcome.confirm.")]
    assert any(k.startswith("outcome.confirm.calibration.") for k in passes)
    final = [k for k in passes if k.startswith("outcome.confirm.final.")]
    assert final and attrs[final[0]]["confirm"]["reference"]["median_ms"] > 0, "T's reference timed in the pass"
    assert "Task nas.latency.confirm[" in (home / "latency.log").read_text()  # received and run there
    assert "Task nas.latency.confirm[" not in (home / "search.log").read_text()

    status = json.loads(_nas(env, base, token, "status", search_id, "--json").stdout)
    best = status["result"]["best"]
    verdict = attrs[FINAL_KEY]["verdicts"][f"{best['arch_hash']}@{RES}"]
    assert best["final_latency"] == verdict and status["best"]["within_target"] is verdict["within"]
    got = _nas(env, base, token, "best", search_id, "-o", str(tmp_path / "best.json"))
    assert got.returncode == 0 and ("OVER T" in got.stderr) is (not verdict["within"]), got.stderr


def _mean_error(networks: dict[str, dict[str, float]], prediction: str) -> float:
    """Mean relative error of one prediction (before or after a refit) against the measured medians."""
    return sum(abs(n[prediction] / n["median_ms"] - 1) for n in networks.values()) / len(networks)
