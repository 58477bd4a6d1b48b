"""End to end in a real browser: Debian's Chromium driven by Playwright against uvicorn on 127.0.0.1,
a real SQLite database, and the service tests' trained model (a real batch job, a real gate judging a
genuinely worse challenger: `worse_registry` in conftest.py).

Screenshots of each page go to tests/artifacts/screenshots/ (git-ignored) for a reviewer to look at.
The models page's curves are also checked through the app (no browser) against what MLflow holds;
they live here because they share the registry fixture, which `--dist loadfile` builds once per file's worker.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import time
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
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


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
def site(worse_registry, tmp_path):
    home0, data, as_of, _ = worse_registry
    home = tmp_path / "home"
    shutil.copytree(home0, home)  # the registry changes with promotions: work on a copy
    settings = Settings(
        home=home,
        database_url=f"sqlite:///{tmp_path / 'dash.db'}",
        data_dir=data,
        model_poll_s=0.5,
        job_heartbeat_s=0.5,
    )
    app = create_app(settings)
    with LiveServer(app) as server:
        # the champion's first load may go on behind a slow start-up (FIRST_LOAD_WAIT_S): the pages
        # under test need it in
        import httpx

        deadline = time.time() + 60
        while httpx.get(server.url + "/health/ready").json()["status"] != "ready" and time.time() < deadline:
            time.sleep(0.2)
        yield app, server, as_of


def _sign_in(page, base: str, token: str) -> None:
    page.goto(base + "/login")
    page.fill("#token", token)
    page.click("#sign-in")


def _rep_page(browser, base: str, token: str, rep_id: str = "R1", **context):
    """(context, page): a new browser context (`context` as for new_context), signed in, on a rep's page."""
    ctx = browser.new_context(**context)
    page = ctx.new_page()
    _sign_in(page, base, token)
    page.wait_for_selector("main")
    page.goto(f"{base}/reps/{rep_id}")
    return ctx, page


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
    page.on(
        "request",
        lambda r: None if r.url.startswith(base) or r.url.startswith("data:") else outside.append(r.url),
    )

    # HR: start a batch job for the as-of day, watch it finish, download its file
    _sign_in(page, base, hr_token)
    page.wait_for_url(re.compile(r".*/org.*"))
    page.fill("#as_of", as_of.isoformat())
    page.click("#start-job")
    # the page does not refresh itself (it would move the focus): follow its refresh link until done
    deadline = time.monotonic() + 300  # a loaded machine is slow to score
    while page.locator("tr[data-status=succeeded], tr[data-status=failed]").count() == 0:
        assert time.monotonic() < deadline, page.inner_text("#jobs")
        assert page.locator("#refresh-jobs").count() == 1 and "started" in page.inner_text("#jobs")
        page.wait_for_timeout(2000)  # as often as the page refreshed itself before
        # wait for the new page itself: on a loaded machine the old one is still there for a while,
        # and reading it while it goes away fails ("execution context was destroyed")
        with page.expect_navigation(wait_until="load", timeout=60_000):
            page.click("#refresh-jobs")
    assert page.locator("tr[data-status=succeeded]").count() == 1, page.inner_text("#jobs")
    with page.expect_download() as dl:
        page.click("tr[data-status=succeeded] a.download")
    saved = tmp_path / "scores.csv"
    dl.value.save_as(saved)
    # made for people: the UTF-8 mark first, so that Excel reads it as UTF-8 (pandas and the report skip it)
    assert saved.read_bytes().startswith(b"\xef\xbb\xbfrep_id"), saved.read_bytes()[:20]
    assert len(saved.read_text(encoding="utf-8-sig").splitlines()) > 10
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
    page.on(
        "request",
        lambda r: None if r.url.startswith(base) or r.url.startswith("data:") else outside.append(r.url),
    )
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

    # the language is the user's, not only this browser's: a fresh browser signs in to Chinese pages
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    page = ctx.new_page()
    page.on(
        "request",
        lambda r: None if r.url.startswith(base) or r.url.startswith("data:") else outside.append(r.url),
    )
    page.goto(base + "/login")
    assert page.get_attribute("html", "lang") == "en"  # signed out, no cookie: the default
    page.fill("#token", mgr_token)
    page.click("#sign-in")
    page.wait_for_url(re.compile(r".*/team$"))
    assert page.get_attribute("html", "lang") == "zh-CN" and "早期预警" in page.inner_text("h1")
    _shot(page, "manager_signed_in_elsewhere_zh")
    # and back to English there: the next fresh browser follows
    page.click("#lang-en")
    page.wait_for_selector("html[lang=en]")
    ctx.close()
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    page = ctx.new_page()
    _sign_in(page, base, mgr_token)
    page.wait_for_url(re.compile(r".*/team$"))
    assert page.get_attribute("html", "lang") == "en" and "Early warning" in page.inner_text("h1")
    ctx.close()
    assert outside == []


