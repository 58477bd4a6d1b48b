"""The Maven CRM export (a real public export nobody here wrote) through the shipped mapping.

The data lives outside the repository: `../shared/datasets/maven-crm` from the repository root,
or wherever REPRADAR_MAVEN_DIR points. Without it these tests are skipped, saying why.
"""

import importlib.util
import json
import os
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from features.stages import unrecognised_stages
from features.validation import validate_folder
from importer.run import PROVENANCE_FILE, run_import

REPO = Path(__file__).resolve().parents[2]
MAVEN_FILES = ("sales_teams.csv", "sales_pipeline.csv", "products.csv", "accounts.csv")


def maven_dir() -> Path:
    env = os.environ.get("REPRADAR_MAVEN_DIR")
    folder = Path(env) if env else REPO.parent / "shared" / "datasets" / "maven-crm"
    if not all((folder / f).is_file() for f in MAVEN_FILES):
        pytest.skip(f"the Maven CRM export is not at {folder} (set REPRADAR_MAVEN_DIR)")
    return folder


# A tiny export shaped like Maven's, so the shipped mapping's behaviour is pinned where ../shared is absent.
TINY = {
    "sales_teams.csv": """\
sales_agent,manager,regional_office
Moses Frase,Dustin Brinkmann,Central
Zane Levy,Dustin Brinkmann,Central
""",
    "products.csv": """\
product,series,sales_price
GTX Pro,GTX,4821
MG Special,MG,55
""",
    "sales_pipeline.csv": """\
opportunity_id,sales_agent,product,account,deal_stage,engage_date,close_date,close_value
W1,Moses Frase,GTXPro,Cancity,Won,2017-04-03,2017-05-10,4514
L1,Moses Frase,GTXPro,Cancity,Lost,2017-04-05,2017-05-20,0
L2,Zane Levy,MG Special,Isdom,Lost,2017-04-06,2017-06-01,0
E1,Zane Levy,MG Special,,Engaging,2017-05-02,,
P1,Zane Levy,GTXPro,,Prospecting,,,
""",
}


def test_lost_deals_are_valued_at_list_price_and_won_deals_at_close_value(tmp_path):
    # The export writes 0 as a Lost deal's close_value (nothing was booked); taken as the amount, it
    # would make a rep who loses more deals look like one with smaller deals.
    src = tmp_path / "maven"
    src.mkdir()
    for name, text in TINY.items():
        (src / name).write_text(text)
    out = tmp_path / "contract"
    result = run_import("maven_crm", src, out)
    assert result.report.ok
    amount = pd.read_csv(out / "opportunities.csv").set_index("opportunity_id")["amount"]
    assert amount.to_dict() == {"W1": 4514.0, "L1": 4821.0, "L2": 55.0, "E1": 55.0, "P1": 4821.0}
    notes = json.loads((out / PROVENANCE_FILE).read_text())["notes"]
    assert any("2 of 5 rows of sales_pipeline.csv have deal_stage in [Lost]" in n for n in notes)


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    """The Maven export imported once with the shipped mapping (CSV contract folder)."""
    src = maven_dir()
    out = tmp_path_factory.mktemp("maven") / "contract"
    result = run_import("maven_crm", src, out)
    return src, out, result


def test_every_agent_is_a_rep(imported):
    src, out, result = imported
    assert result.report.ok
    teams = pd.read_csv(src / "sales_teams.csv")
    reps = pd.read_csv(out / "reps.csv", dtype=str)
    assert len(reps) == len(teams) == 35
    assert sorted(reps["name"]) == sorted(teams["sales_agent"])
    assert reps["rep_id"].is_unique
    moses = reps.set_index("name").loc["Moses Frase"]
    assert moses["rep_id"] == "moses-frase"
    assert moses["team"] == teams.set_index("sales_agent").loc["Moses Frase", "manager"]
    # Agents without a single deal still appear, hired at the export's first engage date.
    pipeline = pd.read_csv(src / "sales_pipeline.csv")
    idle = set(teams["sales_agent"]) - set(pipeline["sales_agent"])
    assert (
        idle
        and (reps.set_index("name").loc[sorted(idle), "hire_date"] == pipeline["engage_date"].min()).all()
    )


