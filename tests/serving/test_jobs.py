"""Batch jobs: deduplicated, persisted across restarts, failed (never running forever) when their worker dies.

Scoring itself is replaced by a stub here (the real model runs in test_service_e2e.py); everything
else (database, files, download, audit) is real.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import sqlite3
import threading
import time

import pandas as pd
import pytest

from repradar.errors import UserError
from serving.db.schema import Job
from serving.jobs import JobRunner

from .conftest import REPS, score_rows


@pytest.fixture
def data_dir(tmp_path):
    d = tmp_path / "data"
    d.mkdir()
    pd.DataFrame(REPS).to_csv(d / "reps.csv", index=False)
    return d


@pytest.fixture
def stub_scoring(monkeypatch):
    """JobRunner._score answers from the fixture org; a test may make it block or fail."""
    state = {"gate": None, "error": None, "calls": 0, "notes": [], "shift": 0.02}

    def fake(self, folder, as_of, model):
        state["calls"] += 1
        if state["gate"] is not None:
            state["gate"].wait(20)
        if state["error"] is not None:
            raise state["error"]
        frame = pd.DataFrame(score_rows(as_of, version=str(model.version), shift=state["shift"]))
        return frame, pd.DataFrame(REPS), list(state["notes"])

    monkeypatch.setattr(JobRunner, "_score", fake)
    return state


def _wait(c, h, job_id, status=("succeeded", "failed"), timeout=20):
    deadline = time.time() + timeout
    while True:
        body = c.get(f"/api/v1/jobs/{job_id}", headers=h).json()
        if body["status"] in status:
            return body
        assert time.time() < deadline, body
        time.sleep(0.05)


def test_job_runs_dedupes_and_serves_its_file(service_factory, data_dir, stub_scoring):
    svc = service_factory(data_dir=data_dir)
    c, h = svc.client, svc.h("hr")
    r = c.post("/api/v1/jobs", json={"as_of": "2024-01-22"}, headers=h)
    assert r.status_code == 201, r.text
    job = r.json()
    assert job["status"] in ("queued", "running") and job["model_version"] == "1"
    done = _wait(c, h, job["id"])
    assert done["status"] == "succeeded" and done["rows"] == 6 and done["download"]
    again = c.post("/api/v1/jobs", json={"as_of": "2024-01-22"}, headers=h)
    assert again.status_code == 200 and again.json()["id"] == job["id"]
    assert stub_scoring["calls"] == 1
    # the batch's rows are stored: the rep now shows the new as-of with a trend of three points
    rep = c.get("/api/v1/reps/R1", headers=h).json()
    assert rep["score"]["as_of"] == "2024-01-22" and rep["job_id"] == job["id"] and len(rep["trend"]) == 3
    parquet = c.get(done["download"], headers=h)
    assert parquet.status_code == 200
    assert len(pd.read_parquet(io.BytesIO(parquet.content))) == 6
    csv = c.get(done["download"], params={"format": "csv"}, headers=h)
    assert csv.status_code == 200 and csv.text.startswith("rep_id,manager_id")
    # another day, or another model version, is another job
    other = c.post("/api/v1/jobs", json={"as_of": "2024-01-29"}, headers=h).json()
    assert other["id"] != job["id"]
    _wait(c, h, other["id"])
    svc.source.version = "2"
    deadline = time.time() + 10
    while c.get("/api/v1/models/current", headers=h).json()["version"] != "2":
        assert time.time() < deadline
        time.sleep(0.05)
    v2 = c.post("/api/v1/jobs", json={"as_of": "2024-01-22"}, headers=h)
    assert v2.status_code == 201 and v2.json()["model_version"] == "2"
    listed = c.get("/api/v1/jobs", headers=h).json()["items"]
    assert len(listed) == 3
    # paged, newest first: pages of one go through the same three, and say how many there are
    pages = [c.get("/api/v1/jobs", params={"limit": 1, "offset": k}, headers=h).json() for k in range(4)]
    assert [p["total"] for p in pages] == [3] * 4 and [len(p["items"]) for p in pages] == [1, 1, 1, 0]
    assert [p["items"][0]["id"] for p in pages[:3]] == [j["id"] for j in listed]
    actions = [e["action"] for e in c.get("/api/v1/audit", params={"limit": 1000}, headers=h).json()["items"]]
    assert actions.count("job.create") == 3 and actions.count("job.reuse") == 1 and "job.download" in actions


def test_a_job_whose_file_was_lost_answers_410_and_runs_again(service_factory, data_dir, stub_scoring):
    """A restore without REPRADAR_HOME/jobs/ (docs: "a job whose file is lost answers 410"): the download
    was a 404, which says the job does not exist, and asking again handed back the same job."""
    from pathlib import Path

    svc = service_factory(data_dir=data_dir)
    c, h = svc.client, svc.h("hr")
    job = c.post("/api/v1/jobs", json={"as_of": "2024-01-22"}, headers=h).json()
    done = _wait(c, h, job["id"])
    with svc.app.state.sessions() as s:
        Path(s.get(Job, job["id"]).output_path).unlink()
    lost = c.get(done["download"], headers=h)
    assert lost.status_code == 410 and lost.json()["code"] == "gone", lost.text
    again = c.post("/api/v1/jobs", json={"as_of": "2024-01-22"}, headers=h)
    assert again.status_code == 201 and again.json()["id"] != job["id"]
    assert c.get(_wait(c, h, again.json()["id"])["download"], headers=h).status_code == 200


def test_failed_job_reports_why_and_can_be_asked_again(service_factory, data_dir, stub_scoring):
    svc = service_factory(data_dir=data_dir)
    c, h = svc.client, svc.h("hr")
    stub_scoring["error"] = UserError("as-of day 2030-01-01 is outside every quota period")
    job = c.post("/api/v1/jobs", json={"as_of": "2030-01-01"}, headers=h).json()
    failed = _wait(c, h, job["id"])
    assert failed["status"] == "failed" and "outside every quota period" in failed["error"]
    assert failed["error_code"] == "data"
    assert c.get(f"/api/v1/jobs/{job['id']}/scores", headers=h).status_code == 409
    stub_scoring["error"] = None
    retry = c.post("/api/v1/jobs", json={"as_of": "2030-01-01"}, headers=h)
    assert retry.status_code == 201 and retry.json()["id"] != job["id"]
    _wait(c, h, retry.json()["id"])
    # the list filtered by state: "the newest job that succeeded" is one request for a BI job
    for states, ids in ((["succeeded"], [retry.json()["id"]]), (["failed"], [job["id"]]), (["queued"], [])):
        page = c.get("/api/v1/jobs", params={"status": states}, headers=h).json()
        assert [j["id"] for j in page["items"]] == ids and page["total"] == len(ids), (states, page)
    both = c.get("/api/v1/jobs", params={"status": ["failed", "succeeded"]}, headers=h).json()
    assert both["total"] == 2
    assert c.get("/api/v1/jobs", params={"status": "done"}, headers=h).status_code == 422


def test_a_bug_while_scoring_is_an_internal_failure(service_factory, data_dir, stub_scoring):
    svc = service_factory(data_dir=data_dir)
    c, h = svc.client, svc.h("hr")
    stub_scoring["error"] = RuntimeError("disk on fire")
    job = c.post("/api/v1/jobs", json={"as_of": "2024-01-22"}, headers=h).json()
    failed = _wait(c, h, job["id"])
    assert failed["error_code"] == "internal" and "RuntimeError: disk on fire" in failed["error"]


def test_as_of_outside_the_quota_periods_is_refused_before_any_work(service_factory, data_dir, stub_scoring):
    pd.DataFrame(
        {
            "rep_id": ["R1", "R2"],
            "period_start": ["2024-01-01", "2024-04-01"],
            "period_end": ["2024-03-31", "2024-06-30"],
            "quota_amount": [100, 100],
        }
    ).to_csv(data_dir / "quotas.csv", index=False)
    svc = service_factory(data_dir=data_dir)
    c, h = svc.client, svc.h("hr")
    # after the last period: most often a new quarter whose quotas are not loaded yet, which it says
    for day, hint in (
        ("2023-12-31", ""),
        (
            "2024-07-01",
            "; if it falls in a new period, add that period's quota rows to the quotas table first",
        ),
    ):
        r = c.post("/api/v1/jobs", json={"as_of": day}, headers=h)
        assert r.status_code == 400, r.text
        assert r.json()["detail"] == (
            f"as_of {day} is outside the data: its quota periods run from 2024-01-01 to 2024-06-30; "
            "pick a day in that range" + hint
        )
    assert c.get("/api/v1/jobs", headers=h).json()["items"] == [] and stub_scoring["calls"] == 0
    for day in ("2024-01-01", "2024-06-30"):  # both ends are inside
        r = c.post("/api/v1/jobs", json={"as_of": day}, headers=h)
        assert r.status_code == 201, r.text
        _wait(c, h, r.json()["id"])


def test_too_many_unfinished_jobs_get_429(service_factory, data_dir, stub_scoring):
    svc = service_factory(data_dir=data_dir, max_queued_jobs=1)
    c, h = svc.client, svc.h("hr")
    stub_scoring["gate"] = threading.Event()
    first = c.post("/api/v1/jobs", json={"as_of": "2024-01-22"}, headers=h)
    assert first.status_code == 201
    r = c.post("/api/v1/jobs", json={"as_of": "2024-01-29"}, headers=h)
    assert r.status_code == 429 and "unfinished" in r.json()["detail"] and r.headers["Retry-After"]
    stub_scoring["gate"].set()
    _wait(c, h, first.json()["id"])


def test_no_data_folder_or_no_model(service_factory, tmp_path, data_dir, stub_scoring):
    from .conftest import StubSource

    svc = service_factory()
    h = svc.h("hr")
    r = svc.client.post("/api/v1/jobs", json={"as_of": "2024-01-22"}, headers=h)
    assert r.status_code == 409 and "REPRADAR_DATA_DIR" in r.json()["detail"]
    empty = tmp_path / "empty"
    empty.mkdir()
    r = service_factory(data_dir=empty).client.post("/api/v1/jobs", json={"as_of": "2024-01-22"}, headers=h)
    assert r.status_code == 409 and "no .csv" in r.json()["detail"]
    r = service_factory(data_dir=tmp_path / "missing").client.post(
        "/api/v1/jobs", json={"as_of": "2024-01-22"}, headers=h
    )
    assert r.status_code == 409 and "does not exist" in r.json()["detail"]
    no_model = service_factory(data_dir=data_dir, source=StubSource(None))
    r = no_model.client.post("/api/v1/jobs", json={"as_of": "2024-01-22"}, headers=h)
    assert r.status_code == 503 and "champion" in r.json()["detail"]


def _insert_job(app, job_id, status, worker, heartbeat):
    with app.state.sessions.begin() as s:
        s.add(
            Job(
                id=job_id,
                dedupe_key=job_id * 2,
                active_key=job_id * 2,
                data_dir="/data",
                data_digest="0" * 64,
                as_of=dt.date(2024, 1, 22),
                model_version="1",
                status=status,
                created_by="hr",
                created_at=heartbeat,
                heartbeat_at=heartbeat,
                worker=worker,
            )
        )


def test_jobs_of_a_dead_worker_are_failed_after_restart(service_factory, data_dir, stub_scoring):
    import socket

    svc = service_factory(data_dir=data_dir, job_stale_after_s=2.0)
    now = dt.datetime.now(dt.UTC)
    # a job of a process that died on this host, one of another host that stopped beating,
    # and one of another host that is still alive
    _insert_job(svc.app, "a" * 32, "running", f"{socket.gethostname()}:999999999:dead", now)
    _insert_job(svc.app, "b" * 32, "running", "elsewhere:1:x", now - dt.timedelta(seconds=30))
    _insert_job(svc.app, "c" * 32, "queued", "elsewhere:2:y", now + dt.timedelta(seconds=60))
    # a restart: a new service on the same database
    svc2 = service_factory(data_dir=data_dir, job_stale_after_s=2.0)
    h = svc.h("hr")
    a = svc2.client.get(f"/api/v1/jobs/{'a' * 32}", headers=h).json()
    b = svc2.client.get(f"/api/v1/jobs/{'b' * 32}", headers=h).json()
    c = svc2.client.get(f"/api/v1/jobs/{'c' * 32}", headers=h).json()
    assert a["status"] == "failed" and "stopped" in a["error"] and a["error_code"] == "worker_lost"
    assert b["status"] == "failed" and b["error_code"] == "worker_lost"
    assert c["status"] == "queued"  # its worker still beats


def test_stopping_the_service_fails_its_unfinished_jobs(service_factory, data_dir, stub_scoring, tmp_path):
    stub_scoring["gate"] = threading.Event()
    svc = service_factory(data_dir=data_dir)
    job = svc.client.post("/api/v1/jobs", json={"as_of": "2024-01-22"}, headers=svc.h("hr")).json()
    svc.client.__exit__(None, None, None)  # lifespan shutdown, as on SIGTERM
    stub_scoring["gate"].set()
    with svc.app.state.sessions() as s:
        row = s.get(Job, job["id"])
        assert row.status == "failed" and "service stopped" in row.error and row.active_key is None
        assert row.error_code == "stopped"


def _score_folder_on_the_fixture_rows(monkeypatch):
    """`models.scoring.score_folder` answering the fixture org's rows, with the notes it attaches to them
    (`score_notes` of the feature build and the model: fitted period, currency)."""
    from types import SimpleNamespace

    from models import scoring

    def score_folder(folder, as_of, settings, model=None):
        frame = pd.DataFrame(score_rows(as_of))
        frame.attrs["notes"] = scoring.score_notes(SimpleNamespace(notes=[], frame=frame), model, settings)
        return frame

    monkeypatch.setattr(scoring, "score_folder", score_folder)


def test_a_job_scoring_a_period_its_model_was_fitted_on_logs_that_the_risks_are_no_forecast(
    data_dir, monkeypatch, caplog, tmp_path
):
    """HR re-scoring last quarter's day after promoting a model trained on last quarter (a backfill for
    the trend) got in-sample risks stored over the out-of-sample ones without a word: `repradar score`
    prints the fitted-period note, the job said nothing. It now says it in the log, as it does the
    currency note; a period after the model's data says nothing."""
    import logging
    from types import SimpleNamespace

    from models.loading import LoadedModel
    from repradar.settings import Settings

    _score_folder_on_the_fixture_rows(monkeypatch)
    runner = JobRunner(Settings(home=tmp_path), sessions=None)

    def model(valid_window):
        meta = {"train_window": "2023-01-01..2023-09-30", "valid_window": valid_window}
        return LoadedModel("m", "3", SimpleNamespace(spec_=SimpleNamespace(currency="USD", meta=meta)))

    with caplog.at_level(logging.WARNING, logger="repradar.serving.jobs"):
        frame, _, notes = runner._score(data_dir, dt.date(2024, 1, 15), model("2024-01-01..2024-03-31"))
    assert len(frame) and (
        "the period 2024-01-01..2024-03-31 is in the data model version 3 was fitted and calibrated on"
        in caplog.text
    ), caplog.text
    assert [n for n in notes if "fitted and calibrated on" in n], notes  # kept with the job too
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="repradar.serving.jobs"):
        runner._score(data_dir, dt.date(2024, 1, 15), model("2023-10-01..2023-12-31"))
    assert "fitted and calibrated" not in caplog.text, caplog.text


