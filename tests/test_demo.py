"""`repradar demo` up to the server start: scores stored for the dashboard, sign-ins that work and see data."""

from __future__ import annotations

import shutil

import pandas as pd
from fastapi.testclient import TestClient

from repradar.demo import demo_earlier_days, demo_signins, pick_demo_manager, run_demo
from repradar.settings import Settings


def test_demo_scores_weeks_and_signs_in_each_role(trained, tmp_path):
    data, home0, _ = trained
    home = tmp_path / "home"
    shutil.copytree(home0, home)
    shutil.copytree(data, home / "demo" / "data")  # reuse the trained org: no second training
    settings = Settings(home=home)
    lines: list[str] = []
    result = run_demo(settings, echo=lines.append)
    assert any("already registered" in line for line in lines), lines
    notes = [line for line in lines if line.lstrip().startswith("note:")]
    assert notes and len(notes) == len(set(notes)), lines  # the jobs' notes, each said once
    assert result.scores_path.exists()
    assert len(result.as_of_days) == 4
    scored = pd.read_parquet(result.scores_path)
    assert set(scored["as_of"].astype(str)) == {result.as_of_days[-1].isoformat()}

    from features.io import load_folder

    reps = load_folder(result.data_dir, validate=False).reps
    signins = demo_signins(settings, reps)
    assert [role for role, _, _ in signins] == ["manager", "hr", "data_scientist"]
    tokens = {role: token for role, _, token in signins}

    from serving.app import create_app

    with TestClient(create_app(settings.model_copy(update={"data_dir": result.data_dir}))) as client:

        def get(path, role):
            return client.get(path, headers={"Authorization": f"Bearer {tokens[role]}"})

        team = get("/api/v1/early-warning", "manager")
        assert team.status_code == 200, team.text
        rows = team.json()["items"] if isinstance(team.json(), dict) else team.json()
        assert rows, "the demo manager's team has scores"
        manager = pick_demo_manager(reps)
        subtree = set(reps.loc[reps["manager_id"] == manager, "rep_id"])
        assert subtree & {r["rep_id"] for r in rows}
        assert get("/api/v1/audit", "hr").status_code == 200
        assert get("/api/v1/models", "data_scientist").status_code == 200
        # the last quarter's lists, scored as batch jobs before the current weeks, judged by them
        records = get("/api/v1/models/track-record", "data_scientist").json()["items"]
        earlier = demo_earlier_days(pd.read_parquet(result.data_dir / "quotas.parquet"))
        assert sorted(r["as_of"] for r in records) == [d.isoformat() for d in earlier]
        for r in records:
            assert r["judged_as_of"] == result.as_of_days[-1].isoformat()
            assert r["n_known"] > 0 and r["n_pending"] == 0
            # the export ends with the held-out quarter: the one before it is the validation quarter
            assert r["in_sample"] is True
        jobs = get("/api/v1/jobs", "hr").json()
        jobs = jobs["items"] if isinstance(jobs, dict) else jobs
        assert len(jobs) == len(earlier) + 4 and {j["status"] for j in jobs} == {"succeeded"}
    # A second run reuses everything (the batch jobs too) and only issues fresh tokens.
    lines.clear()
    assert run_demo(settings, echo=lines.append).scores_path == result.scores_path
    assert sum("reusing batch job" in line for line in lines) == len(earlier) + 4, lines
    again = demo_signins(settings, reps)
    assert {r for r, _, _ in again} == {"manager", "hr", "data_scientist"}
    assert {t for _, _, t in again}.isdisjoint(tokens.values())


def test_the_demo_does_not_tell_the_user_to_promote_what_it_promotes_itself():
    """After training, the demo promotes at once: `train`'s "next: repradar promote" would send the
    user to a command that then says there is no challenger (exit 2)."""
    from repradar.demo import demo_gate_line, demo_training_lines

    summary = [
        "registered repradar-risk version 1 (alias challenger), MLflow run abc",
        "caveat: only 35 reps (fewer than 50): every figure rests on few people",
        "next: `repradar promote` runs the gate and makes it champion if it is not worse",
    ]
    assert demo_training_lines(summary) == summary[:2]
    message = "version 1 is now champion (first champion):\n      challenger v1  champion\nROC-AUC  0.9  -"
    assert demo_gate_line(message) == "version 1 is now champion (first champion)"
    assert demo_gate_line("") == "promoted"
