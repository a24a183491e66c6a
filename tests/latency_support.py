"""Small spaces, networks and a quick-timing profile for the latency tests (kept fast on 2 shared cores)."""

from __future__ import annotations

from pathlib import Path

from nas.arch import Architecture, parse_architecture
from nas.latency import DeviceProfile, TimingSettings
from nas.spaces import SearchSpace, load_space

TINY_SPACE = """
name: tiny
resolution: [96]
num_classes: 10
width: [0.5, 1.0]
stem: {channels: 16, kernel: 3, stride: 2, activation: [relu]}
stages:
  - {block: [mbconv], channels: 16, stride: 2, depth: [1, 2], expansion: [3], kernel: [3, 5], se: [false, true],
     activation: [relu], groups: [1]}
  - {block: [mbconv], channels: 24, stride: 2, depth: [1], expansion: [3, 6], kernel: [3], se: [false],
     activation: [hswish], groups: [1, 2]}
head: {channels: 64, activation: [hswish]}
"""

# The quiet median: two test workers share the two CPUs, so a test's timings take the other's load; the quiet
# runs keep the order of the timed networks steady. The default statistic is tested in test_latency_timing.py.
QUICK = TimingSettings(warmup_runs=3, warmup_seconds=0.0, min_runs=10, max_runs=100, max_seconds=0.1,
                       target_ci=0.02, min_windows=2, wait_for_quiet=0, statistic="quiet-median")

# The runtime settings of cpu-ort-1t, quick timing.
QUICK_ORT = DeviceProfile(name="quick-ort", runtime="onnxruntime", threads=1, batch=1, timing=QUICK,
                          table_timing=QUICK)
QUICK_TORCH = DeviceProfile(name="quick-torch", runtime="torch-eager", threads=1, batch=1, timing=QUICK,
                            table_timing=QUICK)

QUICK_PROFILE_YAML = """
runtime: onnxruntime
timing: {warmup_runs: 3, warmup_seconds: 0.0, min_runs: 10, max_runs: 100, max_seconds: 0.1, target_ci: 0.02,
         min_windows: 2, wait_for_quiet: 0, statistic: quiet-median}
table_timing: {warmup_runs: 2, warmup_seconds: 0.0, min_runs: 5, max_runs: 50, max_seconds: 0.05, target_ci: 0.05,
               min_windows: 1, wait_for_quiet: 0}
"""


# The tests' own device profiles (conftest puts them on NAS_DEVICES_DIR): test-ort-quick is the device of the
# tiny searches (search_helpers) and of the end-to-end services' latency workers.
TEST_DEVICES = Path(__file__).parent / "fixtures" / "devices"
QUICK_DEVICE = "test-ort-quick"


def tiny_space(tmp_path: Path) -> SearchSpace:
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY_SPACE)
    return load_space(str(path))


def tiny_network(resolution: int = 96, out: int = 24, se: bool = False) -> Architecture:
    return parse_architecture({
        "resolution": resolution, "num_classes": 10,
        "stem": {"channels": 8, "stride": 2, "activation": "relu"},
        "stages": [[{"type": "mbconv", "out": 16, "mid": 32, "stride": 2, "se": se}],
                   [{"type": "mbconv", "out": out, "mid": 48, "stride": 2, "activation": "hswish"}]],
        "head": {"channels": 64, "activation": "hswish"},
    })


def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'latency.db'}"
