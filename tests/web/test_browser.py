"""The pages in a real browser: Debian's chromium (Playwright) against a real ASGI server.

A uvicorn subprocess serves the project on a free loopback port with its own freshly prepared database
(tests/web/browser_site.py: small generated data, tiny trained models, demo users), eager Celery and no
LLM keys (the offline agent answers). WebSockets go through the real ASGI stack. Each test leaves a
screenshot in var/screenshots/ (git-ignored).
"""

from __future__ import annotations

import itertools
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.error import URLError
from urllib.parse import urlsplit, urlunsplit
from urllib.request import urlopen

import pytest

from tests.live import free_port

pytestmark = [pytest.mark.browser, pytest.mark.live_server, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "var" / "screenshots"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PASSWORDS = {"admin": "admin-demo", "analyst": "analyst-demo", "viewer": "viewer-demo"}
TIMEOUT_MS = 30_000


def _postgres_database(url: str, name: str, *, create: bool) -> str:
    """(Re)create or drop a scratch database next to the configured one; returns its URL."""
    import psycopg

    parts = urlsplit(url)
    maintenance = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(maintenance, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if create:
            conn.execute(f'CREATE DATABASE "{name}"')
    return urlunsplit(parts._replace(path=f"/{name}"))


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, loopback: None) -> Iterator[str]:
    if not CHROMIUM.exists():
        message = "needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)"
        if os.environ.get("BMS_REQUIRE_SERVICES") == "1":
            pytest.fail(message + " (BMS_REQUIRE_SERVICES=1 forbids skipping)", pytrace=False)
        pytest.skip(message)
    var_dir = tmp_path_factory.mktemp("browser-site")
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bms.settings",
        "SECRET_KEY": os.environ.get("SECRET_KEY") or "browser-test-not-secret",
        "JOBS_IN_BACKGROUND": "0",
        "PREDICTION_LOG_BACKGROUND": "0",
        "SERVER_WARM_UP": "0",
        "BMS_VAR_DIR": str(var_dir),
        "CELERY_TASK_ALWAYS_EAGER": "1",
        "TRAINING_N_JOBS": "1",
        "SCHEDULE_TIME_BUDGET_SECONDS": "3",
        "GROQ_API_KEY": "",
        "GEMINI_API_KEY": "",
        "OPENROUTER_API_KEY": "",
        "MONGO_URL": "",
        "LOG_JSON": "0",
        "SECURE_SSL_REDIRECT": "0",  # the browser speaks plain HTTP to this server
    }
    pg_name = None
    base_url = os.environ.get("DATABASE_URL", "")
    if base_url.startswith(("postgres://", "postgresql://")):
        pg_name = os.environ.get("DATABASE_TEST_NAME", "test_bms") + "_browser"
        env["DATABASE_URL"] = _postgres_database(base_url, pg_name, create=True)
    prepare = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "web" / "browser_site.py")],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert prepare.returncode == 0, prepare.stderr[-4000:]
    port = free_port()
    log = (var_dir / "server.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "bms.asgi:application", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urlopen(url + "/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except (URLError, OSError):
                pass
            assert server.poll() is None, (var_dir / "server.log").read_text()[-4000:]
            assert time.monotonic() < deadline, "the ASGI server did not start"
            time.sleep(0.5)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
        if pg_name is not None:
            _postgres_database(base_url, pg_name, create=False)


@pytest.fixture(scope="module")
def browser(site: str) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page_for(browser: Any, site: str) -> Iterator[Any]:
    """``page_for("analyst")``: a fresh browser context logged in through the login form."""
    contexts: list[Any] = []

    def login(username: str) -> Any:
        context = browser.new_context(viewport={"width": 1366, "height": 900}, accept_downloads=True)
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        page = context.new_page()
        page.goto(site + "/login/")
        page.get_by_label("Username").fill(username)
        page.get_by_label("Password").fill(PASSWORDS[username])
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(site + "/")
        return page

    yield login
    for context in contexts:
        context.close()


def shot(page: Any, name: str) -> None:
    """Save a screenshot, after checking the page fits a laptop-width window (no sideways scrolling)."""
    width = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], f"{name}: page is {width[0]} px wide in a {width[1]} px window"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def nav(page: Any, name: str) -> Any:
    return page.get_by_role("navigation", name="Main").get_by_role("link", name=name, exact=True)


def chart_points(page: Any, canvas_id: str) -> int:
    """Data points Chart.js drew on a canvas (0 when no chart is attached)."""
    return int(
        page.evaluate(
            """id => { const c = document.getElementById(id); const chart = c && window.Chart && Chart.getChart(c);
                 return chart ? chart.data.datasets.reduce((n, d) => n + d.data.filter(v => v !== null).length, 0) : 0; }""",
            canvas_id,
        )
    )


