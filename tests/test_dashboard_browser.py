"""The Optuna dashboard in a real browser: ``nas dashboard`` (the CLI, a real subprocess) on a database holding
a finished multi-objective search, read by headless Chromium through chromedriver (Debian's, never downloaded).

It shows every user's searches, so it opens to admin tokens only: the browser signs in on ``/login`` (an
HttpOnly cookie), scripts send a bearer header; a user token gets 403 and no token 401 (pages: a redirect to
the sign-in form), checked with real requests.

Screenshots of the study page and the trial list are kept in ``artifacts/dashboard-browser/`` (git-ignored)
so a person can look at what the browser saw.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from .api_support import free_port, stop_server
from .browser import headless_chromium

if TYPE_CHECKING:
    from .finished_search import FinishedSearch

pytest_plugins = ["tests.finished_search"]  # finished_search: one real tiny NSGA-II search per session

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "dashboard-browser"
WAIT = 60.0

@dataclass(frozen=True)
class Dashboard:
    base: str
    admin: str
    user: str


@pytest.fixture(scope="module")
def dashboard(finished_search: FinishedSearch, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dashboard]:
    """``nas dashboard`` on the search's database, bound to 127.0.0.1 on a free port, with an admin and a user
    token made by ``nas token create``."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("NAS_")}
    env.update({"NAS_DATABASE_URL": finished_search.database_url,
                "NAS_HOME": str(tmp_path_factory.mktemp("dashboard-home"))})
    log = tmp_path_factory.mktemp("dashboard-log") / "dashboard.log"
    nas = str(Path(sys.executable).with_name("nas"))
    suffix = uuid.uuid4().hex[:6]
    tokens = [subprocess.run([nas, "token", "create", f"{kind}-{suffix}", *flags], env=env, capture_output=True,
                             text=True, timeout=120, check=True).stdout.strip()
              for kind, flags in (("admin", ["--admin"]), ("user", []))]
    with log.open("wb") as out:
        proc = subprocess.Popen([nas, "dashboard", "--host", "127.0.0.1", "--port", str(port)], env=env,
                                stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + WAIT
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"nas dashboard exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{base}/api/studies", headers=_bearer(tokens[0]), timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"nas dashboard did not answer within {WAIT:.0f} s:\n{log.read_text()[-3000:]}")
            time.sleep(0.3)
        yield Dashboard(base, *tokens)
    finally:
        stop_server(proc)


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium driven by the system chromedriver; Selenium Manager is kept offline."""
    with headless_chromium() as driver:
        yield driver


def _study_id(dashboard: Dashboard, study_name: str) -> int:
    studies = httpx.get(f"{dashboard.base}/api/studies", headers=_bearer(dashboard.admin), timeout=10).json()
    studies = studies["study_summaries"]
    return next(s["study_id"] for s in studies if s["study_name"] == study_name)


def _screenshot(driver: Any, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    driver.save_screenshot(str(path))
    print(f"screenshot: {path}")
    return path


# The Pareto-front plot is a plotly graph with the element id ``graph-pareto-front``; every trace's points
# are in ``.data`` and the drawn markers are ``path.point`` elements in its SVG.
PARETO_TRACES = """
const el = document.getElementById('graph-pareto-front');
if (!el || !el.data) return null;
return {drawn: el.querySelectorAll('.scatterlayer path.point').length,
        traces: el.data.map(t => ({kind: (t.hovertemplate || '').replace(/.*<extra>(.*)<\\/extra>.*/, '$1'),
                                   x: Array.from(t.x || []), y: Array.from(t.y || [])}))};
