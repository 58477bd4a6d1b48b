"""Retention (`repradar purge`) and erasure (`repradar forget`) on a real database and real batch files.

Scoring inside the batch job is a stub (as in test_jobs.py); the database, the files, the API and the
audit trail are real.
"""

from __future__ import annotations

import datetime as dt
import time

import pandas as pd
import pyarrow.parquet as pq
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from repradar.errors import UserError
from serving import admin, store
from serving.db.schema import AuditEvent, Job, PeriodOutcome
from serving.jobs import JobRunner

from .conftest import AS_OF_2, REPS, score_rows

JOB_DAY = "2024-01-22"


@pytest.fixture
def svc(service_factory, tmp_path, monkeypatch):
    """A service with two seeded batches (AS_OF_1, AS_OF_2) and a finished job on JOB_DAY with its file."""

    def fake(self, folder, as_of, model):
        return pd.DataFrame(score_rows(as_of, version=str(model.version))), pd.DataFrame(REPS), []

    monkeypatch.setattr(JobRunner, "_score", fake)
    data = tmp_path / "data"
    data.mkdir()
    pd.DataFrame(REPS).to_csv(data / "reps.csv", index=False)
    s = service_factory(data_dir=data)
    h = s.h("hr")
    job = s.client.post("/api/v1/jobs", json={"as_of": JOB_DAY}, headers=h).json()
    deadline = time.time() + 20
    while (body := s.client.get(f"/api/v1/jobs/{job['id']}", headers=h).json())["status"] != "succeeded":
        assert body["status"] != "failed" and time.time() < deadline, body
        time.sleep(0.05)
    s.job_id = job["id"]
    return s


def _log(s, rep, started, ended=None):
    body = {"intervention": "mentoring", "started_on": started, "ended_on": ended, "note": f"{started}"}
    r = s.client.post(f"/api/v1/reps/{rep}/interventions", json=body, headers=s.h("mgr1"))
    assert r.status_code == 201, r.text


def _outcomes(s, *rows):
    """Period outcomes as a batch job that judged earlier lists stores them."""
    with s.app.state.sessions.begin() as session:
        store.save_outcomes(
            session,
            [
                {"rep_id": rep, "period_start": start, "period_end": end, "attainment": 0.8, "missed": True}
                for rep, start, end in rows
            ],
            judged_by=s.job_id,
            known_on=dt.date(2024, 1, 22),
        )


def _stored_outcomes(s) -> set[tuple[str, dt.date]]:
    with s.session() as session:
        return {(o.rep_id, o.period_start) for o in session.scalars(select(PeriodOutcome))}


def _audit(s):
    with s.session() as session:
        return session.scalars(select(AuditEvent).order_by(AuditEvent.id)).all()


