"""``/docs`` and ``/redoc`` work without internet access: the API on uvicorn serves Swagger UI's and ReDoc's
files itself. Every asset a page references is a URL of this server that answers 200; nothing points to a
CDN; and headless Chromium with every host but 127.0.0.1 unresolvable renders the operations (FastAPI's
default pages, loading Swagger UI from cdn.jsdelivr.net, stayed blank there)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from .api_support import server_env, start_server, stop_server
from .browser import headless_chromium

WAIT = 60.0


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    home = tmp_path_factory.mktemp("docs-home")
    proc, base = start_server(server_env(f"sqlite:///{home / 'nas.db'}", home), home / "server.log")
    try:
        yield base
    finally:
        stop_server(proc)


def _references(page: str) -> list[str]:
    """Every URL the page loads: src/href attributes and the OpenAPI document's URL given to the script."""
    attrs = re.findall(r'(?:src|href)\s*=\s*["\']([^"\']+)["\']', page)
    spec_urls = re.findall(r"""(?:url:\s*|spec-url=)["']([^"']+)["']""", page)
    return attrs + spec_urls


@pytest.mark.parametrize(("path", "script"), [("/docs", "swagger-ui-bundle.js"), ("/redoc", "redoc.standalone.js")])
def test_a_docs_page_references_only_local_assets_that_answer(api: str, path: str, script: str) -> None:
    page = httpx.get(f"{api}{path}", timeout=30)
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    refs = _references(page.text)
    assert any(r.endswith(script) for r in refs), refs
    assert "/openapi.json" in refs
    assert not re.search(r"https?://|//cdn|googleapis|jsdelivr", page.text), "no absolute URL on the page"
    for ref in refs:
        assert ref.startswith("/") and not ref.startswith("//"), ref
        asset = httpx.get(f"{api}{ref}", timeout=30)
        assert asset.status_code == 200, ref
        assert len(asset.content) > 100, ref
    assert "validatorUrl" not in page.text or '"validatorUrl": null' in page.text


@pytest.fixture(scope="module")
def offline_browser() -> Iterator[Any]:
    """Headless Chromium that can resolve no host but 127.0.0.1: as on a machine without internet access."""
    with headless_chromium("--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1") as driver:
        yield driver


@pytest.mark.parametrize(("path", "operation"), [("/docs", ".opblock-summary-path"), ("/redoc", "h2")])
def test_the_docs_render_offline(api: str, offline_browser: Any, path: str, operation: str) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    offline_browser.get(f"{api}{path}")

    def rendered(driver: Any) -> str | None:
        text = " ".join(e.text for e in driver.find_elements("css selector", operation))
        return text if "/searches" in text or "Submit" in text or "Read Searches" in text else None

    text = WebDriverWait(offline_browser, WAIT).until(rendered, f"{path} never rendered the operations")
    assert text
