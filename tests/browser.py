"""Headless Chromium for the browser tests: Debian's chromium driven by its chromedriver, Selenium Manager
kept offline (it would otherwise look for, or download, a driver), a throwaway profile."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
MISSING = ("needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)"
           if not (CHROMIUM.is_file() and CHROMEDRIVER.is_file()) else None)


@contextmanager
def headless_chromium(*extra_flags: str) -> Iterator[Any]:
    """A WebDriver for Chromium with ``extra_flags`` (e.g. host-resolver rules); skips without Chromium."""
    import pytest

    if MISSING:
        pytest.skip(MISSING)
    offline = os.environ.get("SE_OFFLINE")
    os.environ["SE_OFFLINE"] = "true"
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="nas-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync", "--window-size=1400,1000",
                 *extra_flags, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
        if offline is None:
            os.environ.pop("SE_OFFLINE", None)
        else:
            os.environ["SE_OFFLINE"] = offline
