"""Shared fixtures: an isolated NAS_HOME per test session, the tests' device profiles (``tests/fixtures/devices``),
few torch threads, devices to test on."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="session", autouse=True)
def _isolated_home(tmp_path_factory: pytest.TempPathFactory) -> None:
    home = tmp_path_factory.mktemp("nas-home")
    os.environ.setdefault("NAS_HOME", str(home))
    from tests.latency_support import TEST_DEVICES

    os.environ["NAS_DEVICES_DIR"] = str(TEST_DEVICES)
    from nas.settings import get_settings

    get_settings.cache_clear()


@pytest.fixture(autouse=True)
def _settings_read_afresh() -> Iterator[None]:
    """Settings are parsed once per process (``get_settings``); a test that sets ``NAS_*`` variables gets
    them read again, and leaves nothing cached for the next test."""
    from nas.settings import get_settings

    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture(scope="session", autouse=True)
def _few_threads() -> None:
    import torch

    torch.set_num_threads(1)


def torch_devices() -> list[str]:
    import torch

    return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture
def repo_root() -> Path:
    return Path(__file__).resolve().parents[1]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    """In CI a skip is a failure unless the test does not apply here at all (``tests/skips.py``)."""
    from tests.skips import accepted, skips_fail

    outcome = yield
    report = outcome.get_result()
    if not (report.skipped and skips_fail()) or hasattr(report, "wasxfail"):
        return
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    reason = reason.removeprefix("Skipped: ")
    if not accepted(reason):
        report.outcome = "failed"
        report.longrepr = f"skipped in CI, which needs every real part this test uses: {reason}"


# -- in parallel: `pytest -n 2 --dist loadfile` (pytest-xdist) ---------------------------------------------------
# A file's tests run on one worker, so a module fixture (a cluster of worker processes, a converted network) is
# built once and each file keeps its own Redis DB; the service fixtures' Redis DB is per worker (api_support).
# The long end-to-end files are handed out first, so that no worker is left alone with one of them at the end.
# Longest first, as measured on 2026-11-30 (--durations, loaded host): 350-130 s each.
LONG_FIRST = ("test_search", "test_deployable", "test_distributed", "test_final_check", "test_service_specs",
              "test_faults", "test_latency_runtimes", "test_artifacts_distributed", "test_train_queue_service")


def pytest_configure(config: pytest.Config) -> None:
    if getattr(config.option, "dist", None) == "loadfile":
        config.option.loadscopereorder = False  # files in the order below, not the most tests first


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return

    def rank(item: pytest.Item) -> int:
        module = item.nodeid.split("::", 1)[0].rsplit("/", 1)[-1].removesuffix(".py")
        return LONG_FIRST.index(module) if module in LONG_FIRST else len(LONG_FIRST)

    items.sort(key=rank)  # stable: the usual order within each file and among the rest