def test_a_job_logs_the_notes_repradar_score_prints_with_its_scores(data_dir, monkeypatch, caplog, tmp_path):
    """A batch for a day after the export's last event (the weekly job run on today's date with last
    week's export) scored every rep as if nothing had happened since: on the simulated organisation the
    high band grew from 24 to 33 reps in four days without any new data. `repradar score` prints the
    note saying so; the job dropped every note of the scoring. It now logs each of them once."""
    import logging
    from types import SimpleNamespace

    from models import scoring
    from models.loading import LoadedModel
    from repradar.settings import Settings

    late = "as-of date 2024-01-15 is 4 day(s) after the latest event in the data (2024-01-10): features see nothing"

    def scored(folder, as_of, settings, model=None):
        frame = pd.DataFrame(score_rows(as_of))
        frame.attrs["notes"] = [late, "reps columns kept out of the model (attributes): gender."]
        return frame

    monkeypatch.setattr(scoring, "score_folder", scored)
    model = LoadedModel("m", "3", SimpleNamespace(spec_=SimpleNamespace(currency="USD")))
    with caplog.at_level(logging.WARNING, logger="repradar.serving.jobs"):
        *_, notes = JobRunner(Settings(home=tmp_path), sessions=None)._score(
            data_dir, dt.date(2024, 1, 15), model
        )
    assert caplog.text.count(late) == 1 and "kept out of the model" in caplog.text, caplog.text
    assert notes == [late, "reps columns kept out of the model (attributes): gender."]  # kept with the job


