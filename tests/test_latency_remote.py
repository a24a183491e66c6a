"""The remote runner: a device reached through the user's commands. Here real local commands stand in for
``adb``/``ssh``: ``push`` copies the exported file into a "device" directory and ``run`` times it there with
a plain timing loop (``python -m nas.latency._plain``), printing the latency the profile parses."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import pytest
import yaml

from nas.errors import LatencyError
from nas.latency import load_profile, measure
from nas.latency._rt_remote import ParseRule, parse_latency
from tests.latency_support import sqlite_url, tiny_network

PY = shlex.quote(sys.executable)


def remote(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **options: object) -> str:
    """Write a remote profile ``board`` into a devices directory and return its name."""
    devices = tmp_path / "devices"
    devices.mkdir(exist_ok=True)
    monkeypatch.setenv("NAS_DEVICES_DIR", str(devices))
    monkeypatch.setenv("NAS_ARTIFACT_CACHE", str(tmp_path / "cache"))
    (devices / "board.yaml").write_text(yaml.safe_dump({
        "runtime": "remote", "speed_canary": False, "timing": {"wait_for_quiet": 0}, "options": options}))
    return "board"


def test_a_remote_device_times_the_pushed_file_with_its_own_command(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    board = tmp_path / "board"
    board.mkdir()
    name = remote(tmp_path, monkeypatch, format="onnx",
                  push=f"cp {{model}} {board}/{{model_name}}",
                  run=f"{PY} -m nas.latency._plain {board}/{{model_name}} --runs 20 --warmup 2 --threads {{threads}}",
                  parse={"regex": r"median_ms=(?P<value>[0-9.]+)", "unit": "ms"})
    m = measure(tiny_network(64), name, database_url=sqlite_url(tmp_path))
    assert 0 < m.stats.median_ms < 100 and m.stats.runs == 1
    assert [p.suffix for p in board.iterdir()] == [".onnx"], "the file was pushed to the device"
    assert m.conditions["canary_ms"] is None and m.conditions["speed_factor"] == 1.0


def test_openvinos_own_benchmark_app_can_be_the_device_command(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """The ssh-board example without ssh: OpenVINO's ``benchmark_app`` times the exported IR."""
    app = shlex.quote(str(Path(sys.executable).parent / "benchmark_app"))
    board = tmp_path / "board"
    board.mkdir()
    name = remote(tmp_path, monkeypatch, format="openvino", push=f"cp {{files}} {board}",
                  run=f"{app} -m {board}/{{model_name}} -d CPU -hint none -nstreams 1 -nthreads {{threads}} "
                      "-niter 50 -api sync",
                  parse={"regex": r"Median:\s+(?P<value>[0-9.]+) (?P<unit>us|ms|s)\b"})
    assert 0 < measure(tiny_network(64), name, database_url=sqlite_url(tmp_path)).stats.median_ms < 100
    assert sorted(p.suffix for p in board.iterdir()) == [".bin", ".xml"]


def test_json_output_is_read_by_a_dotted_path_in_any_unit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    name = remote(tmp_path, monkeypatch, format="openvino",
                  run=f"{PY} -m nas.latency._plain {{model}} --runs 10 --warmup 1 --json",
                  parse={"json": "latency.median_ms", "unit": "ms"})
    assert measure(tiny_network(64), name, database_url=sqlite_url(tmp_path)).stats.median_ms > 0
    rule = ParseRule.model_validate({"json": "latency.median_ms", "unit": "us"})
    assert parse_latency('warming up\n{"latency": {"median_ms": 1500}}\n', rule) == pytest.approx(1.5)
    regex = ParseRule.model_validate({"regex": r"avg=([0-9.]+)", "unit": "us"})
    assert parse_latency("avg=900 warm-up\n...\navg=1234.5 steady\n", regex) == pytest.approx(1.2345)
    unit = ParseRule.model_validate({"regex": r"Median: +(?P<value>[0-9.]+) (?P<unit>us|ms|s)\b"})
    assert parse_latency("[ INFO ]    Median:        39.76 us\n", unit) == pytest.approx(0.03976)
    assert parse_latency("[ INFO ]    Median:        3.5 ms\n", unit) == pytest.approx(3.5)


def test_a_failing_command_names_the_device_the_command_and_its_last_output_after_retries(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    attempts = tmp_path / "attempts"
    run = f"echo attempt >> {attempts}; echo connecting; echo 'error: device offline' >&2; exit 3"
    name = remote(tmp_path, monkeypatch, format="onnx", run=run, retries=2, parse={"regex": "avg=([0-9.]+)"})
    with pytest.raises(LatencyError) as err:
        measure(tiny_network(64), name, database_url=sqlite_url(tmp_path))
    message = str(err.value)
    assert "device board: command `echo attempt" in message and "exited with code 3" in message
    assert "last output: connecting | error: device offline" in message
    assert attempts.read_text().count("attempt") == 3, "one try and two retries"


def test_output_without_a_latency_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    name = remote(tmp_path, monkeypatch, format="onnx", run="echo benchmark finished, no numbers", retries=0,
                  parse={"regex": r"avg=([0-9.]+)"})
    expected = (r"device board: no latency found by 'avg=\(\[0-9\.\]\+\)' in the output of "
                r"`echo benchmark finished, no numbers`; last output: benchmark finished")
    with pytest.raises(LatencyError, match=expected):
        measure(tiny_network(64), name, database_url=sqlite_url(tmp_path))


def test_a_hanging_command_times_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    name = remote(tmp_path, monkeypatch, format="onnx", run="echo started; sleep 30", timeout=1, retries=0,
                  parse={"regex": r"avg=([0-9.]+)"})
    with pytest.raises(LatencyError, match=r"device board: command `echo started; sleep 30` timed out after 1 s"):
        measure(tiny_network(64), name, database_url=sqlite_url(tmp_path))


@pytest.mark.parametrize(("options", "reason"), [
    ({"run": "bench", "parse": {"regex": "avg"}}, "options.parse.regex: .*needs a group around the number"),
    ({"run": "bench {modle}", "parse": {"regex": "a(1)"}}, "options.run: .*unknown placeholder 'modle'"),
    ({"parse": {"regex": "a(1)"}}, "options.run: .*required"),
    ({"run": "bench", "parse": {"regex": "a(1)", "json": "x"}}, "options.parse: .*exactly one of regex or json"),
])
def test_a_malformed_remote_profile_is_refused_when_loaded(options: dict[str, object], reason: str,
                                                            tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    remote(tmp_path, monkeypatch, **options)
    with pytest.raises(LatencyError, match=f"board.yaml: .*{reason}"):
        load_profile("board")


@pytest.mark.parametrize("example", ["pixel-adb", "board-ssh"])
def test_the_documented_examples_are_valid_profiles(example: str) -> None:
    from nas.paths import search_spaces_dir

    profile = load_profile(str(search_spaces_dir() / "devices" / "examples" / f"{example}.yaml"))
    assert profile.runtime == "remote" and not profile.speed_canary