def _figures(page) -> dict[str, dict[str, str]]:
    rows = page.eval_on_selector_all(
        "#gate-figures tbody tr", "rows => rows.map(r => Array.from(r.cells).map(c => c.innerText.trim()))"
    )
    cols = ["role", "version", "auc", "brier", "auc_early", "rows", "misses"]
    return {r[0]: dict(zip(cols, r, strict=True)) for r in rows}


def test_data_scientist_sees_the_gate_refuse_a_worse_model(site, browser, worse_registry):
    app, server, _ = site
    base = server.url
    worse = worse_registry[3]
    with app.state.sessions.begin() as s:
        token = add_user(s, "dana", ["data_scientist"])[1]
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    page = ctx.new_page()
    outside = []
    page.on(
        "request",
        lambda r: None if r.url.startswith(base) or r.url.startswith("data:") else outside.append(r.url),
    )
    _sign_in(page, base, token)
    page.wait_for_url(re.compile(r".*/models$"))
    assert "Champion: version 1" in page.content()
    # the champion's lead-time curve (AUC and Brier) and calibration plot, drawn from its MLflow run
    assert page.get_attribute("#curves", "data-version") == "1"
    assert page.locator("#lead-time svg").count() == 2 and page.locator("#calibration svg").count() == 1
    for chart in ("#lead-time", "#calibration"):
        for series in ("model", "pacing", "logistic"):
            assert page.locator(f"{chart} circle[data-series={series}]").count() >= 2, (chart, series)
    _shot(page, "data_scientist_models")

    # the worse challenger's own curves, then the gate
    page.select_option("#curves-version", worse)
    page.click("#curves-show")
    page.wait_for_selector(f"#curves[data-version='{worse}']")
    page.select_option("#version", worse)
    page.click("#promote")
    page.wait_for_selector("#promotion-result")
    result = page.inner_text("#promotion-result")
    assert f"The gate refused version {worse}" in result
    assert "is below the champion's" in result or "is above the champion's" in result  # the gate's reasons
    figures = _figures(page)
    assert set(figures) == {"challenger", "champion"}
    chal, champ = figures["challenger"], figures["champion"]
    assert (chal["version"], champ["version"]) == (worse, "1")
    assert chal["rows"] == champ["rows"] and chal["misses"] == champ["misses"]  # judged on the same rows
    tol = app.state.settings.gate_tol_auc, app.state.settings.gate_tol_brier
    assert (
        float(chal["auc"]) < float(champ["auc"]) - tol[0]
        or float(chal["brier"]) > float(champ["brier"]) + tol[1]
        or float(chal["auc_early"]) < float(champ["auc_early"]) - tol[0]
    )
    header = page.text_content("#gate-figures thead")  # inner_text would give the CSS capitals
    assert "AUC, first 50% of the period" in header
    assert page.locator("#gate-verdicts li").count() == 3  # AUC, Brier and the early-period AUC
    assert page.get_attribute("#curves", "data-version") == worse
    assert "Champion: version 1" in page.content()  # nothing changed
    _shot(page, "data_scientist_gate_refused")
    # the same page in Chinese (the switch leads back to the page, not to the form's action)
    page.click("#lang-zh-CN")
    page.wait_for_selector("html[lang=zh-CN]")
    assert page.url.endswith("/models") and "留出集曲线" in page.inner_text("#curves")
    assert page.locator("#lead-time svg").count() == 2 and "完美校准" in page.inner_text("#calibration")
    _shot(page, "data_scientist_models_zh")
    ctx.close()
    assert outside == []

    # what the page showed is what the gate recorded on the version in the registry
    from models.gate import describe_versions

    last = next(v for v in describe_versions(app.state.settings) if v["version"] == worse)["history"][-1]
    assert last["decision"] == "refused" and last["via"] == "api:dana" and last["by"] == "dana"
    assert f"{last['figures']['challenger']['auc']:.4f}" == chal["auc"]
    assert f"{last['figures']['champion']['brier']:.4f}" == champ["brier"]


