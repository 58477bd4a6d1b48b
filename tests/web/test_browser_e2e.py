"""End to end in a real browser: Debian's Chromium driven by Playwright against uvicorn on 127.0.0.1,
a real SQLite database, and the service tests' trained model (a real batch job, a real gate).

Screenshots of each page go to tests/artifacts/screenshots/ (git-ignored) for a reviewer to look at.
"""

from __future__ import annotations

import os
import re
import shutil
from collections import Counter
from pathlib import Path

import pytest

from repradar.settings import Settings
from serving.app import create_app
from serving.auth import add_user
from serving.db.schema import Rep
from serving.rules import OrgChart
from tests.serving.conftest import LiveServer

pytestmark = pytest.mark.slow
CHROMIUM = "/usr/bin/chromium"
SHOTS = Path(__file__).parent.parent / "artifacts" / "screenshots"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail("Chromium is missing: install the Debian package `chromium` (packages.apt)")
        pytest.skip("no /usr/bin/chromium here")
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def site(trained, tmp_path, monkeypatch):  # noqa: F811
    data, home0, as_of = trained
    home = tmp_path / "home"
    shutil.copytree(home0, home)  # the registry changes with promotions: work on a copy
    settings = Settings(home=home, database_url=f"sqlite:///{tmp_path / 'dash.db'}", data_dir=data,
                        model_poll_s=0.5, job_heartbeat_s=0.5)
    app = create_app(settings)
    with LiveServer(app) as server:
        yield app, server, as_of


def _sign_in(page, base: str, token: str) -> None:
    page.goto(base + "/login")
    page.fill("#token", token)
    page.click("#sign-in")


def _shot(page, name: str) -> None:
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_hr_manager_and_chinese_in_a_browser(site, browser, tmp_path):
    app, server, as_of = site
    base = server.url
    with app.state.sessions.begin() as s:
        hr_token = add_user(s, "hana", ["hr"])[1]
    ctx = browser.new_context(accept_downloads=True, viewport={"width": 1280, "height": 900})
    page = ctx.new_page()
    outside = []
    page.on("request", lambda r: None if r.url.startswith(base) or r.url.startswith("data:") else outside.append(r.url))

    # HR: start a batch job for the as-of day, watch it finish, download its file
    _sign_in(page, base, hr_token)
    page.wait_for_url(re.compile(r".*/org.*"))
    page.fill("#as_of", as_of.isoformat())
    page.click("#start-job")
    page.wait_for_selector("tr[data-status=succeeded], tr[data-status=failed]", timeout=180_000)
    assert page.locator("tr[data-status=succeeded]").count() == 1, page.inner_text("#jobs")
    with page.expect_download() as dl:
        page.click("tr[data-status=succeeded] a.download")
    saved = tmp_path / "scores.csv"
    dl.value.save_as(saved)
    assert saved.read_text().startswith("rep_id") and len(saved.read_text().splitlines()) > 10
    page.reload()
    page.wait_for_selector("#suggestions")
    assert "job.create" in page.content() or "job.finish" in page.content() or "job." in page.content()
    _shot(page, "hr_organisation")
    ctx.close()

    # a manager with a real team of the simulated org
    with app.state.sessions() as s:
        edges = dict(s.query(Rep.rep_id, Rep.manager_id).all())
    manager_id, _ = Counter(edges.values()).most_common(1)[0]
    team = OrgChart(edges).subtree(manager_id)
    with app.state.sessions.begin() as s:
        mgr_token = add_user(s, "mo", ["manager"], manager_id)[1]
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    page = ctx.new_page()
    page.on("request", lambda r: None if r.url.startswith(base) or r.url.startswith("data:") else outside.append(r.url))
    _sign_in(page, base, mgr_token)
    page.wait_for_url(re.compile(r".*/team$"))
    shown = page.eval_on_selector_all("tr[data-rep]", "rows => rows.map(r => r.dataset.rep)")
    assert shown and set(shown) <= team, set(shown) - team
    _shot(page, "manager_early_warning")

    # the riskiest rep: reasons in words, a waterfall, suggestions; record an intervention
    page.click(f"tr[data-rep='{shown[0]}'] a")
    page.wait_for_selector("#drivers")
    drivers = page.inner_text("#drivers")
    assert "raises the risk" in drivers or "Not enough data" in drivers
    assert page.locator("#drivers svg").count() >= (0 if "Not enough data" in drivers else 1)
    page.select_option("#intervention", "mentoring")
    page.fill("#started_on", as_of.isoformat())
    page.fill("#note", "paired with a top performer")
    page.click("#record-form button[type=submit]")
    page.wait_for_selector("#intervention-log")
    log = page.inner_text("#intervention-log")
    assert "paired with a top performer" in log and "Pair with a top performer" in log and "mo" in log
    _shot(page, "manager_rep")

    # a rep of another team answers like a rep that does not exist
    stranger = next(r for r in sorted(edges) if r not in team and r != manager_id)
    resp = page.goto(f"{base}/reps/{stranger}")
    assert resp.status == 404 and "not found" in page.content()

    # switch to Chinese: remembered across pages
    page.goto(base + "/team")
    page.click("#lang-zh-CN")
    page.wait_for_selector("html[lang=zh-CN]")
    assert "早期预警" in page.inner_text("h1")
    page.click(f"tr[data-rep='{shown[0]}'] a")
    page.wait_for_selector("#log")
    assert "干预记录" in page.inner_text("#log") and "师徒带教与经验分享" in page.inner_text("#log")
    _shot(page, "manager_rep_zh")
    page.goto(base + "/team")
    _shot(page, "manager_early_warning_zh")
    ctx.close()
    assert outside == []


def test_data_scientist_sees_the_gate_refuse_a_worse_model(site, browser, monkeypatch):
    app, server, _ = site
    base = server.url
    # Version 2 is registered from version 1's run; make the gate judge it worse (as tests/serving do).
    monkeypatch.setattr("models.gate.gate_decision", lambda *a, **k: (False, ["AUC below the champion's"]))
    with app.state.sessions.begin() as s:
        token = add_user(s, "dana", ["data_scientist"])[1]
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    page = ctx.new_page()
    _sign_in(page, base, token)
    page.wait_for_url(re.compile(r".*/models$"))
    assert "Champion: version 1" in page.content()
    _shot(page, "data_scientist_models")
    page.select_option("#version", "2")
    page.click("#promote")
    page.wait_for_selector("#promotion-result")
    result = page.inner_text("#promotion-result")
    assert "The gate refused version 2" in result
    figures = page.inner_text("#gate-figures")
    assert "challenger" in figures and "champion" in figures and re.search(r"0\.\d{4}", figures)
    assert "Champion: version 1" in page.content()  # nothing changed
    _shot(page, "data_scientist_gate_refused")
    ctx.close()
