"""What deploy/compose-test checks once the compose deployment is up and healthy.

A user's path through it: a token made inside the API container, a spec submitted with the host's CLI to the
API published on 127.0.0.1, the train worker's container killed (SIGKILL) once its log shows a trial in
training for 3 s and started again, the search watched to success, every trial stored once (read from the
search's Optuna study inside the API container, which alone reaches PostgreSQL), the best architecture
fetched and equal to the study's best, and the dashboard serving the study. Every step prints one line with
its elapsed time; a failure is an AssertionError or CalledProcessError naming the step.

    python deploy/compose_check.py --compose "docker-compose -p P -f ... -f ..." \\
        --api http://127.0.0.1:8000 --dashboard http://127.0.0.1:8080 SPEC
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

START = time.monotonic()

# Run inside the API container: the study's trials as JSON (number, state, value, user attributes that matter).
STUDY_DUMP = """
import json, sys
import optuna
from nas.search._study import rdb_storage
from nas.settings import get_settings
study = optuna.load_study(study_name="search-" + sys.argv[1],
                          storage=rdb_storage(get_settings().resolved_database_url()))
keys = ("architecture", "interrupted", "outcome.train", "outcome.latency", "accuracy")
print(json.dumps([{"number": t.number, "state": t.state.name, "value": t.value,
                   "attrs": {k: t.user_attrs[k] for k in keys if k in t.user_attrs}} for t in study.trials]))
"""


PASSED: list[str] = []  # the checks passed so far, for the summary line deploy/compose-test prints last


def passed(message: str) -> None:
    PASSED.append(message)
    log(message)


def log(message: str) -> None:
    sys.stdout.write(f"compose-test [{time.monotonic() - START:6.1f} s] {message}\n")
    sys.stdout.flush()


def run(cmd: list[str], timeout: float = 300, env: dict[str, str] | None = None, stdin: str | None = None) -> str:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, input=stdin)
    if done.returncode != 0:
        raise subprocess.CalledProcessError(done.returncode, shlex.join(cmd), done.stdout, done.stderr)
    return done.stdout


class Deployment:
    def __init__(self, compose: list[str], api: str, dashboard: str) -> None:
        self.compose, self.api, self.dashboard = compose, api, dashboard
        self.cli_env = {k: v for k, v in os.environ.items() if not k.startswith("NAS_")}
        self.cli_env["NAS_API_URL"] = api

    def container(self, service: str) -> str:
        ids = run([*self.compose, "ps", "-q", service]).split()
        assert len(ids) == 1, f"expected one {service} container, found {ids}"
        return ids[0]

    def in_api(self, *args: str, stdin: str | None = None) -> str:
        return run([*self.compose, "exec", "-T", "api", *args], stdin=stdin)

    def nas(self, *args: str, timeout: float = 120) -> str:
        """The host's CLI against the published API port."""
        return run([sys.executable, "-m", "nas", *args], timeout=timeout, env=self.cli_env)

    def trials(self, search_id: str) -> list[dict[str, Any]]:
        try:
            return json.loads(self.in_api("python", "-c", STUDY_DUMP, search_id).strip().splitlines()[-1])
        except subprocess.CalledProcessError as exc:
            if "KeyError" in exc.stderr:  # the driver has not created the study yet
                return []
            raise


    def training_tasks(self, container: str) -> set[str]:
        """Train tasks the container's worker received and has not finished, from its log (Celery logs both)."""
        done = subprocess.run(["docker", "logs", container], capture_output=True, text=True, timeout=60)
        text = done.stdout + done.stderr
        received = set(re.findall(r"Task nas\.train\[([^\]]+)\] received", text))
        return received - set(re.findall(r"Task nas\.train\[([^\]]+)\] (?:succeeded|failed|raised|retry)", text))

    def wait_until_training(self, container: str, seconds: float, timeout: float) -> str:
        """A train task the worker has been running for ``seconds``: the kill then lands inside training."""
        first_seen: dict[str, float] = {}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            now, running = time.monotonic(), self.training_tasks(container)
            first_seen = {t: first_seen.get(t, now) for t in running}
            long_enough = [t for t, at in first_seen.items() if now - at >= seconds]
            if long_enough:
                return long_enough[0]
            time.sleep(0.5)
        raise AssertionError(f"timed out after {timeout:.0f} s waiting for {container[:12]} to train a trial")