def test_a_job_keeps_what_the_scoring_said_and_shows_it_in_the_api_and_on_the_org_page(
    service_factory, data_dir, stub_scoring
):
    """The notes went only to the service's log, which HR does not read: a job for a day after the export's
    latest event raised every risk without a word where HR looks. The job now keeps them (`jobs.notes`)."""
    late = "as-of date 2024-01-22 is 4 day(s) after the latest event in the data (2024-01-17): features see nothing"
    stub_scoring["notes"] = [late]
    svc = service_factory(data_dir=data_dir)
    c, h = svc.client, svc.h("hr")
    job = c.post("/api/v1/jobs", json={"as_of": "2024-01-22"}, headers=h).json()
    done = _wait(c, h, job["id"])
    assert done["status"] == "succeeded" and done["notes"] == [late], done
    listed = c.get("/api/v1/jobs", headers=h).json()["items"]
    assert [j["notes"] for j in listed if j["id"] == job["id"]] == [[late]]
    token = h["Authorization"].split(" ", 1)[1]
    assert c.post("/login", data={"token": token, "next": "/"}, follow_redirects=False).status_code == 303
    for lang, lead in (
        ("en", "What the scoring (and the alerts, when the service sends them) said"),
        ("zh-CN", "评分时的说明"),
    ):
        c.get("/lang", params={"to": lang, "next": "/org"})
        page = c.get("/org").text
        row = page[page.index(f'data-job="{job["id"]}"') :]
        row = row[: row.index("</tr>")]
        assert lead in row and f'<li lang="en">{late}</li>' in row, row
    # a job without notes says nothing of them
    stub_scoring["notes"] = []
    other = c.post("/api/v1/jobs", json={"as_of": "2024-01-23"}, headers=h).json()
    assert _wait(c, h, other["id"])["notes"] == []