def test_purge_deletes_old_scores_files_and_ended_entries_and_keeps_the_trail(svc):
    c, h = svc.client, svc.h("hr")
    _log(svc, "R1", "2024-01-02", "2024-01-10")
    _log(svc, "R1", "2024-01-05")  # open-ended: still going on, never purged
    _log(svc, "R2", "2024-01-03", "2024-02-01")
    q4, q1 = (dt.date(2023, 10, 1), dt.date(2023, 12, 31)), (dt.date(2024, 1, 1), dt.date(2024, 3, 31))
    _outcomes(svc, ("R1", *q4), ("R2", *q4), ("R2", *q1))
    trail_before = len(_audit(svc))

    preview = admin.purge(svc.settings, AS_OF_2, dry_run=True)
    assert (preview.scores, preview.current, preview.interventions, len(preview.job_files)) == (6, 0, 1, 0)
    assert preview.outcomes == 2 and len(_stored_outcomes(svc)) == 3  # periods that ended before the day
    assert len(c.get("/api/v1/reps/R1/history", headers=h).json()["items"]) == 3  # a dry run changes nothing

    out = admin.purge(svc.settings, AS_OF_2, dry_run=False)
    assert (out.scores, out.current, out.interventions, out.outcomes) == (6, 0, 1, 2)
    assert _stored_outcomes(svc) == {("R2", q1[0])}  # a period still running on the day is kept
    days = [i["as_of"] for i in c.get("/api/v1/reps/R1/history", headers=h).json()["items"]]
    assert days == [JOB_DAY, AS_OF_2.isoformat()]
    entries = c.get("/api/v1/reps/R1/interventions", headers=h).json()["items"]
    assert [e["started_on"] for e in entries] == ["2024-01-05"]
    assert (
        len(c.get("/api/v1/early-warning", headers=h).json()["items"]) == 6
    )  # the newest batch is untouched

    # everything before the job's day: its rows were everyone's current score, and its file goes too,
    # with the reports made of it (serving.reports)
    folder = svc.settings.resolved_home / "jobs" / svc.job_id
    reports = [folder / "report-en.html", folder / "report-en.json", folder / "report-zh-CN.pdf"]
    for r in reports:
        r.write_text("made of the job's scores")
    files = list(folder.glob("scores.*")) + reports
    out = admin.purge(svc.settings, pd.Timestamp("2024-01-23").date(), dry_run=False)
    assert (out.scores, out.current, out.interventions, len(out.job_files)) == (12, 6, 0, 4)
    assert not any(p.exists() for p in files)
    assert c.get("/api/v1/early-warning", headers=h).json()["items"] == []
    assert c.get("/api/v1/reps/R1", headers=h).status_code == 404
    job = c.get(f"/api/v1/jobs/{svc.job_id}", headers=h).json()
    assert job["status"] == "succeeded" and job["download"] is None
    gone = c.get(f"/api/v1/jobs/{svc.job_id}/scores", headers=h)
    assert gone.status_code == 410 and "retention purge" in gone.json()["detail"]
    # "run the job again": asking for the same day again runs a new job (it answered the purged one,
    # whose file could never come back), audited as replacing it
    again = c.post("/api/v1/jobs", json={"as_of": JOB_DAY}, headers=h)
    assert again.status_code == 201 and again.json()["id"] != svc.job_id, again.text
    deadline = time.time() + 20
    while (body := c.get(f"/api/v1/jobs/{again.json()['id']}", headers=h).json())["status"] != "succeeded":
        assert body["status"] != "failed" and time.time() < deadline, body
        time.sleep(0.05)
    assert c.get(body["download"], headers=h).status_code == 200
    assert c.post("/api/v1/jobs", json={"as_of": JOB_DAY}, headers=h).json()["id"] == body["id"]  # deduped
    (created,) = [e for e in _audit(svc) if e.action == "job.create" and e.resource_id == body["id"]]
    assert created.detail["replaces"] == svc.job_id
    assert [e["started_on"] for e in c.get("/api/v1/reps/R2/interventions", headers=h).json()["items"]] == [
        "2024-01-03"  # ended 2024-02-01: not before the day
    ]

    trail = _audit(svc)
    assert len(trail) > trail_before  # nothing of the trail was deleted, and the purges are in it
    purges = [e for e in trail if e.action == "data.purge"]
    assert [p.detail["before"] for p in purges] == [AS_OF_2.isoformat(), "2024-01-23"]
    assert purges[1].detail["scores"] == 12 and purges[1].actor.startswith("cli:")
    assert purges[0].detail["outcomes"] == 2 and purges[1].detail["outcomes"] == 0
    assert _stored_outcomes(svc) == {("R2", q1[0])}


def test_a_job_s_file_is_found_in_the_home_the_service_runs_in_not_the_one_it_ran_in(svc, tmp_path):
    """A home copied or moved to another path kept the absolute path of each batch file: the download served
    the old home's file (and wrote its CSV copy there), and a purge deleted the old home's files while the
    copy's own, holding the same reps, stayed. Both now use the job's file under the current home."""
    from sqlalchemy import update

    c, h = svc.client, svc.h("hr")
    here = svc.settings.resolved_home / "jobs" / svc.job_id / "scores.parquet"
    elsewhere = tmp_path / "old-home" / "jobs" / svc.job_id / "scores.parquet"
    elsewhere.parent.mkdir(parents=True)
    elsewhere.write_bytes(b"the old home's file")
    with svc.session() as session:
        session.execute(update(Job).where(Job.id == svc.job_id).values(output_path=str(elsewhere)))
        session.commit()
    got = c.get(f"/api/v1/jobs/{svc.job_id}/scores", headers=h)
    assert got.status_code == 200 and got.content == here.read_bytes()
    csv = c.get(f"/api/v1/jobs/{svc.job_id}/scores", params={"format": "csv"}, headers=h)
    assert csv.status_code == 200 and here.with_suffix(".csv").exists()
    assert not elsewhere.with_suffix(".csv").exists()
    out = admin.purge(svc.settings, pd.Timestamp("2024-01-23").date(), dry_run=False)
    assert sorted(out.job_files) == sorted([here, here.with_suffix(".csv")])
    assert not here.exists() and not here.with_suffix(".csv").exists()
    assert elsewhere.read_bytes() == b"the old home's file"  # another home's file is not this service's


