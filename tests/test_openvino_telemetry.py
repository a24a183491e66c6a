"""OpenVINO sends no usage telemetry from the project's processes unless the user opted in.

Each case runs in a fresh interpreter with its own empty home directory (no consent file, which OpenVINO
counts as consent) and without ``CI`` (which OpenVINO treats as a refusal), and counts the Python
processes started while OpenVINO is imported and a network converted: OpenVINO's telemetry sends each
event from such a process. The plain ``import openvino`` shows that the count can be non-zero here.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from nas._openvino import opted_in

pytest.importorskip("openvino")

COUNT_STARTED = """
import multiprocessing.process, sys
started = []
_start = multiprocessing.process.BaseProcess.start
def _counting(self):
    started.append(self.name)
    return _start(self)
multiprocessing.process.BaseProcess.start = _counting
"""

CONVERT = """
from pathlib import Path
from nas.export import export_artifact
from tests.latency_support import tiny_network
export_artifact(tiny_network(resolution=32), Path(sys.argv[1]) / "model.xml", "openvino")
"""


def _processes_started(code: str, home: Path) -> int:
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "TF_BUILD", "JENKINS_URL")}
    env["HOME"] = str(home)
    out = subprocess.run([sys.executable, "-c", COUNT_STARTED + code + "\nprint(len(started))", str(home)],
                         env=env, capture_output=True, text=True, timeout=300, check=True,
                         cwd=Path(__file__).resolve().parents[1])
    return int(out.stdout.strip().splitlines()[-1])


def test_a_plain_openvino_import_sends_telemetry_from_a_new_process(tmp_path: Path) -> None:
    assert _processes_started("import openvino", tmp_path) > 0


def test_the_project_imports_and_converts_with_openvino_without_starting_any_process(tmp_path: Path) -> None:
    code = "from nas._openvino import import_openvino\nimport_openvino()\n" + CONVERT
    assert _processes_started(code, tmp_path) == 0
    assert (tmp_path / "model.xml").is_file() and (tmp_path / "model.bin").is_file()


def test_a_user_who_opted_in_is_respected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    assert not opted_in()
    (tmp_path / "intel").mkdir()
    (tmp_path / "intel" / "openvino_telemetry").write_text("0")
    assert not opted_in()
    (tmp_path / "intel" / "openvino_telemetry").write_text("1")
    assert opted_in()