# -- the models page's curves, through the app (no browser), against what MLflow holds -------------
@pytest.fixture
def models_app(worse_registry, tmp_path):
    from fastapi.testclient import TestClient

    from tests.serving.conftest import StubSource

    home0, _, _, worse = worse_registry
    home = tmp_path / "home"
    shutil.copytree(home0, home)
    settings = Settings(home=home, database_url=f"sqlite:///{tmp_path / 'models.db'}")
    app = create_app(settings, model_source=StubSource("1"))
    with TestClient(app) as client:
        with app.state.sessions.begin() as s:
            token = add_user(s, "dana", ["data_scientist"])[1]
        r = client.post("/login", data={"token": token, "next": "/models"}, follow_redirects=False)
        assert r.status_code == 303
        yield client, settings, worse


def _points(html: str, chart_id: str, series: str, chart: int | None = None) -> list[tuple[float, float]]:
    """(x, y) of one series' points in a section's charts (all of them, or the `chart`-th only)."""
    # up to the next section's box (each chart sits in its own scroll box, with its data table)
    section = re.split(r'<div id="|</section>', html.split(f'id="{chart_id}"', 1)[1], maxsplit=1)[0]
    if chart is not None:
        section = section.split("<svg")[1 + chart]
    return [
        (float(x), float(y))
        for x, y in re.findall(
            rf'<circle [^>]*data-series="{series}" data-x="([^"]+)" data-y="([^"]+)"', section
        )
    ]


def test_models_page_draws_the_lead_time_curve_and_calibration_logged_with_the_run(models_app):
    import json

    from models import registry

    client, settings, worse = models_app
    mlflow_client = registry.configure(settings)
    for version in ("1", worse):
        run_id = mlflow_client.get_model_version(settings.model_name, version).run_id
        html = client.get(f"/models?version={version}").text
        assert f'data-version="{version}"' in html and "Not recorded for this version" not in html
        # the lead-time curve: one point per week of the period, the values MLflow holds for the run
        for series in ("model", "pacing", "logistic"):
            logged = [  # the AUC chart comes first, then the Brier chart
                (float(m.step), m.value)
                for measure in ("auc", "brier")
                for m in sorted(
                    mlflow_client.get_metric_history(run_id, f"lead_{series}_{measure}"), key=lambda m: m.step
                )
            ]
            drawn = _points(html, "lead-time", series)
            assert len(logged) >= 6 and len(drawn) == len(logged), series
            assert all(w == v and abs(a - b) < 1e-5 for (w, a), (v, b) in zip(drawn, logged, strict=True)), (
                series
            )
        # the calibration plot: the bins logged as evaluation/calibration_bins.json
        local = mlflow_client.download_artifacts(
            run_id, "evaluation/calibration_bins.json", str(settings.home)
        )
        bins = json.loads(open(local, encoding="utf-8").read())["models"]
        for series in ("model", "pacing", "logistic"):
            drawn = _points(html, "calibration", series)
            assert [round(x, 4) for x, _ in drawn] == [round(b["mean_risk"], 4) for b in bins[series]], series
            assert [round(y, 4) for _, y in drawn] == [round(b["observed"], 4) for b in bins[series]], series
    # the worse challenger's lead-time AUC trails the champion's (it learnt from shuffled outcomes)
    champion = _points(client.get("/models?version=1").text, "lead-time", "model", chart=0)
    challenger = _points(client.get(f"/models?version={worse}").text, "lead-time", "model", chart=0)
    assert sum(y for _, y in challenger) / len(challenger) < sum(y for _, y in champion) / len(champion)