def test_dashboard_renders_its_charts_with_data(page_for: Any, site: str) -> None:
    page = page_for("analyst")
    page.wait_for_function("() => document.getElementById('chart-revenue-genre')?.dataset.points")
    for canvas in ("chart-audience-channel", "chart-revenue-channel", "chart-audience-genre", "chart-revenue-genre"):
        assert chart_points(page, canvas) > 0
    assert page.get_by_test_id("kpi-models").inner_text() == "4 / 4"
    assert page.get_by_test_id("role").inner_text() == "ANALYST"
    shot(page, "dashboard-analyst")
    page.set_viewport_size({"width": 1024, "height": 768})  # a small laptop
    shot(page, "dashboard-analyst-1024")


def test_program_search_and_predict_for_a_slot(page_for: Any, site: str) -> None:
    page = page_for("analyst")
    nav(page, "Programs").click()
    first_title = page.locator("[data-testid=program-table] tbody tr td:nth-child(2) a").first.inner_text()
    page.get_by_label("Search", exact=True).fill(first_title)
    page.get_by_role("button", name="Apply").click()
    rows = page.locator("[data-testid=program-table] tbody tr")
    assert rows.count() >= 1
    assert all(first_title.lower() in t.lower() for t in rows.locator("td:nth-child(2) a").all_inner_texts())
    shot(page, "programs-search")
    rows.first.locator("td:nth-child(2) a").click()
    page.wait_for_function("() => document.getElementById('trend-audience')?.dataset.points")
    assert chart_points(page, "trend-audience") > 0
    page.get_by_label("Slot start", exact=True).fill("2024-02-16T20:00")
    page.get_by_role("button", name="Predict").click()
    result = page.get_by_test_id("predict-result")
    result.wait_for()
    text = result.inner_text()
    for target in ("rating", "revenue", "audience", "engagement"):
        assert target in text
    assert re.search(r"\d[\d,.]* \u2013 \d[\d,.]*", text), text  # each prediction comes with its interval
    shot(page, "program-predict")


def test_admin_promotes_and_rolls_back_a_model(page_for: Any, site: str) -> None:
    page = page_for("admin")
    nav(page, "Models").click()
    history = page.get_by_test_id("history")
    candidate = history.locator("tr", has=page.locator("a:has-text('Promote…')")).filter(has_text="rating").first
    algorithm = candidate.locator("td").nth(1).inner_text()
    candidate.get_by_role("link", name="Promote…").click()
    page.get_by_label(re.compile(r"^Reason")).fill("browser test: compare live")
    page.get_by_label("I confirm this change to production").check()
    # Tiny models need not beat production or the baselines (the guard); the admin forces it, recorded.
    page.get_by_label("Force: promote even if").check()
    shot(page, "model-promote-confirm")
    page.get_by_role("button", name="Promote to production").click()
    page.wait_for_url(site + "/models/")
    assert f"Promoted {algorithm}" in page.locator(".alert-success").inner_text()
    matrix_row = page.get_by_test_id("model-matrix").locator("tr", has_text=algorithm)
    assert "production" in matrix_row.locator("td").first.inner_text()
    page.get_by_test_id("rollback-rating").click()
    page.get_by_label(re.compile(r"^Reason")).fill("browser test: back to the previous model")
    page.get_by_label("I confirm this change to production").check()
    page.get_by_role("button", name="Roll back").click()
    page.wait_for_url(site + "/models/")
    assert "Rolled back the production model for rating." in page.locator(".alert-success").inner_text()
    ledger = page.get_by_test_id("ledger").inner_text()
    assert "browser test: back to the previous model" in ledger
    assert "browser test: compare live" in ledger
    shot(page, "models-after-rollback")


def test_analyst_runs_an_optimisation_saves_and_exports_it(page_for: Any, site: str, tmp_path: Path) -> None:
    page = page_for("analyst")
    nav(page, "Schedule").click()
    page.get_by_label("Date", exact=True).fill("2024-02-09")
    page.get_by_label("Daypart", exact=True).select_option("prime_time")
    page.get_by_label("Start grid", exact=True).select_option("60")
    page.get_by_label("Time budget (s)", exact=True).fill("1")
    shot(page, "schedule-form")
    page.get_by_role("button", name="Optimise").click()
    page.wait_for_url(re.compile(r".*/schedule/jobs/\d+/$"))
    page.get_by_test_id("job-status").filter(has_text="succeeded").wait_for(timeout=60_000)
    assert page.get_by_test_id("timeline").get_by_test_id("airing").count() >= 1
    assert page.get_by_test_id("best-revenue").inner_text().startswith("$")
    page.wait_for_function("() => document.getElementById('pareto-chart')?.dataset.points")
    assert chart_points(page, "pareto-chart") >= 1
    page.get_by_label("Save as proposal", exact=True).fill("Friday prime (browser)")
    page.get_by_role("button", name="Save proposal").click()
    assert "Saved proposal “Friday prime (browser)”" in page.locator(".alert-success").inner_text()
    with page.expect_download() as info:
        page.get_by_test_id("export-csv").click()
    path = tmp_path / info.value.suggested_filename
    info.value.save_as(path)
    lines = path.read_text().splitlines()
    assert lines[0].startswith("position,start,end,length_minutes,program_id,external_id,title")
    assert sum(int(row.split(",")[3]) for row in lines[1:]) == 180  # prime time, 20:00-23:00, end to end
    shot(page, "schedule-result")