def test_a_job_scoring_with_a_model_of_another_currency_logs_why_its_texts_keep_the_model_s(
    data_dir, monkeypatch, caplog, tmp_path
):
    """The command line prints the note with the scores; a job has only the service's log to say it in."""
    import logging
    from types import SimpleNamespace

    from models.loading import LoadedModel
    from repradar.settings import Settings

    _score_folder_on_the_fixture_rows(monkeypatch)
    runner = JobRunner(Settings(home=tmp_path, currency="GBP"), sessions=None)
    euro_model = LoadedModel("m", "3", SimpleNamespace(spec_=SimpleNamespace(currency="EUR")))
    with caplog.at_level(logging.WARNING, logger="repradar.serving.jobs"):
        frame, _, notes = runner._score(data_dir, dt.date(2024, 1, 15), euro_model)
    assert (
        len(frame)
        and "model version 3 was trained on amounts in EUR, but REPRADAR_CURRENCY is GBP" in caplog.text
    )
    assert [n for n in notes if "REPRADAR_CURRENCY is GBP" in n], notes
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="repradar.serving.jobs"):
        JobRunner(Settings(home=tmp_path, currency="EUR"), sessions=None)._score(
            data_dir, dt.date(2024, 1, 15), euro_model
        )
    assert "REPRADAR_CURRENCY" not in caplog.text


