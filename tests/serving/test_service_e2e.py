"""End to end with a real trained model: a batch job scores a simulated org, and a promotion hot-swaps
the champion while clients keep calling (zero failures; every response names the old or new version).
"""

from __future__ import annotations

import shutil
import threading
import time

import httpx
import pytest

from repradar.settings import Settings
from serving.app import create_app
from serving.auth import add_user

from .conftest import LiveServer

pytestmark = pytest.mark.slow


def _wait_ready(c, timeout=60):
    """/health/ready's answer once the champion is in: the first load goes on behind the start-up
    when it takes longer than serving.app.FIRST_LOAD_WAIT_S (as on a loaded machine), and the probe
    says not_ready meanwhile, by design."""
    deadline = time.time() + timeout
    while True:
        body = c.get("/health/ready").json()
        if body["status"] == "ready" or time.time() > deadline:
            return body
        time.sleep(0.2)


def _wait_job(c, h, job_id, timeout=180):
    deadline = time.time() + timeout
    while True:
        body = c.get(f"/api/v1/jobs/{job_id}", headers=h).json()
        if body["status"] in ("succeeded", "failed"):
            return body
        assert time.time() < deadline, body
        time.sleep(0.2)


def test_batch_job_then_hot_swap_under_load(trained, tmp_path, db_url):
    data, home0, as_of = trained
    home = tmp_path / "home"
    shutil.copytree(home0, home)  # the registry is changed by the promotion: work on a copy
    settings = Settings(home=home, database_url=db_url, data_dir=data, model_poll_s=0.2, job_heartbeat_s=0.5)
    app = create_app(settings)
    with LiveServer(app) as server:
        with app.state.sessions.begin() as s:
            hr = {"Authorization": f"Bearer {add_user(s, 'hr', ['hr'])[1]}"}
            ds = {"Authorization": f"Bearer {add_user(s, 'ds', ['data_scientist'])[1]}"}
        c = httpx.Client(base_url=server.url, timeout=60)
        assert _wait_ready(c) == {"status": "ready", "model_version": "1", "detail": None}

        # a real batch job with the champion
        job = c.post("/api/v1/jobs", json={"as_of": as_of.isoformat()}, headers=hr)
        assert job.status_code == 201, job.text
        done = _wait_job(c, hr, job.json()["id"])
        assert done["status"] == "succeeded", done
        assert done["model_version"] == "1" and done["rows"] > 0
        listed = c.get("/api/v1/early-warning", headers=hr).json()
        assert listed["as_of"] == as_of.isoformat() and listed["items"]
        rep_id = listed["items"][0]["rep_id"]
        rep = c.get(f"/api/v1/reps/{rep_id}", headers=hr).json()
        assert rep["score"]["model_version"] == "1" and rep["score"]["drivers"]
        assert rep["rep"]["name"]  # names come from the data folder's reps table

        # clients hammer the service while version 2 is promoted through the API
        stop = threading.Event()
        seen: list[list[tuple[int, str]]] = [[], []]
        errors: list[str] = []

        def client_loop(i: int) -> None:
            with httpx.Client(base_url=server.url, timeout=30) as cc:
                paths = [f"/api/v1/reps/{rep_id}", "/api/v1/early-warning", "/api/v1/models/current"]
                k = 0
                while not stop.is_set():
                    try:
                        r = cc.get(paths[k % len(paths)], headers=hr)
                        seen[i].append((r.status_code, r.headers.get("x-model-version", "")))
                    except Exception as exc:  # a dropped connection is a failure too
                        errors.append(repr(exc))
                    k += 1

        threads = [threading.Thread(target=client_loop, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        time.sleep(0.5)
        promoted = c.post("/api/v1/models/promote", json={"version": "2"}, headers=ds)
        assert promoted.status_code == 200, promoted.text
        assert promoted.json()["promoted"] is True
        deadline = time.time() + 60
        while not any(v == "2" for s_ in seen for _, v in s_[-5:]):
            assert time.time() < deadline, "version 2 never served"
            time.sleep(0.05)
        time.sleep(0.5)
        stop.set()
        for t in threads:
            t.join(30)

        assert not errors, errors[:3]
        for s_ in seen:
            assert s_ and all(status == 200 for status, _ in s_), [x for x in s_ if x[0] != 200][:3]
            versions = [v for _, v in s_]
            assert set(versions) <= {"1", "2"}
            assert "2" in versions
            first_new = versions.index("2")
            assert all(v == "2" for v in versions[first_new:]), "went back to the old model"
        assert c.get("/health/ready").json()["model_version"] == "2"
        audit = c.get("/api/v1/audit", params={"action": "model.promote"}, headers=hr).json()
        assert [(e["resource_id"], e["outcome"], e["actor"]) for e in audit["items"]] == [("2", "ok", "ds")]

        # the same (data, as-of) with the new champion is a new job
        again = c.post("/api/v1/jobs", json={"as_of": as_of.isoformat()}, headers=hr)
        assert again.status_code == 201 and again.json()["model_version"] == "2"
        _wait_job(c, hr, again.json()["id"])
        models = c.get("/api/v1/models", headers=ds).json()
        assert models["champion"] == "2" and models["serving_version"] == "2"
        assert {v["version"] for v in models["versions"]} == {"1", "2"}
        assert models["promotions"] and models["promotions"][0]["version"] == "2"
        c.close()


def test_promotion_refused_by_the_gate_is_409_with_figures(trained, tmp_path, monkeypatch):
    """A gate refusal is a 409 with the figures; forcing needs a reason (422 without)."""
    data, home0, _ = trained
    home = tmp_path / "home"
    shutil.copytree(home0, home)
    # Version 2 is version 1 again, so the real verdict would pass: make the gate refuse it.
    monkeypatch.setattr("models.gate.gate_decision", lambda *a, **k: (False, ["AUC below the champion's"]))
    settings = Settings(home=home, database_url=f"sqlite:///{tmp_path / 'db.sqlite'}")
    from fastapi.testclient import TestClient

    app = create_app(settings)
    with TestClient(app) as c:
        with app.state.sessions.begin() as s:
            ds = {"Authorization": f"Bearer {add_user(s, 'ds', ['data_scientist'])[1]}"}
        r = c.post("/api/v1/models/promote", json={"version": "2"}, headers=ds)
        assert r.status_code == 409, r.text
        body = r.json()
        assert body["promoted"] is False and "refused" in body["message"] and "challenger" in body["figures"]
        r = c.post("/api/v1/models/promote", json={"version": "2", "force": True}, headers=ds)
        assert r.status_code == 422 and "reason" in r.json()["detail"]
        r = c.post("/api/v1/models/promote", json={"version": "99"}, headers=ds)
        assert r.status_code == 404 and "no version '99'" in r.json()["detail"]


def test_a_dry_run_says_what_the_gate_would_decide_and_changes_nothing(trained, tmp_path, monkeypatch):
    """A data scientist comparing a version with the champion (the same held-out rows, the gate's
    figures) without promoting it or filling the promotion history: `dry_run` in the API, `--dry-run` on
    the command line (exit 0 would pass, 2 would be refused), "Check only" on the models page."""
    from fastapi.testclient import TestClient
    from sqlalchemy import select

    from models import registry
    from models.gate import HISTORY_TAG
    from serving.db.schema import AuditEvent
    from tests.conftest import run_cli

    data, home0, _ = trained
    home = tmp_path / "home"
    shutil.copytree(home0, home)
    settings = Settings(home=home, database_url=f"sqlite:///{tmp_path / 'db.sqlite'}")

    def registry_state():
        client = registry.configure(settings)
        tags = {v: client.get_model_version(settings.model_name, v).tags for v in ("1", "2")}
        history = {v: sorted(k for k in t if k.startswith(HISTORY_TAG)) for v, t in tags.items()}
        return registry.aliases_by_version(client, settings.model_name), history

    before = registry_state()
    app = create_app(settings)
    with TestClient(app) as c:
        with app.state.sessions.begin() as s:
            ds = {"Authorization": f"Bearer {add_user(s, 'ds', ['data_scientist'])[1]}"}
        r = c.post("/api/v1/models/promote", json={"version": "2", "dry_run": True}, headers=ds)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["dry_run"] is True and body["promoted"] is False
        assert body["figures"]["decision"] == "passed" and body["figures"]["champion_before"] == "1"
        assert {"challenger", "champion"} <= set(body["figures"]) and "would pass the gate" in body["message"]
        r = c.post(
            "/api/v1/models/promote",
            json={"version": "2", "dry_run": True, "force": True, "reason": "x"},
            headers=ds,
        )
        assert r.status_code == 422 and "takes no force" in r.text
        # the models page's "Check only" button: the verdict, said as a check
        browser = TestClient(app, base_url="http://testserver")
        assert browser.post("/login", data={"token": ds["Authorization"][7:]}).status_code == 200
        page = browser.post("/models/promote", data={"version": "2", "dry_run": "1"})
        assert page.status_code == 200 and 'id="gate-check"' in page.text
        assert "Version 2 would pass the gate (a check: nothing was recorded or changed)." in page.text
        assert 'id="gate-figures"' in page.text
        unknown = browser.post("/models/promote", data={"version": "7", "dry_run": "1"})
        assert (
            unknown.status_code == 404
            and "Not checked: " in unknown.text
            and "Not promoted" not in unknown.text
        )
        with app.state.sessions() as s:
            actions = {e.action for e in s.scalars(select(AuditEvent))}
        assert not {"model.promote_request", "model.promote"} & actions
    # the gate refusing: the same check says so, with the CLI's exit status for a refusal
    monkeypatch.setattr("models.gate.gate_decision", lambda *a, **k: (False, ["AUC below the champion's"]))
    r = run_cli(home, "promote", "--version", "2", "--dry-run")
    assert r.exit_code == 2, r.output
    assert "would be refused by the gate (dry run: nothing recorded, no alias moved)" in r.stderr
    assert "AUC below the champion's" in r.stderr and "--force" not in r.stderr
    assert run_cli(home, "promote", "--version", "2", "--dry-run", "--force", "--reason", "x").exit_code == 2
    assert registry_state() == before  # no alias moved, no attempt recorded


def test_a_later_batch_judges_the_earlier_lists_against_their_outcomes(trained, tmp_path, db_url, caplog):
    """Batch jobs with the real model: a list of the previous quarter's week 3, then one of this quarter;
    the second job sets the first list against that quarter's outcomes (the training label, as known on
    its as-of day) and the API and the models page show how it turned out. The first job, with no
    earlier list, judges nothing; a list of the running quarter is not judged."""
    import datetime as dt

    import pandas as pd
    from fastapi.testclient import TestClient
    from sklearn.metrics import roc_auc_score

    from features.build import period_outcomes
    from features.io import load_folder

    data, home0, as_of = trained
    home = tmp_path / "home"
    shutil.copytree(home0, home)
    starts = sorted(pd.read_parquet(data / "quotas.parquet")["period_start"].unique())
    earlier = (pd.Timestamp(starts[-2]) + pd.Timedelta(days=20)).date()  # week 3 of the quarter before
    settings = Settings(home=home, database_url=db_url, data_dir=data)
    app = create_app(settings)
    with TestClient(app) as c:
        with app.state.sessions.begin() as s:
            hr = {"Authorization": f"Bearer {add_user(s, 'hr', ['hr'])[1]}"}
            ds = {"Authorization": f"Bearer {add_user(s, 'ds', ['data_scientist'])[1]}"}
            mgr = {"Authorization": f"Bearer {add_user(s, 'm', ['manager'], manager_id='M001')[1]}"}
        _wait_ready(c)

        def job(day: dt.date) -> str:
            r = c.post("/api/v1/jobs", json={"as_of": day.isoformat()}, headers=hr)
            assert r.status_code == 201, r.text
            done = _wait_job(c, hr, r.json()["id"])
            assert done["status"] == "succeeded", done
            return r.json()["id"]

        first = job(earlier)
        assert c.get("/api/v1/models/track-record", headers=ds).json() == {"items": []}
        running = job(earlier + dt.timedelta(days=7))  # same quarter: not finished by `as_of` either
        assert c.get("/api/v1/models/track-record", headers=ds).json() == {"items": []}
        later = job(as_of)
        items = c.get("/api/v1/models/track-record", headers=ds).json()["items"]
        assert {i["job_id"] for i in items} == {first, running}
        got = next(i for i in items if i["job_id"] == first)
        assert got["as_of"] == earlier.isoformat() and got["judged_by"] == later
        assert got["judged_as_of"] == as_of.isoformat() and got["model_version"] == "1"
        # the trained model was fitted on that quarter: the list is no forecast, and says so
        assert got["in_sample"] is True and any("fitted and calibrated on" in n for n in got["notes"])
        # the figures are the training label's, on the reps of that list
        scores = pd.read_parquet(home / "jobs" / first / "scores.parquet")
        out = period_outcomes(load_folder(data, validate=False), as_of, since=earlier)
        out = out[pd.to_datetime(out["period_start"]) == pd.Timestamp(starts[-2])]
        joined = scores.merge(out[["rep_id", "missed", "attainment"]], on="rep_id")
        assert got["n_known"] == len(joined) > 20 and got["n_missed"] == int(joined["missed"].sum())
        assert got["n_pending"] == len(scores) - len(joined)
        if got["auc"] is not None:
            assert got["auc"] == pytest.approx(roc_auc_score(joined["missed"].astype(bool), joined["risk"]))
        assert sum(b["n"] for b in got["bins"]) == got["n_known"] and 0 <= got["ece"] < 1
        high = joined["risk_band"] == "high"
        assert got["n_high"] == int(high.sum()) and got["high_missed"] == int((high & joined["missed"]).sum())
        # HR and data scientists read it; a manager does not
        assert c.get("/api/v1/models/track-record", headers=hr).status_code == 200
        assert c.get("/api/v1/models/track-record", headers=mgr).status_code == 403
        # the data scientist's models page, signed in as the dashboard is
        browser = TestClient(app, base_url="http://testserver")
        assert browser.post("/login", data={"token": ds["Authorization"][7:]}).status_code == 200
        page = browser.get("/models").text
        table = page[
            page.index('id="track-record"') : page.index("</section>", page.index('id="track-record"'))
        ]
        assert f'data-job="{first}"' in table and earlier.isoformat() in table and as_of.isoformat() in table
        assert f"{got['n_known']:,}" in table and "in sample: the model was fitted on this period" in table
        assert "could not be set against their outcomes" not in caplog.text
        # served by another version, the lists of version 1 are judged by what its registry tags say it
        # was fitted on: the same verdict as its own spec's (the quarter before is its validation period)
        again = app.state.runner._judge_earlier(data, as_of, model=None).figures
        assert again[first]["in_sample"] is True and again[first]["auc"] == got["auc"]
        assert any("fitted and calibrated on" in n for n in again[first]["notes"])
        _check_the_report(c, app, later, {first, running}, hr, mgr)
        # each listed rep's history says how that quarter ended, as the later job's data knew it
        for rep in joined.sample(3, random_state=0).itertuples():
            items = c.get(f"/api/v1/reps/{rep.rep_id}/history", headers=hr).json()["items"]
            ended = {i["outcome"]["known_on"] for i in items if i["period_start"] == str(starts[-2])[:10]}
            assert ended == {as_of.isoformat()}
            outcome = next(i["outcome"] for i in items if i["period_start"] == str(starts[-2])[:10])
            assert outcome["missed"] == bool(rep.missed)
            assert outcome["attainment"] == pytest.approx(rep.attainment)
            assert all(i["outcome"] is None for i in items if i["period_start"] == str(starts[-1])[:10])


def _check_the_report(c, app, job_id: str, earlier_jobs: set[str], hr: dict, mgr: dict) -> None:
    """HR's report of a batch, made by the service on first request: the command line's report of the
    job's scores, with the earlier batches' lists in "how earlier scores turned out"; then served from
    the job's folder; in Chinese and as a PDF; audited; not for managers."""
    import json

    from sqlalchemy import select

    from serving.db.schema import AuditEvent

    url = f"/api/v1/jobs/{job_id}/report"
    assert c.get(f"/api/v1/jobs/{job_id}", headers=hr).json()["reports"] == []  # none made yet
    r = c.get(url, headers=hr)
    assert r.status_code == 200, r.text
    assert c.get(f"/api/v1/jobs/{job_id}", headers=hr).json()["reports"] == ["en"]
    assert r.headers["content-type"].startswith("text/html") and "inline" in r.headers["content-disposition"]
    assert "How earlier scores turned out" in r.text and "Fairness audit" in r.text
    folder = app.state.runner.jobs_dir / job_id
    made = (folder / "report-en.html").stat().st_mtime_ns
    figures = c.get(url, params={"format": "json"}, headers=hr).json()
    assert {row["as_of"][:10] for row in figures["track_record"]["table"]} == {
        c.get(f"/api/v1/jobs/{j}", headers=hr).json()["as_of"] for j in earlier_jobs
    }
    assert (folder / "report-en.html").stat().st_mtime_ns == made  # served, not made again
    again = c.get(url, params={"refresh": "true"}, headers=hr)  # made again on request
    assert again.status_code == 200 and (folder / "report-en.html").stat().st_mtime_ns != made
    zh = c.get(url, params={"lang": "zh-CN"}, headers=hr)
    assert zh.status_code == 200 and "公平性审计" in zh.text
    pdf = c.get(url, params={"format": "pdf"}, headers=hr)
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    assert c.get(url, headers=mgr).status_code == 403
    assert c.get(url, params={"format": "docx"}, headers=hr).status_code == 422
    with app.state.sessions() as s:
        reads = [e.detail for e in s.scalars(select(AuditEvent).where(AuditEvent.action == "job.report"))]
    assert [(d["format"], d["lang"], d.get("refresh")) for d in reads] == [
        ("html", "en", None),
        ("json", "en", None),
        ("html", "en", True),
        ("html", "zh-CN", None),
        ("pdf", "en", None),
    ]
    assert json.dumps(figures)  # strict JSON


def test_job_reports_are_made_after_the_job_and_an_erasure_meanwhile_remakes_them(
    trained, tmp_path, monkeypatch
):
    """REPRADAR_JOB_REPORTS: a batch job that succeeds has its report made in the background in each
    configured language, and HR's first request is served from that file (not made again). A report
    being made while `forget` rewrites the job's scores is thrown away and made again from the
    rewritten file, so that no erased rep stays in it."""
    import json

    from fastapi.testclient import TestClient

    from serving import reports, retention

    data, home0, as_of = trained
    home = tmp_path / "home"
    shutil.copytree(home0, home)
    # on SQLite only: the report reads the database as the request does (both kinds: the test above)
    db_url = f"sqlite:///{tmp_path / 'service.db'}"
    monkeypatch.setenv("REPRADAR_REPORT_CHROMIUM", str(tmp_path / "no-chromium"))  # no PDF: the test above
    settings = Settings(home=home, database_url=db_url, data_dir=data, job_reports="zh-CN, en")
    app = create_app(settings)
    with TestClient(app) as c:
        with app.state.sessions.begin() as s:
            hr = {"Authorization": f"Bearer {add_user(s, 'hr', ['hr'])[1]}"}
        _wait_ready(c)
        r = c.post("/api/v1/jobs", json={"as_of": as_of.isoformat()}, headers=hr)
        assert r.status_code == 201, r.text
        job_id = r.json()["id"]
        assert _wait_job(c, hr, job_id)["status"] == "succeeded"
        folder = app.state.runner.jobs_dir / job_id
        made = [folder / f"report-{lang}.{ext}" for lang in ("en", "zh-CN") for ext in ("html", "json")]
        deadline = time.time() + 300
        while not all(p.exists() for p in made):
            assert time.time() < deadline, sorted(p.name for p in folder.iterdir())
            time.sleep(0.5)
        stamps = [p.stat().st_mtime_ns for p in made]
        zh = c.get(f"/api/v1/jobs/{job_id}/report", params={"lang": "zh-CN"}, headers=hr)
        assert zh.status_code == 200 and "公平性审计" in zh.text
        assert c.get(f"/api/v1/jobs/{job_id}/report", headers=hr).status_code == 200
        assert [p.stat().st_mtime_ns for p in made] == stamps  # served as made, not made again
        listed = c.get("/api/v1/jobs", headers=hr).json()["items"]
        assert [j["reports"] for j in listed] == [["en", "zh-CN"]]
        browser = TestClient(app, base_url="http://testserver")
        assert browser.post("/login", data={"token": hr["Authorization"][7:]}).status_code == 200
        page = browser.get("/org").text
        assert f'href="/org/jobs/{job_id}/report" title="' in page and 'data-ready="true"' in page
        assert "already made, it opens at once" in page

        # an erasure lands while the report is being made: the build is repeated on the rewritten file
        scores_path = folder / "scores.parquet"
        import pandas as pd

        rows = pd.read_parquet(scores_path)
        erased = str(rows["rep_id"].iloc[0])
        real_build = reports._build
        counted = []  # the reps each build's figures count

        def build_then_erase(*args, **kwargs):
            real_build(*args, **kwargs)
            counted.append(json.loads(args[4].with_suffix(".json").read_text())["summary"]["reps"])
            if len(counted) == 1:
                retention.rewrite_files([scores_path], erased)  # what `forget` does to the job's files

        monkeypatch.setattr(reports, "_build", build_then_erase)
        again = c.get(
            f"/api/v1/jobs/{job_id}/report", params={"format": "json", "refresh": "true"}, headers=hr
        )
        assert again.status_code == 200, again.text
        assert counted == [len(rows), len(rows) - 1]
        assert again.json()["summary"]["reps"] == len(rows) - 1
        # erasures during both builds: no report is left, and the request says so (409, not a 5xx)
        left = [str(r) for r in pd.read_parquet(scores_path)["rep_id"]]

        def erase_each_time(*args, **kwargs):
            real_build(*args, **kwargs)
            retention.rewrite_files([scores_path], left.pop())

        monkeypatch.setattr(reports, "_build", erase_each_time)
        twice = c.get(f"/api/v1/jobs/{job_id}/report", params={"refresh": "true"}, headers=hr)
        assert (
            twice.status_code == 409 and "changed twice while its report was made" in twice.json()["detail"]
        )
        assert not list(folder.glob("report-en.*"))