def test_the_whole_day_form_with_defaults_draws_a_filled_timeline(page_for: Any, site: str) -> None:
    page = page_for("analyst")
    nav(page, "Schedule").click()
    page.get_by_label("Date", exact=True).fill("2024-02-06")  # everything else as the form offers it
    assert page.get_by_label("Daypart", exact=True).input_value() == ""  # the whole broadcast day
    page.get_by_role("button", name="Optimise").click()
    page.wait_for_url(re.compile(r".*/schedule/jobs/\d+/$"))
    page.get_by_test_id("job-status").filter(has_text="succeeded").wait_for(timeout=90_000)
    track = page.get_by_test_id("proposal-track")
    blocks = track.get_by_test_id("airing")
    assert blocks.count() >= 10
    # the blocks tile the 20-hour track: each starts where the one before it ends, the last ends at its foot
    geometry = blocks.evaluate_all("els => els.map(e => [e.offsetTop, e.offsetHeight, Number(e.dataset.minutes)])")
    assert sum(minutes for _, _, minutes in geometry) == 20 * 60
    for (top, height, _), (next_top, _, _) in itertools.pairwise(geometry):
        assert abs(top + height - next_top) <= 1
    last_top, last_height, _ = geometry[-1]
    assert abs(last_top + last_height - track.evaluate("e => parseFloat(e.style.height)")) <= 1
    assert page.get_by_test_id("current-track").count() == 1
    shot(page, "schedule-whole-day")


def _ask(page: Any, question: str, answers_before: int) -> Any:
    page.get_by_label("Your question").fill(question)
    page.get_by_label("Your question").press("Enter")
    answer = page.locator(".msg-assistant").nth(answers_before)
    answer.locator(".msg-meta").wait_for()
    return answer


def test_analyst_asks_two_questions_and_sees_streamed_answers_with_tools(page_for: Any, site: str) -> None:
    page = page_for("analyst")
    nav(page, "Chat").click()
    page.get_by_test_id("new-session").click()
    page.get_by_test_id("conn-state").filter(has_text="live").wait_for()
    first = _ask(page, "What are the top 5 programs by audience?", 0)
    assert first.locator("details.tool-call summary").first.inner_text().startswith("Tool: ")
    assert "offline" in first.locator(".msg-meta").inner_text()
    # Streamed: the tool_call event and several token events arrived before the final event.
    assert int(first.get_attribute("data-tool-events") or 0) >= 1
    assert int(first.get_attribute("data-token-events") or 0) > 5
    second = _ask(page, "Show the weekly audience trend for news", 1)
    assert second.locator("details.tool-call summary").first.inner_text() == "Tool: analyze_trends"
    second.locator("details.tool-call summary").first.click()
    assert second.locator("details.tool-call pre").first.is_visible()
    chart = second.locator("canvas")
    assert int(chart.get_attribute("data-points") or 0) >= 2  # the tool's series drawn inline
    assert page.locator(".msg-user").count() == 2
    shot(page, "chat-two-questions")


def test_analyst_exports_a_file_from_the_chat(page_for: Any, site: str, tmp_path: Path) -> None:
    page = page_for("analyst")
    nav(page, "Chat").click()
    page.get_by_test_id("new-session").click()
    page.get_by_test_id("conn-state").filter(has_text="live").wait_for()
    answer = _ask(page, "Export drama airings as csv", 0)
    assert "Tool: export_data" in answer.locator("details.tool-call summary").first.inner_text()
    with page.expect_download() as info:
        answer.get_by_role("link", name="Download export").click()
    path = tmp_path / "export.csv"
    info.value.save_as(path)
    header = path.read_text().splitlines()[0]
    assert "program_title" in header
    shot(page, "chat-export")


def test_viewer_cannot_reach_admin_actions(page_for: Any, site: str) -> None:
    page = page_for("viewer")
    menu = page.get_by_role("navigation", name="Main").inner_text()
    assert "Schedule" not in menu
    assert "Chat" not in menu
    assert "Monitoring" not in menu
    nav(page, "Models").click()
    assert page.get_by_role("link", name="Promote…").count() == 0
    assert page.get_by_role("button", name="Start a training run").count() == 0
    shot(page, "models-viewer")
    response = page.goto(site + "/models/rollback/rating")
    assert response is not None
    assert response.status == 403
    assert "This page needs the admin role" in page.locator("main").inner_text()
    assert page.goto(site + "/monitoring/").status == 403
    shot(page, "viewer-forbidden")


def test_admin_monitoring_page(page_for: Any, site: str) -> None:
    page = page_for("admin")
    nav(page, "Monitoring").click()
    assert page.get_by_test_id("overall-health").inner_text() == "all ok"
    page.locator("#workers-state .badge").filter(has_text="ok").wait_for()
    shot(page, "monitoring-admin")