@contextlib.contextmanager
def _jobs_table_locked(db_url: str):
    """Another client holds the jobs table (SQLite: the whole database) for writing: the service's writes
    to it wait out their timeout and fail, as while the database is down."""
    if db_url.startswith("sqlite"):
        con = sqlite3.connect(db_url.removeprefix("sqlite:///"), isolation_level=None)
        con.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            con.rollback()
            con.close()
        return
    from sqlalchemy import create_engine, text

    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            conn.execute(text("LOCK TABLE jobs IN ACCESS EXCLUSIVE MODE"))
            yield
            conn.rollback()
    finally:
        engine.dispose()


def test_a_job_whose_end_cannot_be_recorded_is_failed_once_the_database_is_back(
    service_factory, data_dir, stub_scoring, db_url
):
    """The database is unavailable when a job has scored (its success cannot be written, nor its failure):
    once it is back the job is reported failed, not `running` for as long as the service lives, its
    scores file is not left behind, and asking again runs the work again."""
    stub_scoring["gate"] = threading.Event()
    svc = service_factory(data_dir=data_dir, db_timeout_s=0.5, job_stale_after_s=1.0)
    c, h, runner = svc.client, svc.h("hr"), svc.app.state.runner
    job = c.post("/api/v1/jobs", json={"as_of": "2024-01-22"}, headers=h).json()
    with _jobs_table_locked(db_url):
        stub_scoring["gate"].set()
        runner._pool.submit(lambda: None).result(timeout=60)  # the job's thread has ended
    failed = _wait(c, h, job["id"])
    assert failed["status"] == "failed" and failed["error_code"] == "internal"
    assert "could not be recorded" in failed["error"] and "ask for it again" in failed["error"]
    assert not runner.output_path(job["id"]).exists()
    again = c.post("/api/v1/jobs", json={"as_of": "2024-01-22"}, headers=h)
    assert again.status_code == 201 and again.json()["id"] != job["id"]
    assert _wait(c, h, again.json()["id"])["status"] == "succeeded"


def test_a_heartbeat_during_a_database_outage_is_one_log_line_and_the_job_goes_on(
    service_factory, data_dir, stub_scoring, db_url, caplog
):
    """The heartbeat fails while the database is unavailable: one line in the log each time (before: a full
    traceback every JOB_HEARTBEAT_S, some 120 lines each), and the job finishes once it is back."""
    import logging

    stub_scoring["gate"] = threading.Event()
    svc = service_factory(data_dir=data_dir, db_timeout_s=0.5)
    c, h = svc.client, svc.h("hr")
    job = c.post("/api/v1/jobs", json={"as_of": "2024-01-22"}, headers=h).json()
    deadline = time.time() + 30
    while stub_scoring["calls"] == 0:  # running: its heartbeat writes
        assert time.time() < deadline
        time.sleep(0.05)

    def beats():
        return [r for r in caplog.records if r.getMessage().startswith("job heartbeat failed")]

    with caplog.at_level(logging.ERROR, logger="repradar.serving"), _jobs_table_locked(db_url):
        while not beats():
            assert time.time() < deadline + 30
            time.sleep(0.05)
    stub_scoring["gate"].set()
    assert all(r.exc_info is None for r in beats()), [r.exc_info for r in beats()]
    assert "the database is unavailable" in beats()[0].getMessage()
    assert _wait(c, h, job["id"])["status"] == "succeeded"