"""


def _points(traces: list[dict[str, Any]], kind: str | None = None) -> set[tuple[float, float]]:
    return {(round(x, 9), round(y, 9)) for t in traces if kind in (None, t["kind"])
            for x, y in zip(t["x"], t["y"], strict=True)}


def _trial_points(search: FinishedSearch) -> tuple[set[tuple[float, float]], set[tuple[float, float]]]:
    """(every completed trial, the non-dominated ones) as (accuracy, latency) read from the study itself."""
    import optuna
    from optuna.trial import TrialState

    from nas.rewards import pareto_front

    study = optuna.load_study(study_name=search.study_name, storage=search.database_url)
    done = study.get_trials(states=(TrialState.COMPLETE,))
    front = pareto_front(done, key=lambda t: (t.user_attrs["accuracy"], t.user_attrs["latency_ms"]))

    def pts(trials: list[Any]) -> set[tuple[float, float]]:
        return {(round(t.values[0], 9), round(t.values[1], 9)) for t in trials}

    return pts(done), pts(front)


def test_the_study_page_draws_every_trial_on_the_pareto_front_plot(dashboard: Dashboard, signed_in: Any,
                                                                    finished_search: FinishedSearch) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    browser = signed_in
    study_id = _study_id(dashboard, finished_search.study_name)
    browser.get(f"{dashboard.base}/dashboard/studies/{study_id}")

    def rendered(driver: Any) -> dict[str, Any] | None:
        seen = driver.execute_script(PARETO_TRACES)
        return seen if seen and seen["drawn"] >= finished_search.trials else None

    seen = WebDriverWait(browser, WAIT).until(rendered, "the Pareto-front plot never drew every trial")
    _screenshot(browser, "study-page.png")
    every, front = _trial_points(finished_search)
    assert len(every) == finished_search.trials
    assert seen["drawn"] == finished_search.trials
    assert _points(seen["traces"]) == every
    assert _points(seen["traces"], "Best Trial") == front
    assert "Pareto Front" in browser.find_element("tag name", "body").text


def test_the_trial_list_shows_every_trial_by_number(dashboard: Dashboard, signed_in: Any,
                                                    finished_search: FinishedSearch) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    browser = signed_in
    study_id = _study_id(dashboard, finished_search.study_name)
    browser.get(f"{dashboard.base}/dashboard/studies/{study_id}/trials")
    count = finished_search.trials
    expected = [f"Trial {n}" for n in range(count)]

    def listed(driver: Any) -> str | None:
        text = driver.find_element("tag name", "body").text
        return text if f"{count} Trials" in text and all(e in text for e in expected) else None

    text = WebDriverWait(browser, WAIT).until(listed, "the trial list never showed every trial")
    _screenshot(browser, "trial-list.png")
    assert f"Trial {count}" not in text
    assert "Complete" in text


def _sign_in(browser: Any, dashboard: Dashboard, token: str, page: str = "/dashboard") -> str:
    """Open ``page``, get sent to the sign-in form, paste ``token``, submit; the text of the page shown after."""
    from selenium.webdriver.support.ui import WebDriverWait

    browser.delete_all_cookies()
    browser.get(f"{dashboard.base}{page}")
    WebDriverWait(browser, WAIT).until(lambda d: "/login" in d.current_url, "no redirect to the sign-in form")
    browser.find_element("id", "token").send_keys(token)
    browser.find_element("id", "sign-in").click()
    WebDriverWait(browser, WAIT).until(lambda d: "/login" not in d.current_url
                                       or d.find_elements("id", "error"), "the sign-in form never answered")
    return str(browser.find_element("tag name", "body").text)


@pytest.fixture()
def signed_in(browser: Any, dashboard: Dashboard) -> Any:
    """The browser after an admin signed in through the form."""
    _sign_in(browser, dashboard, dashboard.admin)
    cookie = browser.get_cookie("nas_dashboard_token")
    assert cookie is not None and cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    return browser


def test_a_browser_without_an_admin_token_sees_no_study(dashboard: Dashboard, browser: Any,
                                                        finished_search: FinishedSearch) -> None:
    text = _sign_in(browser, dashboard, dashboard.user, page="/dashboard/studies/1")
    assert "/login" in browser.current_url and "is not an admin token" in text
    assert finished_search.study_name not in browser.page_source
    text = _sign_in(browser, dashboard, "nas_not-a-token")
    assert "unknown or revoked token" in text and browser.get_cookie("nas_dashboard_token") is None


def test_requests_need_an_admin_token(dashboard: Dashboard) -> None:
    """Every optuna-dashboard path is behind the check: its JSON API, its pages, its static files."""
    for path in ("/api/studies", "/api/studies/1", "/csv/1", "/static/bundle.js"):
        assert httpx.get(f"{dashboard.base}{path}", timeout=10).status_code == 401, path
        refused = httpx.get(f"{dashboard.base}{path}", headers=_bearer(dashboard.user), timeout=10)
        assert refused.status_code == 403 and "admin token" in refused.json()["detail"], path
        assert httpx.get(f"{dashboard.base}{path}", headers=_bearer("nas_forged"), timeout=10).status_code == 401
    listed = httpx.get(f"{dashboard.base}/api/studies", headers=_bearer(dashboard.admin), timeout=10)
    assert listed.status_code == 200 and listed.headers["cache-control"] == "private, no-cache", "revalidated"
    deleted = httpx.delete(f"{dashboard.base}/api/studies/1", headers=_bearer(dashboard.user), timeout=10)
    assert deleted.status_code == 403
    page = httpx.get(f"{dashboard.base}/dashboard", headers={"Accept": "text/html"}, timeout=10)
    assert page.status_code == 303 and page.headers["location"] == "/login?next=/dashboard"
    with httpx.Client(base_url=dashboard.base, timeout=10) as c:
        signed = c.post("/login", data={"token": dashboard.admin, "next": "https://elsewhere.example/"})
        assert signed.status_code == 303 and signed.headers["location"] == "/dashboard", "no open redirect"
        assert c.get("/api/studies").status_code == 200, "the cookie is the token"
        assert c.post("/logout").status_code == 303
        assert c.get("/api/studies").status_code == 401