def test_deals_map_with_the_documented_assumptions(imported):
    src, out, _ = imported
    pipeline = pd.read_csv(src / "sales_pipeline.csv", dtype=str).set_index("opportunity_id")
    opps = pd.read_csv(out / "opportunities.csv", dtype=str).set_index("opportunity_id")
    assert len(opps) == len(pipeline) == 8800
    stage = pipeline["deal_stage"]
    assert (opps.loc[stage.isin(["Won", "Lost"]), "is_closed"] == "true").all()
    assert (opps.loc[stage.isin(["Engaging", "Prospecting"]), "is_closed"] == "false").all()
    assert set(opps.loc[opps["is_won"] == "true"].index) == set(stage.index[stage == "Won"])
    # Open deals: the product's list price, GTXPro matched to "GTX Pro"; closed: close_value.
    open_pro = (stage == "Engaging") & (pipeline["product"] == "GTXPro")
    assert open_pro.any() and (opps.loc[open_pro, "amount"].astype(float) == 4821.0).all()
    won = stage == "Won"
    assert (opps.loc[won, "amount"].astype(float) == pipeline.loc[won, "close_value"].astype(float)).all()
    # Lost: close_value is 0 (nothing booked); the deal's value is its list price, as for open deals.
    lost_pro = (stage == "Lost") & (pipeline["product"] == "GTXPro")
    assert (pipeline.loc[stage == "Lost", "close_value"].astype(float) == 0).all()
    assert lost_pro.any() and (opps.loc[lost_pro, "amount"].astype(float) == 4821.0).all()
    assert (opps.loc[stage == "Lost", "amount"].astype(float) > 0).all()
    # Prospecting: no engage date -> created on the export's last engage date.
    prospecting = stage == "Prospecting"
    assert (opps.loc[prospecting, "created_date"] == pipeline["engage_date"].max()).all()
    assert (opps.loc[stage == "Engaging", "close_date"] == pipeline["close_date"].max()).all()


def test_every_stage_of_the_export_reads_as_early_late_or_closed(imported):
    # The export has no history, so no warning is due; its stage names are read all the same.
    _, out, _ = imported
    opps = pd.read_csv(out / "opportunities.csv", dtype={"stage": str, "is_closed": str})
    opps["is_closed"] = opps["is_closed"] == "true"
    assert set(opps["stage"]) == {"Won", "Lost", "Engaging", "Prospecting"}
    assert unrecognised_stages(opps, None) == ({}, False)  # both open stages are early ones


def test_quotas_follow_the_mapping_policy_and_provenance_says_so(imported):
    src, out, _ = imported
    quotas = pd.read_csv(out / "quotas.csv")
    assert len(quotas) == 35 * 3
    assert set(quotas["quota_amount"]) == {100000.0}
    assert sorted(quotas["period_start"].unique()) == ["2017-04-01", "2017-07-01", "2017-10-01"]
    prov = json.loads((out / PROVENANCE_FILE).read_text())
    assert prov["quotas"] == "derived" and prov["quota_policy"]["amount"] == 100000.0
    assert set(prov["source"]["files"]) == {"sales_teams.csv", "sales_pipeline.csv", "products.csv"}
    assert any("quotas were derived" in n for n in prov["notes"])
    assert any("Prospecting" in a for a in prov["assumptions"])
    assert validate_folder(out).ok


@pytest.mark.slow
def test_from_four_csv_files_to_an_early_warning_list(tmp_path, monkeypatch):
    """import -> validate -> train -> promote -> score, as docs/import.md walks through it."""
    from models.scoring import read_scores
    from repradar.cli import app
    from repradar.settings import get_settings

    src = maven_dir()
    monkeypatch.setenv("REPRADAR_HOME", str(tmp_path / "home"))
    get_settings.cache_clear()
    runner = CliRunner()
    data, scores = tmp_path / "maven", tmp_path / "scores.csv"
    try:
        steps = [
            ["import", "--mapping", "maven_crm", "--source", str(src), "--out", str(data)],
            ["validate", "--data", str(data)],
            ["train", "--data", str(data)],
            ["promote"],
            ["score", "--data", str(data), "--as-of", "2017-11-15", "--out", str(scores)],
        ]
        outputs = {}
        for args in steps:
            result = runner.invoke(app, args)
            assert result.exit_code == 0, f"repradar {' '.join(args)}:\n{result.output}"
            outputs[args[0]] = result.output
    finally:
        get_settings.cache_clear()

    # 35 agents and three quarters are thin: the training report and the scoring run both say so.
    assert "caveat: only 35 reps" in outputs["train"]
    assert "caveat from training: only 35 reps" in outputs["score"]
    df = read_scores(scores)
    teams = pd.read_csv(src / "sales_teams.csv")
    assert len(df) == len(teams) and df["rep_id"].is_unique  # every agent is active in Q4 2017
    assert set(df["period_start"].astype(str).str[:10]) == {"2017-10-01"}
    assert df["risk"].between(0, 1).all()
    assert all(isinstance(d, list) and d for d in df["drivers"])
    assert all(isinstance(i, list) for i in df["interventions"])
    # Interventions come from the playbook, which may not be written yet; then the lists are empty.
    if importlib.util.find_spec("models.playbook") is not None:
        at_risk = df[df["risk_band"].isin(["high", "medium"])]
        assert all(at_risk["interventions"].map(len) > 0)