def check(dep: Deployment, spec: Path) -> None:
    budget = int(yaml.safe_load(spec.read_text())["budget"]["trials"])
    token = dep.in_api("nas", "token", "create", "compose-test").strip().splitlines()[-1]
    admin = dep.in_api("nas", "token", "create", "compose-admin", "--admin").strip().splitlines()[-1]
    dep.cli_env["NAS_API_TOKEN"] = token
    passed("a user and an admin token created inside the api container")

    search_id = dep.nas("submit", str(spec)).strip().splitlines()[-1]
    passed(f"submitted {spec} from the host: search {search_id}")

    worker = dep.container("train-worker")
    task = dep.wait_until_training(worker, seconds=3.0, timeout=600)
    run(["docker", "kill", worker])
    passed(f"killed the train-worker container {worker[:12]} while it ran {task}")
    run(["docker", "start", worker])
    passed("started it again")

    dep.nas("status", search_id, "--watch", "--interval", "2", timeout=900)
    status = json.loads(dep.nas("status", search_id, "--json"))
    assert status["status"] == "succeeded", status
    passed(f"search {search_id} succeeded")

    trials = dep.trials(search_id)
    # A pruned trial is finished too (the quickstart's median pruner stops some): it counts toward the budget.
    finished = [t for t in trials if t["state"] in ("COMPLETE", "PRUNED")]
    counted = [t for t in trials if not t["attrs"].get("interrupted")]
    assert len(finished) == budget, f"{len(finished)} finished trials for a budget of {budget}: {trials}"
    assert len(counted) == budget, f"{len(counted)} counted trials for a budget of {budget}: {trials}"
    assert len({t["number"] for t in trials}) == len(trials)
    for t in finished:
        assert "outcome.train" in t["attrs"] and "outcome.latency" in t["attrs"], t
    complete = [t for t in finished if t["state"] == "COMPLETE"]
    assert complete, "no trial completed"
    passed(f"{budget} trials finished ({len(complete)} complete), each stored once "
           f"({len(trials) - len(counted)} more marked interrupted)")

    with tempfile.TemporaryDirectory() as tmp:
        dep.nas("best", search_id, "-o", f"{tmp}/best.json", "--onnx", f"{tmp}/best.onnx")
        best = json.loads(Path(tmp, "best.json").read_text())
        onnx_outputs = _run_onnx(Path(tmp, "best.onnx"), int(best["resolution"]))
    top = max(complete, key=lambda t: t["value"])
    assert best == top["attrs"]["architecture"], "GET /searches/{id}/best is not the study's best trial"
    assert onnx_outputs == (1, int(best["num_classes"])), onnx_outputs
    passed(f"best architecture and its ONNX file fetched (trial {top['number']}; the ONNX runs in onnxruntime)")

    user = httpx.get(f"{dep.dashboard}/api/studies", timeout=30, headers={"Authorization": f"Bearer {token}"})
    assert user.status_code == 403, (user.status_code, user.text[:300])
    signed_in = {"Authorization": f"Bearer {admin}"}
    page = httpx.get(f"{dep.dashboard}/dashboard", timeout=30, follow_redirects=True, headers=signed_in)
    assert page.status_code == 200 and "optuna" in page.text.lower(), (page.status_code, page.text[:500])
    studies = httpx.get(f"{dep.dashboard}/api/studies", timeout=30, headers=signed_in).json()
    names = [s.get("study_name") for s in studies.get("study_summaries", [])]
    assert f"search-{search_id}" in names, names
    passed("dashboard refused to the user token, served to the admin token, the search's study listed")


def _run_onnx(path: Path, resolution: int) -> tuple[int, ...]:
    import numpy as np
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).standard_normal((1, 3, resolution, resolution), dtype=np.float32)
    return tuple(session.run(None, {session.get_inputs()[0].name: x})[0].shape)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--compose", required=True, help="the docker-compose command with -p and -f options")
    parser.add_argument("--api", required=True, help="published API base URL (127.0.0.1)")
    parser.add_argument("--dashboard", required=True, help="published dashboard base URL (127.0.0.1)")
    parser.add_argument("--summary", type=Path, help="write 'N passed, M failed' here")
    parser.add_argument("spec", type=Path)
    args = parser.parse_args()
    failed = 1
    try:
        check(Deployment(shlex.split(args.compose), args.api, args.dashboard), args.spec)
        failed = 0
        log("all checks passed")
    except subprocess.CalledProcessError as exc:
        output = (exc.stdout or "")[-2000:] + (exc.stderr or "")[-3000:]
        log(f"FAILED: `{exc.cmd}` exited with {exc.returncode}\n{output}")
        sys.exit(1)
    finally:
        if args.summary:
            args.summary.write_text(f"{len(PASSED)} passed, {failed} failed\n")


if __name__ == "__main__":
    main()