def test_forget_erases_a_rep_everywhere_but_the_trail(svc):
    c, h = svc.client, svc.h("hr")
    _log(svc, "R1", "2024-01-05")
    assert c.get(f"/api/v1/jobs/{svc.job_id}/scores", params={"format": "csv"}, headers=h).status_code == 200
    folder = svc.settings.resolved_home / "jobs" / svc.job_id
    assert (folder / "scores.csv").exists()
    (folder / "report-en.html").write_text("counts R1 in its figures")  # made again without R1 when asked

    q4 = (dt.date(2023, 10, 1), dt.date(2023, 12, 31))
    _outcomes(svc, ("R1", *q4), ("R2", *q4))
    preview = admin.forget(svc.settings, "R1", dry_run=True)
    assert (preview.scores, preview.current, preview.interventions, preview.directory) == (3, 1, 1, 1)
    assert preview.outcomes == 1
    assert preview.job_files == [folder / "scores.parquet"]
    assert c.get("/api/v1/reps/R1", headers=h).status_code == 200

    admin.forget(svc.settings, "R1", dry_run=False)
    assert c.get("/api/v1/reps/R1", headers=h).status_code == 404
    assert c.get("/api/v1/reps/R1/history", headers=h).status_code == 404
    assert "R1" not in [i["rep_id"] for i in c.get("/api/v1/early-warning", headers=h).json()["items"]]
    assert "R1" not in [
        i["rep_id"] for i in c.get("/api/v1/early-warning", headers=svc.h("mgr1")).json()["items"]
    ]
    table = pq.read_table(folder / "scores.parquet")
    assert table.num_rows == 5 and "R1" not in table.column("rep_id").to_pylist()
    assert not (folder / "scores.csv").exists()  # remade without R1 on the next download
    assert not (folder / "report-en.html").exists()
    assert c.get(f"/api/v1/jobs/{svc.job_id}", headers=h).json()["rows"] == 5
    csv = c.get(f"/api/v1/jobs/{svc.job_id}/scores", params={"format": "csv"}, headers=h)
    assert csv.status_code == 200 and "\nR1," not in csv.text and "\nR2," in csv.text
    assert len(c.get("/api/v1/reps/R2/history", headers=h).json()["items"]) == 3  # others untouched
    assert _stored_outcomes(svc) == {("R2", q4[0])}

    trail = _audit(svc)
    forgot = [e for e in trail if e.action == "rep.forget"]
    assert len(forgot) == 1 and forgot[0].resource_id == "R1" and forgot[0].detail["scores"] == 3
    assert any(
        e.action == "intervention.create" and e.resource_id == "R1" for e in trail
    )  # the trail keeps it

    # asked again (a second request from the rep, a script run twice): not "check the id", which read as
    # if the id were wrong and the erasure had not happened, but when it was done and by whom
    with pytest.raises(UserError, match="stores nothing about rep 'R1'") as again:
        admin.forget(svc.settings, "R1", dry_run=False)
    msg = str(again.value)
    assert "check the id" not in msg, msg
    assert f"already forgotten on {forgot[0].at:%Y-%m-%d %H:%M} UTC by {forgot[0].actor}" in msg, msg
    assert "rep.forget" in msg, msg


def test_forget_finishes_a_file_a_failed_rewrite_left(svc, monkeypatch):
    from serving import retention

    def broken(paths, rep_id):
        raise OSError("disk full")

    monkeypatch.setattr(retention, "rewrite_files", broken)
    with pytest.raises(OSError):
        admin.forget(svc.settings, "R2", dry_run=False)
    monkeypatch.undo()
    out = admin.forget(
        svc.settings, "R2", dry_run=False
    )  # the database part is done; the file is found again
    assert (out.scores, out.directory, len(out.job_files)) == (0, 0, 1)
    path = svc.settings.resolved_home / "jobs" / svc.job_id / "scores.parquet"
    assert "R2" not in pq.read_table(path).column("rep_id").to_pylist()
    with svc.session() as s:
        assert s.get(Job, svc.job_id).n_rows == 5


