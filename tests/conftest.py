"""Shared fixtures: an isolated NAS_HOME per test session, few torch threads, devices to test on."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session", autouse=True)
def _isolated_home(tmp_path_factory: pytest.TempPathFactory) -> None:
    home = tmp_path_factory.mktemp("nas-home")
    os.environ.setdefault("NAS_HOME", str(home))
    from nas.settings import get_settings

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
