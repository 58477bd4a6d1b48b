"""The track record's pure parts (reporting/track_record.py): AUC, the join with outcomes, the counts."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from reporting.track_record import auc, auc_interval, check_earlier, track_record
from repradar.errors import UserError


def _earlier(n=60, as_of="2024-04-15", seed=0, version="2"):
    rng = np.random.default_rng(seed)
    risk = rng.uniform(0, 1, n)
    return pd.DataFrame(
        {
            "rep_id": [f"R{i:03d}" for i in range(n)],
            "period_start": pd.Timestamp("2024-04-01"),
            "period_end": pd.Timestamp("2024-06-30"),
            "as_of": pd.Timestamp(as_of),
            "risk": risk,
            "risk_band": np.where(risk >= 0.6, "high", np.where(risk >= 0.3, "medium", "low")),
            "attainment_to_date": rng.uniform(0, 0.3, n),
            "model_version": version,
        }
    )


def _outcomes(earlier, missed):
    return pd.DataFrame(
        {
            "rep_id": earlier["rep_id"],
            "period_start": earlier["period_start"],
            "period_end": earlier["period_end"],
            "missed": missed,
        }
    )


def test_auc_is_the_rank_statistic():
    from sklearn.metrics import roc_auc_score

    assert auc([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9]) == 1.0
    assert auc([0, 0, 1, 1], [0.9, 0.8, 0.2, 0.1]) == 0.0
    assert auc([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5]) == 0.5
    assert np.isnan(auc([1, 1], [0.2, 0.3]))
    rng = np.random.default_rng(1)
    y = rng.random(300) < 0.3
    s = np.round(rng.normal(y * 0.8, 1.0), 1)  # ties
    assert auc(y, s) == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    lo, hi = auc_interval(y, s, n_boot=300)
    assert lo < auc(y, s) < hi and hi - lo < 0.2


def test_each_earlier_list_is_set_against_the_outcomes_of_its_period():
    e = _earlier()
    missed = e["risk"].to_numpy() + np.random.default_rng(2).normal(0, 0.25, len(e)) > 0.6
    out = _outcomes(e, missed).iloc[:50]  # ten reps have no outcome yet
    r = track_record(e, out, n_boot=100)
    row = r.table.iloc[0]
    known = e.iloc[:50]
    y = missed[:50]
    high = (known["risk_band"] == "high").to_numpy()
    assert (row["n_scored"], row["n_known"], row["n_pending"]) == (60, 50, 10)
    assert row["n_missed"] == y.sum() and row["n_high"] == high.sum()
    assert row["high_missed"] == (high & y).sum()
    assert row["precision"] == pytest.approx((high & y).sum() / high.sum())
    assert row["recall"] == pytest.approx((high & y).sum() / y.sum())
    assert row["precision_low"] < row["precision"] < row["precision_high"]
    assert row["auc"] == pytest.approx(auc(y, known["risk"].to_numpy())) and row["auc"] > 0.8
    assert row["brier"] == pytest.approx(np.mean((known["risk"].to_numpy() - y) ** 2))
    assert row["mean_risk"] == pytest.approx(known["risk"].mean())
    # calibration on the list as given, by the training run's own definition (models.metrics)
    from models.metrics import ece

    assert row["ece"] == pytest.approx(ece(y, known["risk"].to_numpy()))
    assert sum(b["n"] for b in row["bins"]) == 50 and all(0 <= b["observed"] <= 1 for b in row["bins"])
    assert str(row["as_of"]) == "2024-04-15" and row["model_version"] == "2"
    assert [n.key for n in r.notes] == ["report.track.pending"]
    assert "10 of 60 scored reps have no outcome yet" in r.notes[0]
    d = r.to_dict()
    assert d["table"][0]["as_of"] == "2024-04-15" and d["table"][0]["n_pending"] == 10
    line = r.summary_lines()[0]
    assert (
        line.startswith("as of 2024-04-15 (model version 2): 50 reps with an outcome") and "ROC-AUC" in line
    )


def test_the_pace_is_scored_on_the_same_reps():
    """A list whose risks are noise, in an organisation where those behind the pace missed: the pace
    ranks them perfectly, the list does not."""
    e = _earlier(n=80)
    e["attainment_to_date"] = np.linspace(0.0, 0.3, len(e))
    missed = e["attainment_to_date"].to_numpy() < 0.1
    r = track_record(e, _outcomes(e, missed), n_boot=50).table.iloc[0]
    assert r["pacing_auc"] == 1.0 and 0.3 < r["auc"] < 0.7


def test_two_lists_are_two_rows_and_a_list_too_small_gets_no_auc():
    a = _earlier(n=60, as_of="2024-04-15")
    b = _earlier(n=12, as_of="2024-05-13", seed=3)
    both = pd.concat([a, b], ignore_index=True)
    out = _outcomes(a, a["risk"].to_numpy() > 0.5)
    r = track_record(both, out, n_boot=50)
    assert [str(x) for x in r.table["as_of"]] == ["2024-04-15", "2024-05-13"]
    small = r.table.iloc[1]
    assert np.isnan(small["auc"]) and not small["enough"] and small["n_known"] == 12
    assert [n.key for n in r.notes] == ["report.track.too_few"]
    # a list none of whose periods has finished: all pending, no figures
    none = track_record(b.assign(period_end=pd.Timestamp("2024-09-30")), out, n_boot=10).table.iloc[0]
    assert none["n_known"] == 0 and np.isnan(none["missed_share"]) and none["n_pending"] == 12


def test_a_list_that_cannot_be_checked_is_refused_with_its_name():
    e = _earlier()
    with pytest.raises(
        UserError, match=r"--earlier q1\.parquet: .*lacks column\(s\) risk_band, attainment_to_date"
    ):
        check_earlier(e.drop(columns=["risk_band", "attainment_to_date"]), "q1.parquet", "2024-08-01")
    with pytest.raises(
        UserError, match=r"scored as of 2024-04-15, not before the report's as-of day 2024-04-15"
    ):
        check_earlier(e, "q1.parquet", "2024-04-15")
    check_earlier(e, "q1.parquet", "2024-04-16")
    # a hand-edited list: every broken rule named at once, with its rows (as a spreadsheet counts them)
    edited = e.copy()
    edited.loc[3, "risk"] = 1.7
    edited.loc[5, "risk"] = np.nan
    edited.loc[7, "risk_band"] = "very high"
    with pytest.raises(UserError) as err:
        check_earlier(edited, "q1.csv", "2024-08-01")
    msg = str(err.value)
    assert "column risk must be a probability between 0 and 1: row(s) 5, 7 (rep(s) R003, R005)" in msg
    assert "column risk_band must be one of high, medium, low: row(s) 9 (rep(s) R007)" in msg


def test_listed_outcomes_are_those_of_the_listed_rep_periods_with_a_label():
    """The rep page shows how a listed rep's period ended: only the rep-periods the lists hold (another
    period of the same rep, or a rep never listed, is left out), once each, and none without a label."""
    from reporting.track_record import listed_outcomes

    q1, q2 = pd.Timestamp("2024-01-01"), pd.Timestamp("2024-04-01")
    outcomes = pd.DataFrame(
        {
            "rep_id": ["A", "A", "B", "C", "D"],
            "period_start": [q1, q2, q1, q1, q1],
            "period_end": [pd.Timestamp("2024-03-31"), pd.Timestamp("2024-06-30")]
            + [pd.Timestamp("2024-03-31")] * 3,
            "attainment": [0.7, 1.2, 1.1, np.nan, 0.4],
            "missed": pd.array([True, False, False, pd.NA, True], dtype="boolean"),
            "quota_vs_segment": 1.0,
        }
    )
    week3 = pd.DataFrame({"rep_id": ["A", "B", "C"], "period_start": [dt.date(2024, 1, 1)] * 3})
    week7 = pd.DataFrame({"rep_id": ["A"], "period_start": ["2024-01-01"]})  # the same rep-period again
    got = listed_outcomes(outcomes, [week3, week7])
    assert list(got.columns) == ["rep_id", "period_start", "period_end", "attainment", "missed"]
    assert got[["rep_id", "attainment"]].values.tolist() == [["A", 0.7], ["B", 1.1]]
    assert listed_outcomes(outcomes, []).empty