def test_a_job_still_scoring_is_not_failed_for_beats_it_missed(service_factory, data_dir, stub_scoring):
    """Its process missed heartbeats (the database was down longer than JOB_STALE_AFTER_S, here: beats
    far apart) while the job went on scoring: the next look at the jobs does not fail it, since this
    process knows it is alive; it finishes."""
    from serving.db.schema import utcnow

    stub_scoring["gate"] = threading.Event()
    svc = service_factory(data_dir=data_dir, job_heartbeat_s=600.0, job_stale_after_s=0.5)
    c, h = svc.client, svc.h("hr")
    job = c.post("/api/v1/jobs", json={"as_of": "2024-01-22"}, headers=h).json()
    deadline = time.time() + 30
    while True:  # its heartbeat is older than the stale limit
        with svc.session() as s:
            beat = s.get(Job, job["id"]).heartbeat_at
        beat = beat if beat.tzinfo else beat.replace(tzinfo=dt.UTC)  # SQLite keeps UTC without its zone
        if beat < utcnow() - dt.timedelta(seconds=1):
            break
        assert time.time() < deadline
        time.sleep(0.1)
    assert c.get(f"/api/v1/jobs/{job['id']}", headers=h).json()["status"] == "running"
    stub_scoring["gate"].set()
    assert _wait(c, h, job["id"])["status"] == "succeeded"


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # the file system's answer, not the database's
def test_a_job_is_refused_before_any_scoring_when_its_file_could_not_be_written(
    service_factory, data_dir, stub_scoring
):
    """A read-only REPRADAR_HOME failed the job only after its scoring, as an internal error. A file where
    the jobs folder should be stands for a read-only volume, which root would still write in."""
    svc = service_factory(data_dir=data_dir)
    jobs = svc.settings.resolved_home / "jobs"
    jobs.parent.mkdir(parents=True, exist_ok=True)
    jobs.write_text("not a folder")
    c, h = svc.client, svc.h("hr")
    r = c.post("/api/v1/jobs", json={"as_of": "2024-01-22"}, headers=h)
    assert r.status_code == 409, r.text
    assert r.json()["detail"] == (
        f"the service cannot store batch files ({jobs} is a file, not a folder); make {jobs} a folder the "
        "service's user may write to (or set REPRADAR_HOME to one) and ask again"
    )
    assert stub_scoring["calls"] == 0 and c.get("/api/v1/jobs", headers=h).json()["total"] == 0
    # the organisation page's form says it in the page's language, naming the folder
    token = h["Authorization"].split(" ", 1)[1]
    assert c.post("/login", data={"token": token, "next": "/"}, follow_redirects=False).status_code == 303
    page = c.post("/org/jobs", data={"as_of": "2024-01-22"}).text
    assert f"The service cannot store batch files in {jobs} (read-only" in page, page
    jobs.unlink()  # once it can be written, the same request runs
    r = c.post("/api/v1/jobs", json={"as_of": "2024-01-22"}, headers=h)
    assert r.status_code == 201 and _wait(c, h, r.json()["id"])["status"] == "succeeded"


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # the file system's error, not the database's
def test_a_job_whose_scores_file_meets_a_full_disk_says_so_and_leaves_nothing(
    service_factory, data_dir, stub_scoring, monkeypatch
):
    """A disk that filled while a job wrote its scores failed it as "internal error: OSError: [Errno 28]"
    (the check before the job sees an unwritable folder, not a full disk). It now says the disk is full,
    where, and what to do; the job's folder is removed and no score is stored. The disk is the machine's,
    not the product's: its error is raised by a stand-in for the write."""
    import errno

    import models.scoring

    real = models.scoring.write_scores
    disk = {"full": True}

    def write(frame, out):
        if disk["full"]:
            raise OSError(errno.ENOSPC, "No space left on device", str(out))
        return real(frame, out)

    monkeypatch.setattr(models.scoring, "write_scores", write)
    svc = service_factory(data_dir=data_dir)
    c, h = svc.client, svc.h("hr")
    before = c.get("/api/v1/early-warning", headers=h).json()
    r = c.post("/api/v1/jobs", json={"as_of": "2024-01-22"}, headers=h)
    job = _wait(c, h, r.json()["id"])
    jobs = svc.settings.resolved_home / "jobs"
    assert job["status"] == "failed" and job["error_code"] == "internal", job
    assert job["error"] == (
        f"the scores file could not be written in {jobs} (its disk is full); nothing of this job was stored: "
        "an administrator must free space on that disk or make it writable, then ask for the job again"
    )
    assert not (jobs / job["id"]).exists()
    assert c.get("/api/v1/early-warning", headers=h).json() == before  # no score stored
    disk["full"] = False  # space freed: the same request runs
    r = c.post("/api/v1/jobs", json={"as_of": "2024-01-22"}, headers=h)
    assert r.status_code == 201 and _wait(c, h, r.json()["id"])["status"] == "succeeded"


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # the page's words, not the database's
def test_the_org_page_names_a_started_or_reused_job_by_the_short_id_its_list_shows(
    service_factory, data_dir, stub_scoring
):
    """The confirmations said the 32-character id ("The same job exists already: 3cbf3d48...087d.") while the
    job list beside them shows 8; they now say the list's short id, and the job's row is marked, with
    its whole id kept in the row (the API's id, to find the job by)."""
    svc = service_factory(data_dir=data_dir)
    c, h = svc.client, svc.h("hr")
    token = h["Authorization"].split(" ", 1)[1]
    assert c.post("/login", data={"token": token, "next": "/"}, follow_redirects=False).status_code == 303
    started = c.post("/org/jobs", data={"as_of": "2024-01-22"})
    job = c.get("/api/v1/jobs", headers=h).json()["items"][0]
    _wait(c, h, job["id"])
    reused = c.post("/org/jobs", data={"as_of": "2024-01-22"})
    for page, said in (
        (started, f"Job {job['id'][:8]} started."),
        (reused, f"The same job exists already: {job['id'][:8]}."),
    ):
        assert f'<p class="flash" role="status">{said}</p>' in page.text, page.text
        row = page.text[page.text.index(f'<tr data-job="{job["id"]}"') :]
        row = row[: row.index("</tr>")]
        assert 'class="flashed" aria-current="true"' in row
        assert f'<td class="mono" title="{job["id"]}">{job["id"][:8]}</td>' in row


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # PostgreSQL's read-only: test_hardening.py
def test_a_job_whose_database_cannot_be_written_is_one_log_line_and_fails_once_it_can(
    service_factory, data_dir, stub_scoring, caplog, db_url
):
    """The database stops taking writes (read-only here; a full disk alike) while a job scores: storing its
    scores and then its failure both failed, logged as two tracebacks of an internal error. Now one line
    says why, and the job is failed (its file removed) once the database can be written again."""
    import logging

    from .conftest import stop_writes

    svc = service_factory(data_dir=data_dir, job_stale_after_s=1.0)
    c, h = svc.client, svc.h("hr")
    stub_scoring["gate"] = threading.Event()
    job = c.post("/api/v1/jobs", json={"as_of": "2024-01-22"}, headers=h).json()
    writable_again = stop_writes(svc, db_url, "read-only")
    caplog.set_level(logging.INFO, logger="repradar.serving.jobs")
    stub_scoring["gate"].set()
    runner, deadline = svc.app.state.runner, time.time() + 20
    while runner._live:  # the job's thread ended, its outcome not recorded
        assert time.time() < deadline
        time.sleep(0.05)
    lines = [r for r in caplog.records if r.name == "repradar.serving.jobs" and r.levelno >= logging.ERROR]
    assert [r.getMessage() for r in lines] == [
        f"batch job {job['id']}: its outcome could not be recorded: the service's database cannot be written "
        "(it is read-only); it is failed once the database can be written again"
    ] and not lines[0].exc_info
    said_failed = f"batch job {job['id']} failed (internal)"
    # nothing says "failed" while the job is still recorded as running
    assert not [r for r in caplog.records if r.getMessage().startswith(said_failed)]
    writable_again()
    failed = _wait(c, h, job["id"])
    assert failed["status"] == "failed" and failed["error_code"] == "internal", failed
    deadline = time.time() + 5  # the reaper's commit and its log line come from its own thread
    while not [r for r in caplog.records if r.getMessage().startswith(said_failed)]:
        assert time.time() < deadline, [r.getMessage() for r in caplog.records]
        time.sleep(0.05)
    assert not (svc.settings.resolved_home / "jobs" / job["id"]).exists()