def test_models_page_says_plainly_when_a_version_did_not_record_its_curves(models_app):
    from models import registry

    client, settings, _ = models_app
    mlflow_client = registry.configure(settings)
    source = mlflow_client.get_model_version(settings.model_name, "1").source
    # an older kind of version: its run logged neither the weekly metrics nor the calibration bins
    exp = mlflow_client.get_experiment_by_name(settings.experiment_name)
    bare = mlflow_client.create_run(exp.experiment_id)
    mlflow_client.log_metric(bare.info.run_id, "test_auc", 0.7)
    mlflow_client.set_terminated(bare.info.run_id)
    old = mlflow_client.create_model_version(settings.model_name, source, run_id=bare.info.run_id).version
    # and one registered by hand from a folder, without any run
    loose = settings.home / "loose-model"
    loose.mkdir()
    orphan_mv = mlflow_client.create_model_version(settings.model_name, loose.as_uri())
    assert orphan_mv.run_id is None
    orphan = orphan_mv.version
    for version in (old, orphan):
        r = client.get(f"/models?version={version}")
        assert r.status_code == 200
        assert f'data-version="{version}"' in r.text
        assert r.text.count("Not recorded for this version") == 2, version
        assert "<circle" not in r.text.split('id="curves"', 1)[1]
    client.cookies.set("rr_lang", "zh-CN")
    zh = client.get(f"/models?version={old}").text
    assert zh.count("该版本未记录") == 2
    # the aliases and the promotion history's time in the page's words and the tables' one form of a time
    versions = zh.split('id="versions"', 1)[1].split("</table>", 1)[0]
    assert "冠军" in versions and "champion" not in versions and "创建时间（UTC）" in versions
    promotions = zh.split('id="promotions"', 1)[1].split("</table>", 1)[0]
    assert "时间（UTC）" in promotions
    assert re.search(r"<tr><td>\d{4}-\d\d-\d\d \d\d:\d\d</td><td>1</td>", promotions), promotions
    assert "1（冠军" in zh.split('id="curves-version"', 1)[1].split("</select>", 1)[0]
    # an unknown version falls back to the champion's curves
    assert 'data-version="1"' in client.get("/models?version=999").text


@pytest.fixture
def small_site(tmp_path):
    """The service tests' small organisation (stub model, no training) under uvicorn, with its tokens."""
    from tests.serving.conftest import StubSource, make_settings, seed

    app = create_app(
        make_settings(tmp_path, f"sqlite:///{tmp_path / 'small.db'}"), model_source=StubSource("1")
    )
    with LiveServer(app) as server:
        tokens = seed(app)
        _judged_list(app)
        yield server.url, tokens


def _judged_list(app) -> None:
    """One earlier batch with its track record, so that the models page's widest table is on it (without the
    intervals of its precision and recall, as another release may have written it: the page shows it)."""
    import datetime as dt

    from serving import store
    from tests.serving.conftest import succeeded_job

    figures = {
        "model_version": "1",
        "period_start": "2024-01-01",
        "period_end": "2024-03-31",
        "n_scored": 1512,
        "n_known": 1497,
        "n_pending": 15,
        "n_missed": 341,
        "missed_share": 0.228,
        "mean_risk": 0.241,
        "brier": 0.108,
        "auc": 0.874,
        "auc_low": 0.85,
        "auc_high": 0.9,
        "pacing_auc": 0.699,
        "n_high": 191,
        "high_missed": 149,
        "precision": 0.78,
        "recall": 0.437,
    }
    succeeded_job(app, "0123456789abcdef0123456789abcdef", dt.date(2024, 1, 22))
    with app.state.sessions.begin() as s:
        store.save_track_records(
            s,
            {"0123456789abcdef0123456789abcdef": figures},
            judged_by="j2",
            judged_as_of=dt.date(2024, 4, 15),
        )