def test_the_commands_confirm_refuse_and_report(svc, monkeypatch):
    from repradar.cli import app
    from repradar.settings import get_settings

    monkeypatch.setenv("REPRADAR_HOME", str(svc.settings.home))
    monkeypatch.setenv("REPRADAR_DATABASE_URL", svc.settings.database_url)
    monkeypatch.setenv("REPRADAR_DATA_DIR", str(svc.settings.data_dir))
    get_settings.cache_clear()
    runner = CliRunner()
    try:
        r = runner.invoke(app, ["purge", "--before", "2999-01-01"])
        assert r.exit_code == 2 and "in the future" in r.output
        r = runner.invoke(app, ["purge", "--before", "2024-01-09"], input="n\n")
        assert r.exit_code == 1 and "Delete, before 2024-01-09, 6 stored score(s)" in r.output
        r = runner.invoke(app, ["purge", "--before", "2024-01-09", "--dry-run"])
        assert r.exit_code == 0 and "would delete 6 stored score(s)" in r.output
        r = runner.invoke(app, ["purge", "--before", "2024-01-09", "--yes"])
        assert r.exit_code == 0 and "deleted 6 stored score(s)" in r.output
        r = runner.invoke(app, ["purge", "--before", "2024-01-09", "--yes"])
        assert r.exit_code == 0 and "nothing is stored before 2024-01-09" in r.output
        r = runner.invoke(app, ["forget", "NOBODY", "--yes"])
        assert r.exit_code == 2 and "stores nothing about rep 'NOBODY'" in r.output
        r = runner.invoke(app, ["forget", "R9", "--yes"])
        assert r.exit_code == 0 and "deleted 2 stored score(s)" in r.output
        assert "still in the reps table" in r.output  # the export would bring R9 back
    finally:
        get_settings.cache_clear()


def test_forget_names_the_training_runs_still_holding_the_rep(svc, monkeypatch, tmp_path):
    """MLflow keeps each training run's held-out feature set (rows keyed by rep id, for the promotion
    gate); `forget` does not rewrite it, so it says which runs still hold the rep rather than claim more."""
    from models import registry
    from repradar.cli import app
    from repradar.settings import get_settings
    from serving.retention import training_runs_holding

    client = registry.configure(svc.settings)
    exp = registry.ensure_experiment(client, svc.settings)
    runs = {}
    for name, reps in (("with", ["R1", "R9"]), ("without", ["R1"])):
        run = client.create_run(exp).info.run_id
        folder = tmp_path / name
        folder.mkdir()
        pd.DataFrame({"rep_id": reps, "x": range(len(reps))}).to_parquet(folder / "heldout_features.parquet")
        client.log_artifact(run, str(folder / "heldout_features.parquet"), "heldout")
        client.set_terminated(run)
        runs[name] = run
    client.set_terminated(client.create_run(exp).info.run_id)  # a run without the artifact
    assert training_runs_holding(svc.settings, "R9") == [runs["with"]]

    monkeypatch.setenv("REPRADAR_HOME", str(svc.settings.home))
    monkeypatch.setenv("REPRADAR_DATABASE_URL", svc.settings.database_url)
    monkeypatch.setenv("REPRADAR_DATA_DIR", str(svc.settings.data_dir))
    get_settings.cache_clear()
    try:
        r = CliRunner().invoke(app, ["forget", "R9", "--yes"])
    finally:
        get_settings.cache_clear()
    assert (
        r.exit_code == 0 and f"held-out feature set of 1 MLflow training run(s) ({runs['with']})" in r.output
    )


def test_purge_deletes_records_of_refused_tokens_made_before_the_day(svc):
    # client addresses of refused tokens: kept for the throttle's window, and otherwise deleted only when
    # the next refusal comes; a purge removes those made before its day and leaves the recent ones
    import datetime as dt

    from serving.db.schema import AuthFailure

    old = dt.datetime(2024, 1, 2, tzinfo=dt.UTC).timestamp()
    with svc.app.state.sessions.begin() as s:
        s.add_all(
            [
                AuthFailure(kind="api", address="10.1.2.3", at=old),
                AuthFailure(kind="signin", address="10.1.2.4", at=old),
                AuthFailure(kind="api", address="10.1.2.5", at=time.time()),  # within today's window
            ]
        )
    preview = admin.purge(svc.settings, AS_OF_2, dry_run=True)
    assert preview.refusals == 2
    out = admin.purge(svc.settings, AS_OF_2, dry_run=False)
    assert out.refusals == 2
    with svc.session() as s:
        left = s.scalars(select(AuthFailure)).all()
    assert [(f.kind, f.address) for f in left] == [("api", "10.1.2.5")]  # today's refusal still counts
    trail = [e for e in _audit(svc) if e.action == "data.purge"]
    assert trail[-1].detail["refusals"] == 2