def test_a_track_record_that_cannot_be_computed_is_one_log_line_and_the_job_still_succeeds(
    service_factory, data_dir, stub_scoring, caplog
):
    """The second job judges the first batch (its quarter ended before the second's day), but this data
    folder holds the reps table alone: no outcome can be read. The scores are what the job is for: it
    succeeds, says why in one warning, and no track record is stored."""
    svc = service_factory(data_dir=data_dir)
    c, h = svc.client, svc.h("hr")
    first = c.post("/api/v1/jobs", json={"as_of": "2024-01-22"}, headers=h).json()
    assert _wait(c, h, first["id"])["status"] == "succeeded"
    assert "could not be set against their outcomes" not in caplog.text  # nothing earlier to judge
    second = c.post("/api/v1/jobs", json={"as_of": "2024-04-15"}, headers=h).json()
    assert _wait(c, h, second["id"])["status"] == "succeeded"
    lines = [r for r in caplog.records if "could not be set against their outcomes" in r.getMessage()]
    assert len(lines) == 1 and lines[0].levelname == "WARNING" and "2024-04-15" in lines[0].getMessage()
    assert lines[0].exc_info is None  # one line, no traceback
    assert c.get("/api/v1/models/track-record", headers=svc.h("ds")).json() == {"items": []}


def test_with_job_alerts_each_new_batch_tells_managers_who_is_newly_high(
    service_factory, data_dir, stub_scoring, monkeypatch
):
    """REPRADAR_JOB_ALERTS: after a batch job succeeds, each manager with reps newly in the high band
    against the batch before gets the digest `repradar alerts` sends (here by webhook, to a local
    receiver); a batch with no news sends none, a backfill none either; what happened is a note on the
    job and an audit event. No channel configured is a note, never a failed job."""
    import json
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from sqlalchemy import select

    from serving.db.schema import AuditEvent

    received: list[dict] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's naming
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("REPRADAR_ALERTS_WEBHOOK_URL", f"http://127.0.0.1:{server.server_address[1]}/hook")
        svc = service_factory(data_dir=data_dir, job_alerts=True)
        c, h = svc.client, svc.h("hr")

        def job(day: str) -> dict:
            return _alerted_job(c, h, day)

        first = job("2024-01-22")  # no batch job before it: every high-band rep is news
        assert sorted(d["manager_id"] for d in received) == ["M1", "M2", "M9"]
        assert {r["rep_id"] for d in received for r in d["reps"]} == {"R1", "R3", "R9"}
        assert "webhook: sent 3" in first["notes"][-1]
        received.clear()
        stub_scoring["shift"] = 0.30  # R2 moves from medium into the high band; the others stay
        second = job("2024-01-29")
        assert [(d["manager_id"], [r["rep_id"] for r in d["reps"]]) for d in received] == [("M1", ["R2"])]
        assert (
            received[0]["reps"][0]["previous_band"] == "medium" and received[0]["reps"][0]["name"] == "Bo Two"
        )
        received.clear()
        backfill = job("2024-01-25")  # a day before the newest batch: old news
        assert received == [] and "backfill" in backfill["notes"][-1]
        with svc.app.state.sessions() as s:
            sent = {
                e.resource_id: e.detail
                for e in s.scalars(select(AuditEvent).where(AuditEvent.action == "alerts.send"))
            }
        assert sent[first["id"]]["digests"] == 3 and sent[first["id"]]["previous_job"] is None
        assert sent[second["id"]] == {
            "previous_job": first["id"],
            "digests": 1,
            "webhook": 1,
            "email": 0,
            "errors": 0,
        }
        assert sent[backfill["id"]] == {}
    finally:
        server.shutdown()
        server.server_close()
    # no channel: the job succeeds and says why nothing went out
    monkeypatch.delenv("REPRADAR_ALERTS_WEBHOOK_URL")
    stub_scoring["shift"] = 0.6  # news (M2 and R4 newly high) that no channel can carry
    assert "not sent: no alert channel is configured" in _alerted_job(c, h, "2024-02-05")["notes"][-1]