@pytest.mark.parametrize("width", [320, 375, 1440])
def test_pages_fit_the_screen_from_a_phone_to_a_desktop(small_site, browser, width):
    """No page scrolls sideways (wide tables scroll inside their card), the header keeps "Sign out"
    on its dark background, chart labels are not cut, and no page logs a console error."""
    base, tokens = small_site
    ctx = browser.new_context(viewport={"width": width, "height": 800})
    page = ctx.new_page()
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    for user, paths in (("mgr1", ["/team", "/reps/R1"]), ("hr", ["/org"]), ("ds", ["/models"])):
        _sign_in(page, base, tokens[user])
        page.wait_for_selector("main")
        for path in paths:
            page.goto(base + path)
            wide = page.evaluate("document.documentElement.scrollWidth")
            assert wide <= width, (path, wide)
            if path == "/models":  # its widest table, how the lists turned out, scrolls in its box
                assert page.locator("#track-table tr[data-job]").count() == 1
                assert "0.874 [0.85, 0.90]" in page.inner_text("#track-table")
            header = page.locator("header.top").bounding_box()
            out = page.locator("header.top form.inline button").bounding_box()
            assert header["y"] <= out["y"] and out["y"] + out["height"] <= header["y"] + header["height"], (
                path
            )
            assert out["x"] + out["width"] <= width, path
            _shot(page, f"fit_{width}_{path.strip('/').replace('/', '_')}")
        page.click("header.top form.inline button")
        page.wait_for_url(re.compile(r".*/login.*"))
    assert errors == []
    ctx.close()


def test_chinese_columns_are_not_squeezed_to_a_character_a_line_on_a_phone(small_site, browser):
    """Chinese breaks between any two characters, so a table narrower than the screen shrank its Chinese
    columns to one character a line; each cell of a list keeps at least five characters' width (the table
    scrolls inside its box instead). A browser set to Chinese gets the Chinese pages without a choice, and
    the page, not the browser, says what is wrong with a form."""
    base, tokens = small_site
    ctx, page = _rep_page(
        browser, base, tokens["mgr1"], viewport={"width": 375, "height": 800}, locale="zh-CN"
    )
    assert page.evaluate("document.documentElement.lang") == "zh-CN"
    # a field left empty is said by the page, in its language and naming the field, not by the
    # browser's bubble in the browser's own language ("Please fill out this field.")
    page.fill("#started_on", "")
    page.click("#record-form button[type=submit]")
    page.wait_for_selector("#form-errors", timeout=10_000)
    assert "开始日期：此项必填。" in page.inner_text("#form-errors")
    page.fill("#started_on", "2024-05-02")
    page.click("#record-form button[type=submit]")
    page.wait_for_selector("#intervention-log")
    for path in ("/team", "/reps/R1"):
        page.goto(base + path)
        narrow = page.evaluate(
            """() => [...document.querySelectorAll('table.list td, table.list th')]
                .filter(c => /[\u4e00-\u9fff]/.test(c.textContent))
                .filter(c => c.getBoundingClientRect().width < 5 * parseFloat(getComputedStyle(c).fontSize))
                .map(c => c.textContent.trim().slice(0, 20))"""
        )
        assert narrow == [], (path, narrow)
        assert page.evaluate("document.documentElement.scrollWidth") <= 375, path
    ctx.close()


