"""The report end to end: self-contained HTML with every section, opened in Chromium (screenshot
saved under tests/artifacts/), a PDF that renders, and the `report` / `alerts` commands."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.reporting.conftest import AS_OF, TRAIN_AS_OF, run_cli

pytestmark = pytest.mark.slow
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
CHROMIUM = Path("/usr/bin/chromium")


def test_html_is_self_contained_with_every_section(fair_report):
    html = fair_report.html.read_text()
    for section in ("summary", "suggestions", "fairness", "drift", "effects", "model"):
        assert f'id="{section}"' in html, section
    # nothing is loaded from elsewhere: no external src/href, no scripts, no @import or url() to the web
    assert not re.search(r'(src|href)="(https?:)?//', html)
    assert "<script" not in html and "@import" not in html and "url(http" not in html
    assert html.count('src="data:image/svg+xml;base64,') >= 5
    assert "This is observational." in html and "four-fifths rule" in html
    assert 'id="heldout-metrics"' in html and 'id="model-card"' in html and "held-out" in html
    assert 'data-column="gender"' in html and 'data-column="region"' in html
    for by in ("manager_id", "team", "region", "segment"):
        assert f'data-by="{by}"' in html
    figures = json.loads(fair_report.json.read_text())
    assert figures["model"]["version"] == "1" and figures["summary"]["reps"] > 800
    assert {a["column"] for a in figures["fairness"]["attributes"]} == {"gender", "age_band", "region"}


def test_pdf_renders(fair_report):
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (packages.apt lists it)")
    assert fair_report.pdf_error is None and fair_report.pdf is not None
    data = fair_report.pdf.read_bytes()
    assert data.startswith(b"%PDF-") and b"%%EOF" in data[-1024:]
    if shutil.which("pdftoppm"):
        out = ARTIFACTS / "report_page"
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["pdftoppm", "-png", "-r", "50", "-f", "1", "-l", "2", str(fair_report.pdf), str(out)],
            check=True,
            timeout=60,
        )
        pages = sorted(ARTIFACTS.glob("report_page*.png"))
        assert pages and all(p.stat().st_size > 5000 for p in pages)
    if shutil.which("pdfinfo"):
        info = subprocess.run(
            ["pdfinfo", str(fair_report.pdf)], capture_output=True, text=True, check=True
        ).stdout
        assert int(re.search(r"Pages:\s+(\d+)", info).group(1)) >= 4


def test_html_opens_in_chromium_and_is_screenshotted(fair_report):
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (packages.apt lists it)")
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "report.png"
    requests = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            page.on("request", lambda r: requests.append(r.url))
            page.goto(fair_report.html.resolve().as_uri())
            page.wait_for_load_state("load")
            assert page.title().startswith("RepRadar quarterly report")
            assert page.locator("#callouts").is_visible()
            # every chart decoded to a real picture
            sizes = page.eval_on_selector_all(
                "img.chart", "imgs => imgs.map(i => [i.complete, i.naturalWidth])"
            )
            assert sizes and all(done and w > 100 for done, w in sizes)
            assert page.locator("table.fairness").count() == 3
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    assert shot.stat().st_size > 20_000
    assert all(u.startswith(("file:", "data:")) for u in requests), requests


def test_report_command(home, train_org, train_tables, model, settings, tmp_path):
    from models.scoring import score_tables, write_scores

    fair_org = train_org  # the small organisation keeps this end-to-end run short
    scores = write_scores(
        score_tables(train_tables, TRAIN_AS_OF, model, settings), tmp_path / "scores.parquet"
    )
    r = run_cli(
        home,
        "report",
        "--scores",
        str(scores),
        "--data",
        str(fair_org),
        "--out",
        str(tmp_path / "q.html"),
        "--no-pdf",
    )
    assert r.exit_code == 0, r.stdout + r.stderr
    assert (
        (tmp_path / "q.html").exists()
        and (tmp_path / "q.json").exists()
        and not (tmp_path / "q.pdf").exists()
    )
    assert (
        "wrote" in r.stdout
        and "fairness" in r.stdout.lower()
        and "drift: no feature beyond PSI 0.2" in r.stdout
    )
    bad = run_cli(
        home, "report", "--scores", str(scores), "--data", str(fair_org), "--out", str(tmp_path / "q.txt")
    )
    assert bad.exit_code == 2 and ".html" in bad.stderr
    missing = run_cli(
        home,
        "report",
        "--scores",
        str(tmp_path / "nope.parquet"),
        "--data",
        str(fair_org),
        "--out",
        str(tmp_path / "x.html"),
    )
    assert missing.exit_code == 2 and "nope.parquet" in missing.stderr


def test_alerts_command_dry_run_then_remembers_the_batch(home, fair_scores, tmp_path):
    from models.scoring import write_scores

    now = write_scores(fair_scores, tmp_path / "now.parquet")
    prev_frame = fair_scores.copy()
    prev_frame["risk_band"] = "low"
    prev = write_scores(prev_frame, tmp_path / "prev.parquet")
    r = run_cli(
        home,
        "alerts",
        "--scores",
        str(now),
        "--previous",
        str(prev),
        "--dry-run",
        "--out",
        str(tmp_path / "d"),
    )
    assert r.exit_code == 0, r.stdout + r.stderr
    n_high_managers = fair_scores.loc[fair_scores["risk_band"] == "high", "manager_id"].nunique()
    assert len(list((tmp_path / "d").glob("digest_*.json"))) == n_high_managers
    # a real run needs a channel
    r = run_cli(home, "alerts", "--scores", str(now), "--previous", str(prev))
    assert r.exit_code == 2 and "REPRADAR_ALERTS_WEBHOOK_URL" in r.stderr
    assert (
        str(AS_OF)
        in (tmp_path / "d" / sorted(p.name for p in (tmp_path / "d").glob("*.json"))[0]).read_text()
    )
