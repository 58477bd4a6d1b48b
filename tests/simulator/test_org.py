"""The organisation looks like a real sales org: structure, segments, seasonality, churn, pipeline."""

from __future__ import annotations

import pandas as pd
from typer.testing import CliRunner

from repradar.cli import app


def table(folder, name) -> pd.DataFrame:
    return pd.read_parquet(folder / f"{name}.parquet")


def test_structure(medium_org):
    folder, summary = medium_org
    reps = table(folder, "reps")
    managers = pd.read_parquet(folder / "truth" / "managers.parquet")
    assert len(reps) == summary["reps"] == 240
    assert 240 / 14 <= reps["manager_id"].nunique() <= 240 / 5
    assert reps["manager_id"].isin(managers["manager_id"]).all()
    directors = managers.loc[managers["level"] == 2, "manager_id"]
    assert reps["manager_id"].isin(directors).any(), "some reps report to a manager of managers"
    assert reps["region"].nunique() == 4
    assert set(reps["segment"]) == {"SMB", "Mid-Market", "Enterprise"}
    assert reps["name"].notna().all() and reps["team"].notna().all()
    assert set(reps["gender"]) >= {"F", "M"}


def test_segments_differ_in_deal_size_and_cycle(medium_org):
    folder, _ = medium_org
    opps = table(folder, "opportunities").merge(table(folder, "reps")[["rep_id", "segment"]], on="rep_id")
    won = opps[opps["is_won"]]
    size = won.groupby("segment")["amount"].median()
    cycle = (won["close_date"] - won["created_date"]).dt.days.groupby(won["segment"]).median()
    for s in (size, cycle):
        assert s["SMB"] < s["Mid-Market"] < s["Enterprise"]


def test_q4_is_the_strongest_quarter(medium_org):
    opps = table(medium_org[0], "opportunities")
    won = opps[opps["is_won"] & (opps["close_date"].dt.year == 2023)]
    by_q = won.groupby(won["close_date"].dt.quarter)["amount"].sum()
    assert by_q[4] > 1.05 * by_q[[1, 2, 3]].mean()


def test_hires_leavers_and_ramp(medium_org):
    folder, _ = medium_org
    reps = table(folder, "reps")
    start = pd.Timestamp("2023-01-01")
    assert (reps["hire_date"] >= start).sum() >= 10
    assert reps["end_date"].notna().sum() >= 10
    rp = pd.read_parquet(folder / "truth" / "rep_periods.parquet").merge(
        reps[["rep_id", "hire_date"]], on="rep_id"
    )
    new = (rp["period_start"] - rp["hire_date"]).dt.days < 90
    won_rel = rp["won_amount"] / rp.groupby(["segment", "period_start"])["won_amount"].transform("median")
    assert won_rel[new].median() < 0.5 * won_rel[~new].median(), "new hires sell less while they ramp up"
    assert rp.loc[new, "trait_ramp"].mean() < 0.7 < rp.loc[~new, "trait_ramp"].mean()


def test_pipeline_slips_and_stays_open(medium_org):
    folder, _ = medium_org
    opps = table(folder, "opportunities")
    hist = table(folder, "opportunity_history")
    assert (~opps["is_closed"]).sum() > 0, "some deals are still open at the end"
    open_rows = hist[~hist["stage"].str.startswith("Closed")]
    slipped = open_rows.groupby("opportunity_id")["close_date"].nunique() > 1
    won_ids = opps.loc[opps["is_won"], "opportunity_id"]
    assert 0.2 < slipped.reindex(won_ids, fill_value=False).mean() < 0.7
    assert 0.15 < opps.loc[opps["is_closed"], "is_won"].mean() < 0.4
    assert hist.groupby("opportunity_id")["amount"].nunique().gt(1).mean() > 0.1, "amounts change"


def test_partly_missing_engagement(medium_org):
    folder, _ = medium_org
    eng = table(folder, "engagement")
    reps = table(folder, "reps")
    managers = pd.read_parquet(folder / "truth" / "managers.parquet")
    with_pulse = set(eng.loc[eng["metric"] == "pulse_score", "rep_id"])
    assert 0 < len(set(reps["rep_id"]) - with_pulse) < 0.4 * len(reps), "some reps never answer surveys"
    silent = managers.loc[~managers["logs_one_on_ones"], "manager_id"]
    assert len(silent)
    silent_reps = set(reps.loc[reps["manager_id"].isin(silent), "rep_id"])
    assert silent_reps and not silent_reps & set(eng.loc[eng["metric"] == "one_on_one", "rep_id"])


def test_cli_simulate(tmp_path):
    result = CliRunner().invoke(app, ["simulate", "--out", str(tmp_path), "--reps", "12", "--periods", "2"])
    assert result.exit_code == 0, result.output
    assert "miss_rate" in result.output
    assert (tmp_path / "reps.parquet").exists() and (tmp_path / "truth" / "rep_periods.parquet").exists()
    bad = CliRunner().invoke(app, ["simulate", "--out", str(tmp_path / "x"), "--format", "xlsx"])
    assert bad.exit_code == 2
