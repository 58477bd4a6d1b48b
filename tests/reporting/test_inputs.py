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


def test_a_log_breaking_several_rules_is_refused_with_all_of_them_at_once(tmp_path):
    # an unknown rep on row 3 and a bad date and catalog id on row 4: one refusal names all three
    (tmp_path / "iv.csv").write_text(
        "rep_id,intervention,started_on,ended_on\n"
        "a,pipeline_generation,2024-10-23,\n"
        "R9999,smart_goals,2024-10-01,\n"
        "b,smart_goal,2024-13-01,2024-01-01\n"
    )
    reps = pd.DataFrame({"rep_id": ["a", "b"]})
    with pytest.raises(ContractError) as e:
        read_intervention_log(tmp_path / "iv.csv", reps=reps)
    msg = str(e.value)
    assert "3 violation(s)" in msg, msg
    assert "rule 'exists in reps.rep_id' broken by 1 row, first: row 3 (rep_id=R9999)" in msg
    assert "'parses as date (YYYY-MM-DD)' broken by 1 row, first: row 4" in msg and "'is a catalog id'" in msg
    # the data folder's reps table is read for the check when only the folder is named (the CLI)
    data = tmp_path / "data"
    data.mkdir()
    reps.to_csv(data / "reps.csv", index=False)
    with pytest.raises(ContractError, match=r"3 violation\(s\)"):
        read_intervention_log(tmp_path / "iv.csv", data_dir=data)
    with pytest.raises(ContractError, match=r"2 violation\(s\)"):  # no reps to read: the file's own rules
        read_intervention_log(tmp_path / "iv.csv", data_dir=tmp_path / "nowhere")


def test_scores_of_another_installations_model_are_refused():
    from reporting.inputs import check_model_run, scores_run_id

    s = small_scores(BANDS, MANAGERS, version="1").assign(model_name="repradar-risk", model_run_id="run-a")
    kw = dict(name="repradar-risk", version="1", home="/h")
    assert check_model_run(s, run_id="run-a", **kw) is None
    with pytest.raises(
        UserError, match=r"MLflow run run-a, but version 1 in this installation \(/h\) is run run-b"
    ):
        check_model_run(s, run_id="run-b", **kw)
    with pytest.raises(UserError, match="made by model 'other'"):
        check_model_run(s.assign(model_name="other"), run_id="run-a", **kw)
    # a file from before the run id was written: kept, with a note that it could not be verified
    note = check_model_run(s.drop(columns=["model_run_id"]), run_id="run-a", **kw)
    assert note and "could not be verified" in note
    assert scores_run_id(s.drop(columns=["model_run_id"])) is None
    with pytest.raises(UserError, match="mixes models of 2 MLflow runs"):
        scores_run_id(pd.concat([s, s.assign(model_run_id="run-b")]))


def test_a_file_that_is_not_a_scores_file_names_the_missing_columns(tmp_path):
    from models.scoring import read_scores

    reps = tmp_path / "reps.parquet"
    pd.DataFrame({"rep_id": ["a"], "manager_id": ["m"], "team": ["t"]}).to_parquet(reps)
    with pytest.raises(ValueError, match="lacks the scores column"):
        read_scores(reps)
    r = run_cli(
        tmp_path, "report", "--scores", str(reps), "--data", str(tmp_path), "--out", str(tmp_path / "r.html")
    )
    assert r.exit_code == 2, r.stdout + r.stderr
    assert "lacks the scores column(s) period_start, period_end, as_of, risk" in r.stderr
    assert "('" not in r.stderr and "Traceback" not in r.stderr


def test_scores_holding_a_rep_more_than_once_are_refused(tmp_path):
    # two batches of the same model concatenated (two as-of days): every rep would be counted twice, the
    # fairness audit's groups doubled in size (and its p-values made "significant" by that alone)
    from reporting.inputs import check_one_score_per_rep
    from reporting.report import assemble

    once = small_scores(BANDS, MANAGERS, as_of="2024-05-13")
    check_one_score_per_rep(once)
    twice = pd.concat([small_scores(BANDS, MANAGERS, as_of="2024-05-06"), once])
    with pytest.raises(
        UserError, match=r"holds 3 rep\(s\) more than once over 2 as-of days \(e\.g\. a, b, c\)"
    ):
        check_one_score_per_rep(twice)
    with pytest.raises(UserError, match="more than once"):
        assemble(twice, None, None)  # refused before the tables or the model are read
    r = _report(tmp_path, twice, None)
    assert r.exit_code == 2, r.stdout + r.stderr
    assert "holds 3 rep(s) more than once over 2 as-of days" in r.stderr and "Traceback" not in r.stderr
    assert "no-data-folder" not in r.stderr and not any(tmp_path.glob("r.*"))


def test_scores_of_reps_the_data_folder_does_not_have_are_refused():
    # the wrong --data (another organisation's export): the audit would put every rep in '(missing)'
    from types import SimpleNamespace

    from reporting.inputs import check_scores_reps_in_data
    from reporting.report import assemble

    scores = small_scores(BANDS, MANAGERS)
    check_scores_reps_in_data(scores, pd.DataFrame({"rep_id": ["a", "b", "c", "d"]}))
    other = pd.DataFrame({"rep_id": ["a", "x", "y"]})
    with pytest.raises(
        UserError, match=r"2 of the 3 scored rep\(s\) are not in the data folder's reps table \(e\.g\. b, c\)"
    ):
        check_scores_reps_in_data(scores, other)
    with pytest.raises(UserError, match="not in the data folder's reps table"):
        assemble(scores, SimpleNamespace(reps=other), None)  # refused before the model is read
