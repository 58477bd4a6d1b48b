"""`repradar demo` up to the server start: scores stored for the dashboard, sign-ins that work and see data."""

from __future__ import annotations

import shutil

from fastapi.testclient import TestClient

from repradar.demo import demo_signins, pick_demo_manager, run_demo
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
    assert result.scores_path.exists()
    assert len(result.as_of_days) == 4

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
    # A second run reuses everything and only issues fresh tokens.
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
