"""The report's inputs are checked before any slow work: an intervention log passed in goes through
the data contract's validator (table, column, rule, rows as in the file; exit 2; nothing written),
and a scores file mixing model versions is refused. No model is needed: every refusal comes first."""

from __future__ import annotations

import pandas as pd
import pytest

from reporting.inputs import check_intervention_frame, check_model_versions, read_intervention_log
from repradar.errors import ContractError, UserError
from tests.reporting.conftest import run_cli, small_scores

BANDS = {"a": "high", "b": "low", "c": "medium"}
MANAGERS = {"a": "m1", "b": "m1", "c": "m2"}


def _report(tmp_path, scores: pd.DataFrame, log_text: str | None):
    from models.scoring import write_scores

    s = write_scores(scores, tmp_path / "scores.parquet")
    args = ["report", "--scores", str(s), "--data", str(tmp_path / "no-data-folder")]
    args += ["--out", str(tmp_path / "r.html"), "--no-pdf"]
    if log_text is not None:
        (tmp_path / "iv.csv").write_text(log_text)
        args += ["--interventions", str(tmp_path / "iv.csv")]
    return run_cli(tmp_path, *args)


@pytest.mark.parametrize(
    ("log_text", "expected"),
    [
        # finding 1: no `intervention` column
        (
            "rep_id,started_on\na,2024-04-02\n",
            ["interventions.intervention", "'required column present'", "the file has: rep_id, started_on"],
        ),
        # finding 2: an id outside the catalog and a date that does not parse, rows as in the file
        (
            "rep_id,intervention,started_on,ended_on\n"
            "a,mentoring,2024-04-02,\n"
            "b,free_pizza,2024-04-03,\n"
            "c,smart_goals,last tuesday,\n",
            [  # rows as in the file: its line numbers, the header being line 1
                "interventions.intervention: rule 'is a catalog id' broken by 1 row, first: row 3 "
                "(intervention=free_pizza)",
                "interventions.started_on: rule 'parses as date (YYYY-MM-DD)' broken by 1 row, first: row 4",
            ],
        ),
    ],
)
def test_a_bad_intervention_log_is_refused_before_anything_else(tmp_path, log_text, expected):
    r = _report(tmp_path, small_scores(BANDS, MANAGERS), log_text)
    assert r.exit_code == 2, r.stdout + r.stderr
    assert "internal error" not in r.stderr and "--interventions" in r.stderr
    for text in expected:
        assert text in r.stderr
    # refused before the data folder (which does not exist) was even read, and nothing written
    assert "no-data-folder" not in r.stderr
    assert not any(tmp_path.glob("r.*"))


def test_the_log_checks_rep_ids_against_the_data_folder_and_types_the_frame(tmp_path):
    (tmp_path / "iv.csv").write_text(
        "rep_id,intervention,started_on,note\na,mentoring,2024-04-02,x\nzz,smart_goals,2024-04-03,y\n"
    )
    log = read_intervention_log(tmp_path / "iv.csv")
    assert list(log.frame.columns) == ["rep_id", "intervention", "started_on", "ended_on"]
    assert log.frame["started_on"].iloc[0] == pd.Timestamp("2024-04-02")
    assert any("note" in w for w in log.warnings)  # extra column: said, not refused
    with pytest.raises(ContractError, match=r"rule 'exists in reps.rep_id' broken by 1 row, first: row 3"):
        log.check_reps(pd.DataFrame({"rep_id": ["a", "b"]}))
    log.check_reps(pd.DataFrame({"rep_id": ["a", "zz"]}))


def test_a_log_frame_from_python_is_checked_the_same_way():
    good = pd.DataFrame({"rep_id": ["a"], "intervention": ["mentoring"], "started_on": ["2024-04-02"]})
    assert check_intervention_frame(good).frame["intervention"].tolist() == ["mentoring"]
    bad = good.assign(intervention=["free_pizza"])
    with pytest.raises(ContractError, match="is a catalog id"):
        check_intervention_frame(bad)


def test_scores_of_several_model_versions_are_refused(tmp_path):
    mixed = pd.concat(
        [small_scores(BANDS, MANAGERS, version="1"), small_scores({"d": "high"}, {"d": "m3"}, version="2")]
    )
    assert check_model_versions(small_scores(BANDS, MANAGERS, version="1")) == "1"
    with pytest.raises(UserError, match=r"mixes model versions \(version 1: 3 row\(s\); version 2: 1 row"):
        check_model_versions(mixed)
    r = _report(tmp_path, mixed, None)
    assert r.exit_code == 2, r.stdout + r.stderr
    assert "mixes model versions" in r.stderr and "model version 1" not in r.stdout
    assert "no-data-folder" not in r.stderr and not any(tmp_path.glob("r.*"))


def test_assemble_refuses_mixed_versions_and_bad_log_frames_before_reading_the_model():
    from reporting.report import assemble

    mixed = pd.concat([small_scores(BANDS, MANAGERS, version="1"), small_scores({"d": "high"}, {"d": "m3"})])
    with pytest.raises(UserError, match="mixes model versions"):
        assemble(mixed, None, None)  # no tables, no settings: refused before they are used
    bad = pd.DataFrame({"rep_id": ["a"], "started_on": ["2024-04-02"]})
    with pytest.raises(ContractError, match="required column present"):
        assemble(small_scores(BANDS, MANAGERS), None, None, interventions=bad)