def test_api_reference_pages_work_without_the_internet(small_site, browser):
    """/docs (Swagger UI) and /redoc draw the API from this service alone: every request the browser
    makes goes to the service (a company network without internet access gets the same pages), the
    pages' CSP holds (no violation in the console), and every operation is listed."""
    base, tokens = small_site
    ctx = browser.new_context()
    page = ctx.new_page()
    requests, errors = [], []
    page.on("request", lambda r: requests.append(r.url))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))

    page.goto(base + "/docs")
    page.wait_for_selector(".swagger-ui .info .title", timeout=30_000)
    assert "RepRadar" in page.inner_text(".swagger-ui .info .title")
    page.wait_for_selector(".opblock-tag-section", timeout=30_000)
    assert page.locator(".opblock").count() >= 20  # every route under /api/v1
    _shot(page, "api_docs_swagger")

    page.goto(base + "/redoc")
    page.wait_for_selector("h1", timeout=30_000)
    assert "RepRadar" in page.inner_text("h1")
    page.wait_for_function("document.body.textContent.includes('/api/v1/me')", timeout=30_000)
    _shot(page, "api_docs_redoc")

    assert requests and all(u.startswith(base) or u.startswith(("blob:", "data:")) for u in requests), [
        u for u in requests if not u.startswith(base)
    ]
    assert not [e for e in errors if "Content Security Policy" in e or "Refused" in e], errors
    # the scripts are cacheable files; the pages themselves carry the docs CSP
    import httpx

    for name in ("swagger-ui-bundle.js", "redoc.standalone.js"):
        js = httpx.get(f"{base}/docs/assets/{name}")
        assert js.status_code == 200 and "no-store" not in js.headers.get("cache-control", ""), name
    assert "cdn.redoc.ly" not in httpx.get(base + "/docs/assets/redoc.standalone.js").text
    assert "validatorUrl" in httpx.get(base + "/docs").text  # no badge from validator.swagger.io
    csp = httpx.get(base + "/docs").headers["content-security-policy"]
    assert "script-src 'self' 'sha256-" in csp and "unsafe-inline" not in csp.split("style-src")[0]
    ctx.close()


_LINES = """el => { const r = document.createRange(); r.selectNodeContents(el);
  return new Set([...r.getClientRects()].map(x => Math.round(x.top))).size; }"""


@pytest.mark.parametrize("width", [1024, 1280])
def test_the_logs_days_and_end_button_stay_on_one_line(small_site, browser, width):
    """In the intervention log, the start day and the "End" button of an ongoing entry read on one line
    (they were broken letter by letter, "E/n/d", beside a note), and a refused end day's message sits above
    its field without squeezing them."""
    base, tokens = small_site
    ctx, page = _rep_page(browser, base, tokens["mgr1"], viewport={"width": width, "height": 900})
    page.select_option("#intervention", "customer_service_training")
    page.fill("#started_on", "2024-01-16")
    page.fill("#note", "Talked on Monday; agreed a weekly 1:1 and a call review with the team lead")
    page.click("#record-form button[type=submit]")
    page.wait_for_selector("#intervention-log")
    for attempt in ("ok", "refused"):
        row = page.locator("#intervention-log tbody tr").first
        assert page.evaluate(_LINES, row.locator("td.day").first.element_handle()) == 1, attempt
        assert page.evaluate(_LINES, row.locator("form.end-form button").element_handle()) == 1, attempt
        _shot(page, f"log_end_{width}_{attempt}")
        row.locator("form.end-form input[type=date]").fill("2024-01-01")  # before the start: refused
        row.locator("form.end-form button").click()
        page.wait_for_selector("#intervention-log .field-error")
    message = page.locator("#intervention-log .field-error").bounding_box()
    field = page.locator("#intervention-log form.end-form input[type=date]").bounding_box()
    assert message["y"] + message["height"] <= field["y"] + 1  # above the field, not beside it
    ctx.close()