def _alerted_job(c, h, day: str) -> dict:
    """A job for `day`, once it has succeeded and its alerts have been dealt with (they follow the
    stored success): its API body."""
    r = c.post("/api/v1/jobs", json={"as_of": day}, headers=h)
    assert r.status_code == 201, r.text
    assert _wait(c, h, r.json()["id"])["status"] == "succeeded"
    deadline = time.time() + 20
    while True:
        body = c.get(f"/api/v1/jobs/{r.json()['id']}", headers=h).json()
        if body["notes"] and body["notes"][-1].startswith("alerts:"):
            return body
        assert time.time() < deadline, body
        time.sleep(0.05)


def test_a_job_without_a_day_scores_the_datas_newest_day(service_factory, data_dir, stub_scoring):
    """A scheduled call after each export (`POST /api/v1/jobs` with `{}`) scores the first day that sees
    the data's latest event, as the dashboard's day field proposes at most; asked again, the same job.
    Data whose newest day cannot be read is a 409 saying to give the day."""
    from sqlalchemy import select

    from serving.db.schema import AuditEvent

    svc = service_factory(data_dir=data_dir)
    c, h = svc.client, svc.h("hr")
    r = c.post("/api/v1/jobs", json={}, headers=h)  # only reps.csv: no quotas, no events
    assert r.status_code == 409 and "give as_of" in r.json()["detail"], r.text
    pd.DataFrame(
        {
            "rep_id": ["R1", "R1"],
            "period_start": ["2024-01-01", "2024-04-01"],
            "period_end": ["2024-03-31", "2024-06-30"],
            "quota_amount": [100.0, 100.0],
        }
    ).to_csv(data_dir / "quotas.csv", index=False)
    pd.DataFrame(
        {
            "opportunity_id": ["O1", "O2"],
            "rep_id": ["R1", "R1"],
            "created_date": ["2024-01-10", "2024-02-01"],
            "close_date": ["2024-02-20", "2024-05-30"],  # O2 is open: its close date is a plan, no event
            "stage": ["Closed Won", "Proposal"],
            "amount": [50.0, 80.0],
            "is_closed": [True, False],
            "is_won": [True, False],
        }
    ).to_csv(data_dir / "opportunities.csv", index=False)
    r = c.post("/api/v1/jobs", json={}, headers=h)
    assert r.status_code == 201, r.text
    assert r.json()["as_of"] == "2024-02-21"  # the day after the deal won on 2024-02-20
    assert _wait(c, h, r.json()["id"])["status"] == "succeeded"
    again = c.post("/api/v1/jobs", json={}, headers=h)
    assert again.status_code == 200 and again.json()["id"] == r.json()["id"]
    with svc.app.state.sessions() as s:
        created = s.scalars(select(AuditEvent).where(AuditEvent.action == "job.create")).all()
    assert [e.detail.get("as_of_chosen") for e in created] == ["newest"]


def test_a_report_that_cannot_be_made_after_the_job_is_a_warning_and_none_is_made_once_stopping(
    service_factory, tmp_path, caplog
):
    """REPRADAR_JOB_REPORTS never fails a job: a report its data cannot make (the folder is gone) is a
    warning in the log and no file, and the request for it then says why; a stopping service starts
    no report (made on the first request after the next start)."""
    from .conftest import add_finished_job

    svc = service_factory(job_reports="en,zh-CN")
    runner = svc.app.state.runner
    job_id = add_finished_job(svc.app, folder=tmp_path / "moved-away")
    with caplog.at_level("WARNING", logger="repradar.serving.jobs"):
        assert runner.prebuild_reports(job_id) == []
    said = [r.getMessage() for r in caplog.records if job_id in r.getMessage()]
    assert len(said) == 2 and all("could not be made" in m and "moved-away" in m for m in said), said
    assert not list((runner.jobs_dir / job_id).glob("report-*"))
    assert svc.client.get(f"/api/v1/jobs/{job_id}", headers=svc.h("hr")).json()["status"] == "succeeded"
    r = svc.client.get(f"/api/v1/jobs/{job_id}/report", headers=svc.h("hr"))
    assert r.status_code == 409 and "moved-away" in r.json()["detail"]
    caplog.clear()
    runner._stopping.set()
    with caplog.at_level("WARNING", logger="repradar.serving.jobs"):
        assert runner.prebuild_reports(job_id) == []
    assert not [r for r in caplog.records if job_id in r.getMessage()]  # not even tried
