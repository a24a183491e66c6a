"""``nas run`` as a user runs it: a real search in a subprocess, Ctrl-C, resume, clear errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import yaml
from optuna.trial import TrialState

from .search_helpers import tiny_spec


def write_spec(path: Path, **overrides) -> Path:  # type: ignore[no-untyped-def]
    path.write_text(yaml.safe_dump(tiny_spec(**overrides).model_dump(mode="json")))
    return path


def nas_run(spec: Path, home: Path, *extra: str) -> subprocess.Popen[str]:
    env = {**os.environ, "NAS_HOME": str(home)}
    # A shell that starts the suite in the background (nohup ... &) leaves SIGINT ignored, and a Python
    # started with SIGINT ignored keeps ignoring it: give the child the default disposition, as a terminal would.
    return subprocess.Popen([sys.executable, "-m", "nas", "run", str(spec), "-q", *extra], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def wait_for_running_trial(db: str, name: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            study = optuna.load_study(study_name=name, storage=db)
            if any(t.state is TrialState.RUNNING and "architecture" in t.user_attrs for t in study.trials):
                return
        except KeyError:
            pass
        time.sleep(0.3)
    raise AssertionError("no trial started")


def test_ctrl_c_stops_a_search_and_rerunning_the_command_resumes_it(tmp_path) -> None:  # type: ignore[no-untyped-def]
    spec = write_spec(tmp_path / "spec.yaml", name="ctrlc", budget={"trials": 2},
                      proxy={"recipe": {"epochs": 4, "resolution": 32, "threads": 1}})
    db = f"sqlite:///{tmp_path / 'nas.db'}"
    proc = nas_run(spec, tmp_path)
    try:
        wait_for_running_trial(db, "ctrlc")
        time.sleep(1.0)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "run the same command again to resume" in err
    study = optuna.load_study(study_name="ctrlc", storage=db)
    assert [t.state for t in study.trials][0] is TrialState.FAIL
    assert study.trials[0].user_attrs["interrupted"] is True

    again = nas_run(spec, tmp_path)
    out, err = again.communicate(timeout=600)
    assert again.returncode == 0, err
    best = json.loads(out)
    assert best["schema_version"] == 1 and best["num_classes"] == 10
    study = optuna.load_study(study_name="ctrlc", storage=db)
    complete = [t for t in study.trials if t.state is TrialState.COMPLETE]
    assert len(complete) == 2
    assert any(t.user_attrs.get("retry_of") == 0 for t in complete), "the interrupted candidate was re-run"
    assert (tmp_path / "searches" / "ctrlc" / "result.json").is_file()


def test_a_missing_dataset_is_a_one_line_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    spec = write_spec(tmp_path / "spec.yaml", name="nodata",
                      proxy={"dataset": {"kind": "cifar10", "path": str(tmp_path / "missing"), "resolution": 32}})
    proc = nas_run(spec, tmp_path)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "missing" in lines[0], err


def test_an_invalid_spec_names_the_field(tmp_path) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "bad.yaml"
    doc = tiny_spec().model_dump(mode="json")
    doc["latency"]["target_ms"] = -3
    bad.write_text(yaml.safe_dump(doc))
    proc = nas_run(bad, tmp_path)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and "latency.target_ms" in err and "> 0" in err, err


def test_a_bad_environment_variable_is_a_one_line_error_naming_it(tmp_path) -> None:  # type: ignore[no-untyped-def]
    spec = write_spec(tmp_path / "spec.yaml", name="badenv")
    env = {**os.environ, "NAS_HOME": str(tmp_path), "NAS_DEVICE_WAIT": "ten minutes"}
    proc = subprocess.run([sys.executable, "-m", "nas", "run", str(spec), "-q"], env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: NAS_DEVICE_WAIT: Input should be a valid number, unable to parse string as a number "
        "(got 'ten minutes')"], proc.stderr
