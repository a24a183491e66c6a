"""``nas devices compare``: what each operator choice costs on each device, from real interleaved timings."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from nas.latency._variants import variants
from nas.spaces import check_member, load_space

# Two stages in which every choice is offered, so every variant changes every block; expansion 1 -> 6
# adds a 1x1 expansion conv and six times the depthwise width: a cost no load on the machine hides.
OPCOST_SPACE = """
name: opcost
resolution: [96]
num_classes: 10
width: [1.0]
stem: {channels: 16, kernel: 3, stride: 2, activation: [relu]}
stages:
  - {block: [mbconv], channels: 32, stride: 2, depth: [2], expansion: [1, 6], kernel: [3, 7], se: [false, true],
     activation: [relu, hswish], groups: [1, 4]}
  - {block: [mbconv], channels: 64, stride: 2, depth: [2], expansion: [1, 6], kernel: [3, 7], se: [false, true],
     activation: [relu, hswish], groups: [1, 4]}
head: {channels: 128, activation: [hswish]}
"""

# CPU 0: the built-in profiles' measurements queue on CPU 1's lock, for minutes when the host is shared.
QUICK_TIMING = """
cpus: [0]
timing: {warmup_runs: 3, warmup_seconds: 0.0, min_runs: 10, max_runs: 100, max_seconds: 0.15, target_ci: 0.02,
         min_windows: 3, wait_for_quiet: 0, statistic: quiet-median}
"""


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    devices = tmp_path / "devices"
    devices.mkdir()
    (devices / "quick-ort.yaml").write_text("runtime: onnxruntime\n" + QUICK_TIMING)
    (devices / "quick-ov.yaml").write_text("runtime: openvino\n" + QUICK_TIMING)
    (tmp_path / "opcost.yaml").write_text(OPCOST_SPACE)
    return {**os.environ, "NAS_DEVICES_DIR": str(devices), "NAS_HOME": str(tmp_path / "home"),
            "NAS_DATABASE_URL": "", "NAS_ARTIFACT_CACHE": str(tmp_path / "artifacts")}


def nas(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "nas", *args], capture_output=True, text=True, env=env, timeout=600)


def test_each_variant_sets_one_choice_in_every_block_and_stays_in_its_space() -> None:
    for name in ("mobilenetv3-small", "shufflenet"):
        space = load_space(name)
        nets = variants(space, 224, all_options=True)
        base = nets[0].arch
        assert nets[0].label == "baseline" and all(b.kernel == 3 and not b.se and b.groups == 1
                                                    for _, _, b in base.blocks())
        for v in nets:
            check_member(space, v.arch)
        seven = next(v for v in nets if v.label == "kernel=7")
        changed = [(a.kernel, b.kernel) for (_, _, a), (_, _, b) in zip(base.blocks(), seven.arch.blocks(), strict=True)
                   if a != b]
        assert len(changed) == seven.blocks > 0 and all(k == (3, 7) for k in changed)
    groups = variants(load_space("shufflenet"), 224, ["groups"], all_options=True)
    # 3 groups divide none of the baseline's widths (200, 400, 800): the decoder repairs them to 2, a
    # network already measured, so that row is left out.
    assert [v.label for v in groups] == ["baseline", "groups=2", "groups=4", "groups=8"]
    assert all(b.groups == 8 for _, _, b in groups[-1].arch.blocks())


def test_compare_prints_per_device_ratios_to_the_baseline_measured_interleaved(env: dict[str, str],
                                                                                tmp_path: Path) -> None:
    result = nas(env, "devices", "compare", "quick-ort", "quick-ov", "--space", str(tmp_path / "opcost.yaml"),
                 "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["devices"] == ["quick-ort", "quick-ov"] and data["rounds"] == 2 and data["resolution"] == 96
    rows = {r["choice"]: r for r in data["rows"]}
    assert list(rows) == ["baseline", "kernel=7", "se=on", "activation=hswish", "groups=4", "expansion=6"]
    assert all(r["blocks"] == r["total_blocks"] == 4 for r in rows.values())
    for row in rows.values():
        for cell in row["devices"].values():
            assert len(cell["round_ratios"]) == 2 and cell["median_ms"] > 0 and cell["runs"] >= 20
            assert cell["ratio"] == pytest.approx(statistics.median(cell["round_ratios"]))
            assert cell["ratio_min"] <= cell["ratio"] <= cell["ratio_max"]
    assert all(c["round_ratios"] == [1.0, 1.0] for c in rows["baseline"]["devices"].values())
    for device in data["devices"]:  # a measured effect, not a constant: 6x wider blocks cost far more
        assert rows["expansion=6"]["devices"][device]["ratio"] > 1.5

    table = nas(env, "devices", "compare", "quick-ort", "--space", str(tmp_path / "opcost.yaml"), "-c", "kernel",
                "--rounds", "1")
    assert table.returncode == 0, table.stderr
    assert "quick-ort" in table.stdout and "kernel=7" in table.stdout and "[" in table.stdout


def test_an_unknown_choice_is_a_one_line_error_naming_it(env: dict[str, str]) -> None:
    result = nas(env, "devices", "compare", "quick-ort", "-c", "colour")
    assert result.returncode == 2
    assert result.stderr.strip() == ("error: choices: unknown choice 'colour'; known: kernel, se, activation, "
                                     "groups, expansion, block")
