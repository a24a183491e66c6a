"""Absurd and malformed input gets a clear refusal up front: over HTTP a 422 naming the field (before
anything is stored or queued), on the command line one ``error: ...`` line naming the file or field,
exit code 2, and no study created. (The everyday cases are in test_api_validation and test_specs.)"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from .api_support import SPEC, Service, queued_messages

pytest_plugins = ["tests.service_fixtures"]  # database_url, redis_client, service

ABSURD: list[tuple[str, dict[str, Any], list[Any]]] = [
    ("a trillion trials", {"budget": {"trials": 10**12}}, ["body", "budget", "trials"]),
    ("negative time", {"budget": {"trials": None, "seconds": -60}}, ["body", "budget", "seconds"]),
    ("a century of time", {"budget": {"seconds": 100 * 365 * 86400}}, ["body", "budget", "seconds"]),
    ("a million epochs", {"proxy": {"recipe": {"epochs": 10**6}}}, ["body", "proxy", "recipe", "epochs"]),
    ("a 64-bit seed", {"seed": 2**40}, ["body", "seed"]),
    ("a negative latency target", {"latency": {"target_ms": -0.5}}, ["body", "latency", "target_ms"]),
    ("a huge deployment resolution", {"latency": {"target_ms": 5, "resolution": 100_000}},
     ["body", "latency", "resolution"]),
    ("an unknown device", {"device": "tpu-v9"}, ["body", "device"]),
    ("a device given as a server path", {"device": "/etc/passwd.yaml"}, ["body", "device"]),
    ("a space given as a server path", {"space": "/etc/hosts"}, ["body", "space"]),
]


@pytest.mark.parametrize(("case", "changes", "loc"), ABSURD, ids=[c[0] for c in ABSURD])
def test_absurd_values_are_422_naming_the_field(service: Service, redis_client: Any, case: str,
                                                changes: dict[str, Any], loc: list[Any]) -> None:
    with service.client(service.token()) as c:
        before = len(queued_messages(redis_client))
        response = c.post("/searches", json={**SPEC, **changes})
        assert response.status_code == 422, response.text
        detail = response.json()["detail"][0]
        assert detail["loc"] == loc and detail["msg"], detail
        assert c.get("/searches").json()["count"] == 0 and len(queued_messages(redis_client)) == before


# -- the command line ------------------------------------------------------------------------------------
def nas(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NAS_")} | {"NAS_HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "nas", *args], capture_output=True, text=True, timeout=120,
                          env=env, cwd=home)


def spec_with(**changes: Any) -> str:
    return yaml.safe_dump({**SPEC, "budget": {"trials": 1}, **changes})


CLI_CASES: list[tuple[str, dict[str, str], list[str], list[str]]] = [
    ("spec with broken YAML", {"spec.yaml": "name: x\nlatency: {target_ms: [1,\n"}, ["run", "spec.yaml"],
     ["spec.yaml: line 3: invalid YAML"]),
    ("spec that is a list", {"spec.yaml": "- name: x\n"}, ["run", "spec.yaml"], ["spec.yaml", "YAML mapping"]),
    ("NaN latency target", {"spec.yaml": spec_with(latency={"target_ms": float("nan")})}, ["run", "spec.yaml"],
     ["latency.target_ms", "finite"]),
    ("a trillion trials", {"spec.yaml": spec_with(budget={"trials": 10**12})}, ["run", "spec.yaml"],
     ["budget.trials", "less than or equal to 100000"]),
    ("unknown device", {"spec.yaml": spec_with(device="tpu-v9")}, ["run", "spec.yaml"],
     ["unknown device profile 'tpu-v9'", "cpu-ort-1t"]),
    ("architecture file with broken JSON", {"arch.json": '{"stem": {"channels": 16},\n "stages": ['},
     ["arch", "stats", "arch.json"], ["arch.json: (document): invalid JSON at line 2"]),
    ("space file with broken YAML", {"space.yaml": "name: s\nstages: [\n"},
     ["arch", "validate", "mobilenetv3-small-1.0", "--space", "space.yaml"], ["space.yaml: line 3: invalid YAML"]),
    ("space file naming a bad field", {"space.yaml": "name: s\nstem: {channels: -3}\nstages: []\nhead: {}\n"},
     ["arch", "sample", "--space", "space.yaml"], ["space.yaml: stem.channels"]),
    ("custom reward without weights", {"spec.yaml": spec_with(reward={"kind": "custom", "beta": -0.1})},
     ["run", "spec.yaml"], ["reward.alpha: required for kind=custom"]),
    ("tournament above the population",
     {"spec.yaml": spec_with(strategy={"name": "evolution", "options": {"population_size": 4, "tournament_size": 9}})},
     ["run", "spec.yaml"], ["strategy.options.tournament_size: 9 is larger than population_size 4"]),
    ("tournament above the population --trials gives",
     {"spec.yaml": spec_with(budget={"trials": 60}, strategy={"name": "evolution", "options": {"tournament_size": 9}})},
     ["run", "spec.yaml", "--trials", "12"], ["strategy.options.tournament_size", "defaults to 4"]),
    ("submitting broken YAML (never sent)", {"spec.yaml": "name: [\n"},
     ["submit", "spec.yaml", "--url", "http://127.0.0.1:9", "--token", "nas_x"], ["spec.yaml: line 2: invalid YAML"]),
]


@pytest.mark.parametrize(("case", "files", "args", "expected"), CLI_CASES, ids=[c[0] for c in CLI_CASES])
def test_malformed_files_are_one_line_errors_with_exit_code_2(tmp_path: Path, case: str, files: dict[str, str],
                                                              args: list[str], expected: list[str]) -> None:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    result = nas(*args, home=tmp_path)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for part in expected:
        assert part in lines[0], lines[0]
    assert result.stdout == ""
    assert not (tmp_path / "nas.db").exists() and not (tmp_path / "searches").exists()  # no study was started

