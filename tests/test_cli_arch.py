"""The ``nas arch`` and ``nas spaces`` commands as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


def nas(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([sys.executable, "-m", "nas", *args], capture_output=True, text=True, timeout=300)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def test_stats_json_reports_torchvisions_parameter_count_for_mobilenetv3_small() -> None:
    data = json.loads(nas("arch", "stats", "mobilenetv3-small-1.0", "--json").stdout)
    assert data["params"] == 2_542_856
    assert {"macs", "memory_access_cost", "hash", "activation_elements"} <= set(data)


def test_stats_follow_resolution_and_class_count() -> None:
    base = json.loads(nas("arch", "stats", "shufflenetv2-1.0", "--json").stdout)
    small = json.loads(nas("arch", "stats", "shufflenetv2-1.0", "--json", "-r", "112", "-k", "10").stdout)
    assert small["params"] == base["params"] - 1024 * 990 - 990
    assert small["macs"] < base["macs"] / 3.5


def test_sample_prints_one_architecture_per_line_reproducibly() -> None:
    first = nas("arch", "sample", "--space", "shufflenet", "--n", "3", "--seed", "9").stdout.splitlines()
    again = nas("arch", "sample", "--space", "shufflenet", "--n", "3", "--seed", "9").stdout.splitlines()
    assert first == again and len(first) == 3
    assert all(json.loads(line)["space"] == "shufflenet" for line in first)


def test_show_prints_a_block_table() -> None:
    out = nas("arch", "show", "mobilenetv3-large-1.0").stdout
    assert "s5.b2" in out and "mbconv" in out and "total" in out


def test_spaces_list_names_the_shipped_spaces() -> None:
    data = json.loads(nas("spaces", "list", "--json").stdout)
    assert {"mobilenetv3-large", "mobilenetv3-small", "shufflenet"} <= {r["name"] for r in data}


def test_export_writes_onnx_and_state_files(tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = nas("arch", "export", "shufflenetv2-0.5", "--onnx", str(tmp_path / "m.onnx"),
              "--state", str(tmp_path / "m.pt"), "-r", "64").stdout
    assert (tmp_path / "m.onnx").stat().st_size > 1_000_000 and (tmp_path / "m.pt").is_file()
    assert "max |ORT - PyTorch|" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["arch", "stats", "mobilenetv9"], "unknown architecture or reference 'mobilenetv9'"),
        (["arch", "sample", "--space", "resnet"], "unknown search space 'resnet'"),
        (["arch", "stats", "mobilenetv3-small-1.0", "-r", "8"], "resolution"),
    ],
)
def test_wrong_names_exit_non_zero_with_a_one_line_reason(args: list[str], message: str) -> None:
    result = nas(*args, check=False)
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], result.stderr


def test_a_malformed_architecture_file_is_reported_with_its_field(tmp_path) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "arch.json"
    bad.write_text(json.dumps({"stem": {"channels": 16}, "stages": [[{"type": "mbconv", "out": 16}]],
                               "head": {}}))
    result = nas("arch", "stats", str(bad), check=False)
    assert result.returncode == 2
    assert "stages.0.0.mid" in result.stderr and "Field required" in result.stderr