@pytest.mark.parametrize("width", [320, 375, 390, 1440])
def test_the_risk_trend_shows_its_newest_point_first_on_a_phone(small_site, browser, width):
    """The trend was wider than a phone (it scrolls inside its box) and opened on its oldest days, the newest
    point (today's risk) cut off at the right. Now it fits a phone of 375 px whole, scale included; on a
    narrower screen its box opens on the newest point; on a desktop it sits at the left of its card."""
    base, tokens = small_site
    ctx, page = _rep_page(browser, base, tokens["mgr1"], viewport={"width": width, "height": 800})
    box = page.locator("#trend").bounding_box()
    last = page.locator("#trend svg circle").last.bounding_box()
    first = page.locator("#trend svg circle").first.bounding_box()
    assert box["x"] <= last["x"] and last["x"] + last["width"] <= box["x"] + box["width"] + 0.5, (box, last)
    svg = page.locator("#trend svg").bounding_box()
    if width >= 375:  # it fits: the scale and both ends are seen, the chart on the left
        assert box["x"] <= first["x"] and abs(svg["x"] - box["x"]) < 1, (box, svg)
        assert page.evaluate(
            "document.querySelector('#trend').scrollWidth <= document.querySelector('#trend').clientWidth"
        )
    _shot(page, f"trend_{width}")
    ctx.close()


def test_the_record_form_sent_twice_records_one_intervention_however_late(small_site, browser, tmp_path):
    """The record form carries its own Idempotency-Key (a hidden field, new at each render): a manager who
    clicks "Record" and, the answer being slow, clicks again on the same form gets one entry, even when the
    second click comes after the 60 s double-submit rule has run out; a new render of the form is a new
    entry."""
    from sqlalchemy import create_engine, select
    from sqlalchemy.orm import Session

    from serving.db.schema import AuditEvent, InterventionLog

    base, tokens = small_site
    engine = create_engine(f"sqlite:///{tmp_path / 'small.db'}")  # small_site's database
    ctx, page = _rep_page(browser, base, tokens["mgr1"])
    key = page.get_attribute("#record-form input[name=idempotency_key]", "value")
    assert key and page.locator("#record-form input[type=hidden]").count() == 1
    page.select_option("#intervention", "mentoring")
    page.fill("#started_on", "2024-01-16")
    page.fill("#note", "sent twice")
    # the first click's answer is slow: the page stays on the form (its answer goes to a hidden frame)
    page.evaluate(
        """() => { document.body.insertAdjacentHTML('beforeend', '<iframe name="slow" hidden></iframe>');
                   document.querySelector('#record-form').target = 'slow'; }"""
    )
    posted = lambda r: r.request.method == "POST" and r.url.endswith("/reps/R1/interventions")  # noqa: E731
    with page.expect_response(posted) as first:
        page.click("#record-form button[type=submit]")
    assert first.value.status == 303
    with Session(engine) as s:  # ... and the second click comes two minutes later
        (entry,) = s.scalars(select(InterventionLog).where(InterventionLog.note == "sent twice")).all()
        entry.recorded_at -= dt.timedelta(minutes=2)
        entry_id = entry.id
        s.commit()
    page.evaluate("() => document.querySelector('#record-form').removeAttribute('target')")
    with page.expect_response(posted) as second:
        page.click("#record-form button[type=submit]")
    assert second.value.status == 303 and second.value.request.post_data == first.value.request.post_data
    page.wait_for_selector("#intervention-log")
    assert page.url.endswith(f"/reps/R1?recorded={entry_id}") and page.locator("p.flash").count() == 1
    assert page.locator("#intervention-log td.note", has_text="sent twice").count() == 1
    with Session(engine) as s:
        assert len(s.scalars(select(InterventionLog).where(InterventionLog.note == "sent twice")).all()) == 1
        events = s.scalars(
            select(AuditEvent).where(AuditEvent.action == "intervention.create").order_by(AuditEvent.id)
        ).all()
    assert [(e.outcome, e.detail["idempotency_key"], e.detail["id"]) for e in events] == [
        ("ok", key, entry_id),
        ("duplicate", key, entry_id),
    ]
    # the page after it is a new form: its own key, and the same values sent from it are a new entry
    again = page.get_attribute("#record-form input[name=idempotency_key]", "value")
    assert again and again != key
    page.select_option("#intervention", "mentoring")
    page.fill("#started_on", "2024-01-16")
    page.fill("#note", "sent twice")
    page.click("#record-form button[type=submit]")
    page.wait_for_selector("#intervention-log")
    assert page.locator("#intervention-log td.note", has_text="sent twice").count() == 2
    ctx.close()
    engine.dispose()
