"""The fairness audit's pure parts: attribute columns, merging small groups, impact ratios, calibration."""

from __future__ import annotations

import datetime as dt
import itertools
import math

import numpy as np
import pandas as pd
import pytest

from reporting.fairness import (
    MISSING,
    OTHER,
    audit_columns,
    calibration_table,
    fairness_audit,
    finished_outcomes,
    impact_ratios,
    merge_small_groups,
    ratio_interval,
    selection_table,
    two_proportion_p,
    wilson_interval,
)
from tests.conftest import typed


def _reps(n_f, n_m, n_x=0):
    g = ["F"] * n_f + ["M"] * n_m + ["X"] * n_x
    n = len(g)
    return pd.DataFrame(
        {
            "rep_id": [f"r{i}" for i in range(n)],
            "manager_id": ["m1"] * n,
            "hire_date": pd.Timestamp("2020-01-01"),
            "team": "t",
            "region": ["north", "south"] * (n // 2) + ["north"] * (n % 2),
            "segment": "SMB",
            "name": "x",
            "gender": g,
        }
    )


def _held_and_outcomes(seen, rng):
    """The model section's held-out rows (4 snapshots per rep of `seen`) and the finished periods'
    outcomes (2 per rep), with random risks and misses."""
    held = pd.DataFrame(
        {
            "rep_id": np.repeat(seen, 4),
            "risk": rng.random(4 * len(seen)),
            "missed": (rng.random(4 * len(seen)) < 0.4).astype(float),
        }
    )
    outcomes = pd.DataFrame(
        {
            "rep_id": np.repeat(seen, 2),
            "missed": pd.array(rng.random(2 * len(seen)) < 0.4, dtype="boolean"),
            "quota_vs_segment": 1.0,
        }
    )
    return held, outcomes


def _scores(reps, high):
    return pd.DataFrame({"rep_id": reps["rep_id"], "risk_band": np.where(high, "high", "low")})


def test_attributes_are_the_columns_beyond_the_contract_and_region_is_a_control():
    reps = _reps(2, 2).assign(age_band="20-29")
    assert audit_columns(reps) == [("gender", "attribute"), ("age_band", "attribute"), ("region", "control")]
    assert audit_columns(reps.drop(columns=["region"])) == [
        ("gender", "attribute"),
        ("age_band", "attribute"),
    ]


def test_small_groups_are_merged_and_named():
    s = pd.Series(["a"] * 10 + ["b"] * 3 + ["c"] * 2)
    merged, names = merge_small_groups(s, 5)
    assert names == ["b", "c"]
    assert (merged == OTHER).sum() == 5 and (merged == "a").sum() == 10
    same, none = merge_small_groups(s, 2)
    assert none == [] and same.equals(s)


def test_four_fifths_rule_against_the_most_flagged_group():
    t = selection_table(
        pd.Series(["F"] * 100 + ["M"] * 100), [True] * 30 + [False] * 70 + [True] * 20 + [False] * 80, 50
    )
    t, ref = impact_ratios(t, low=0.8, high=1.25)
    assert ref == "F"
    row = t.set_index("group")
    assert row.loc["F", "ratio"] == 1.0 and row.loc["F", "reference"]
    assert row.loc["M", "ratio"] == pytest.approx(20 / 30)
    assert row.loc["M", "out_of_bounds"] and not row.loc["F", "out_of_bounds"]
    assert 0 < row.loc["M", "p_value"] < 0.2


def test_bounds_are_settings_and_the_largest_reference_uses_both_bounds():
    groups = pd.Series(["A"] * 200 + ["B"] * 60)
    sel = [True] * 40 + [False] * 160 + [True] * 18 + [False] * 42  # A 20%, B 30%: B/A = 1.5
    t, ref = impact_ratios(selection_table(groups, sel, 50), reference="largest", low=0.8, high=1.25)
    assert ref == "A" and t.set_index("group").loc["B", "out_of_bounds"]
    t, _ = impact_ratios(selection_table(groups, sel, 50), reference="largest", low=0.5, high=1.6)
    assert not t["out_of_bounds"].any()


def test_groups_too_small_are_shown_but_never_judged():
    t = selection_table(
        pd.Series(["A"] * 100 + ["B"] * 100 + ["C"] * 5),
        [False] * 80 + [True] * 20 + [False] * 80 + [True] * 20 + [True] * 5,
        50,
    )
    t, ref = impact_ratios(t)
    c = t.set_index("group").loc["C"]
    assert not c["judged"] and math.isnan(c["ratio"]) and not c["out_of_bounds"]
    assert ref in ("A", "B")


def test_nobody_flagged_gives_ratio_one():
    t, _ = impact_ratios(selection_table(pd.Series(["A"] * 60 + ["B"] * 60), [False] * 120, 50))
    assert (t["ratio"] == 1.0).all() and not t["out_of_bounds"].any()


def test_two_proportion_p_matches_known_values():
    assert two_proportion_p(50, 100, 50, 100) == pytest.approx(1.0)
    # z = (0.6 - 0.4) / sqrt(0.5 * 0.5 * 2 / 100) = 2.828...
    assert two_proportion_p(60, 100, 40, 100) == pytest.approx(0.00468, rel=1e-2)
    assert two_proportion_p(0, 0, 1, 10) == 1.0


def test_calibration_per_group():
    t = calibration_table(["a", "a", "b", "b"], [0.2, 0.4, 0.5, 0.7], [0, 1, 1, 1], ["r1", "r1", "r2", "r3"])
    a, b = t.set_index("group").loc["a"], t.set_index("group").loc["b"]
    assert (
        a["mean_risk"] == pytest.approx(0.3)
        and a["miss_rate"] == 0.5
        and a["n_reps"] == 1
        and a["gap"] == pytest.approx(-0.2)
    )
    assert b["n_rows"] == 2 and b["miss_rate"] == 1.0


def test_audit_calls_out_the_over_flagged_group_with_merging_and_calibration():
    reps = _reps(100, 100, 12)  # X: too few to judge, enough to show (a group of 6 would join M or F)
    high = np.r_[np.arange(100) < 40, np.arange(100) < 20, [True] * 12]  # F 40%, M 20%, X small
    held = pd.DataFrame({"rep_id": reps["rep_id"], "risk": 0.3, "missed": np.r_[np.zeros(150), np.ones(62)]})
    a = fairness_audit(_scores(reps, high), reps, heldout=held, min_group_size=50)
    g = a.get("gender")
    assert g.merged == ["X"] and OTHER in set(g.selection["group"])
    assert a.flagged("gender") == ["F"]
    c = [c for c in a.callouts if c.column == "gender"][0]
    assert (c.over, c.under) == ("F", "M") and c.significant
    assert "F" in c.text(0.8, 1.25) and "2.00x" in c.text(0.8, 1.25)
    assert set(g.calibration["group"]) == {"F", "M", OTHER}
    assert a.get("region").kind == "control"
    assert a.to_dict()["callouts"][0]["over"] == "F"


def test_audit_notes_attributes_that_leak_into_the_model_and_missing_values():
    reps = _reps(60, 60)
    reps.loc[:9, "gender"] = None
    a = fairness_audit(_scores(reps, [False] * 120), reps, model_features=["gender", "x"])
    assert any("gender" in n and "must not" in n for n in a.notes)
    assert MISSING in set(a.get("gender").selection["group"]) or OTHER in set(
        a.get("gender").selection["group"]
    )


def test_a_ratio_just_outside_a_bound_is_shown_with_the_digits_that_say_so():
    from reporting.fairness import Callout, ratio_text

    assert ratio_text(0.7974, 0.8, 1.25) == "0.797"  # not "0.80", which is the bound
    assert ratio_text(0.58, 0.8, 1.25) == "0.58" and ratio_text(1.0, 0.8, 1.25) == "1.00"
    assert ratio_text(0.80004, 0.8, 1.25) == "0.80004" and ratio_text(1.2504, 0.8, 1.25) == "1.2504"
    assert ratio_text(float("nan"), 0.8, 1.25) == "-"
    c = Callout(
        "gender", "attribute", "F", "M", (32 / 133) / (35 / 116), 35 / 116, 32 / 133, 116, 133, 0.1, False
    )
    text = c.text(0.8, 1.25)
    assert "1.254x as often" in text and "impact ratio 0.797 is outside [0.8, 1.25]" in text, text


def test_a_handful_of_reps_cannot_be_worked_out_from_the_totals():
    # 4 reps of gender X, one of them in the high band. Shown as a suppressed group of its own beside F
    # and M with their counts, X's count was the report's high-band total minus F's and M's: the
    # suppression hid nothing. X now joins the smallest other group in 'other (merged)'.
    reps = _reps(60, 55, 4)
    high = np.array(
        [i % 5 == 0 for i in range(60)] + [i % 5 == 0 for i in range(55)] + [True, False, False, False]
    )
    audit = fairness_audit(_scores(reps, high), reps, min_group_size=50, min_cell=10)
    a = audit.get("gender")
    sel = a.selection.set_index("group")
    assert sorted(sel.index) == ["F", OTHER]  # M (the smaller) and X together
    assert sel.loc[OTHER, "n"] == 59 and sel.loc[OTHER, "n_high"] == 12
    assert not sel["suppressed"].any()
    # no group is shown with fewer than min_cell reps: nothing to subtract from the totals
    assert (sel["n"] >= 10).all()
    assert sel.loc["F", "n_high"] == 12 and sel["n_high"].sum() == int(high.sum())
    assert a.merged == ["M", "X"]
    assert any(f"'M' joined '{OTHER}' too" in n and "worked out" in n for n in a.notes), a.notes


def test_merge_small_groups_folds_a_remainder_below_min_cell_into_the_smallest_group():
    from reporting.fairness import merge_small_groups

    s = pd.Series(["F"] * 60 + ["M"] * 55 + ["X"] * 4)
    g, merged = merge_small_groups(s, 50, min_cell=10)
    assert merged == ["M", "X"] and g.value_counts().to_dict() == {"F": 60, OTHER: 59}
    # a remainder of min_cell or more stays on its own; one group alone is left as it is
    g, merged = merge_small_groups(pd.Series(["F"] * 60 + ["X"] * 12), 50, min_cell=10)
    assert merged == ["X"] and g.value_counts().to_dict() == {"F": 60, OTHER: 12}
    g, merged = merge_small_groups(pd.Series(["X"] * 4), 50, min_cell=10)
    assert merged == ["X"] and g.value_counts().to_dict() == {OTHER: 4}


def _outcomes(reps, miss_f, miss_m, quota_f, quota_m):
    rows = []
    for rid, g in zip(reps["rep_id"], reps["gender"], strict=True):
        for k, start in enumerate(["2023-01-01", "2023-04-01"]):
            i = int(rid[1:])
            rate = miss_f if g == "F" else miss_m
            rows.append(
                {
                    "rep_id": rid,
                    "period_start": pd.Timestamp(start),
                    "attainment": 0.5,
                    "missed": (i + k) % 100 < rate * 100,
                    "quota_vs_segment": quota_f if g == "F" else quota_m,
                }
            )
    return pd.DataFrame(rows)


def test_a_callout_says_whether_the_disparity_is_already_in_the_outcome_and_the_quotas():
    reps = _reps(200, 200)
    high = np.array([i % 10 < 3 for i in range(200)] + [i % 10 < 1 for i in range(200)])  # F 30%, M 10%
    # F missed far more often in the finished periods, with quotas 25% above the segment's
    biased = fairness_audit(_scores(reps, high), reps, outcomes=_outcomes(reps, 0.6, 0.2, 1.25, 0.9))
    (c,) = [c for c in biased.callouts if c.column == "gender"]
    assert c.over == "F" and "harder quotas" in c.source and "not from the model alone" in c.source
    assert "1.25x their segment's vs 0.90x" in c.text(0.8, 1.25)
    out = biased.get("gender").outcomes.set_index("group")
    assert out.loc["F", "miss_rate"] == pytest.approx(0.6) and out.loc["F", "n_periods"] == 400
    # same flags, but the outcome and the quotas do not differ: the model is the suspect
    fair = fairness_audit(_scores(reps, high), reps, outcomes=_outcomes(reps, 0.3, 0.3, 1.0, 1.0))
    (c,) = [c for c in fair.callouts if c.column == "gender"]
    assert "may come from the model" in c.source and "harder quotas" not in c.source


def _outcome_tables():
    """Three SMB reps (c leaves on 2024-03-15), one finished quarter each, a's second one running."""
    reps = pd.DataFrame(
        {
            "rep_id": ["a", "b", "c"],
            "manager_id": "m",
            "hire_date": ["2023-01-01"] * 3,
            "end_date": [None, None, "2024-03-15"],
            "segment": "SMB",
        }
    )
    quotas = pd.DataFrame(
        {
            "rep_id": ["a", "b", "c", "a"],
            "period_start": ["2024-01-01"] * 3 + ["2024-04-01"],
            "period_end": ["2024-03-31"] * 3 + ["2024-06-30"],
            "quota_amount": [100.0, 200.0, 300.0, 100.0],
        }
    )
    opps = pd.DataFrame(
        {
            "opportunity_id": ["o1", "o2", "o3", "o4", "o5"],
            "rep_id": ["a", "b", "b", "a", "b"],
            "created_date": ["2024-01-02"] * 5,
            "close_date": ["2024-02-01", "2024-03-31", "2024-04-01", "2024-04-05", "2024-03-01"],
            "stage": ["Closed Won"] * 4 + ["Closed Lost"],
            "amount": [150.0, 100.0, 500.0, 1.0, 900.0],
            "is_closed": True,
            "is_won": [True, True, True, True, False],
        }
    )
    return typed(reps=reps, quotas=quotas, opportunities=opps)


def test_finished_outcomes_are_the_training_labels_with_quotas_against_the_segment():
    tables = _outcome_tables()
    o = finished_outcomes(tables, "2024-04-22").set_index("rep_id")
    assert len(o) == 3  # the running period is not an outcome yet
    assert o.loc["a", "attainment"] == pytest.approx(1.5) and not o.loc["a", "missed"]
    assert o.loc["b", "attainment"] == pytest.approx(0.5) and o.loc["b", "missed"]  # lost deal: nothing
    assert o.loc["c", "attainment"] == 0 and o.loc["c", "missed"]  # the leaver's period still counts
    assert o.loc["a", "quota_vs_segment"] == pytest.approx(0.5) and o.loc["c", "quota_vs_segment"] == 1.5
    # the same definition as training's labels: the training set's label for each finished period
    from features.build import build_training_set

    train = build_training_set(tables, reference_day=dt.date(2024, 4, 22)).frame
    label = train.groupby("rep_id")["missed"].last()
    assert {r: bool(label[r]) for r in label.index} == {r: bool(o.loc[r, "missed"]) for r in o.index}
    # a threshold and a look-back change what counts
    assert (
        not finished_outcomes(tables, "2024-04-22", miss_threshold=0.5).set_index("rep_id").loc["b", "missed"]
    )
    assert finished_outcomes(tables, "2024-04-22", lookback_days=10).empty


def test_error_rates_of_the_high_band_per_group_once_outcomes_are_known():
    # group A: 4 missed (3 flagged high), 4 met (1 flagged); group B: 2 missed (none flagged), 2 met
    groups = pd.Series(["A"] * 8 + ["B"] * 4)
    risk = [0.9, 0.7, 0.65, 0.2, 0.61, 0.1, 0.2, 0.3] + [0.5, 0.4, 0.1, 0.2]
    missed = [1, 1, 1, 1, 0, 0, 0, 0] + [1, 1, 0, 0]
    t = calibration_table(groups, risk, missed, [f"r{i}" for i in range(12)], high_cut=0.6).set_index("group")
    assert t.loc["A", "fnr"] == pytest.approx(0.25) and t.loc["A", "fpr"] == pytest.approx(0.25)
    assert t.loc["B", "fnr"] == 1.0 and t.loc["B", "fpr"] == 0.0
    # through the audit: computed on the held-out rows at the high band's cut point
    reps = _reps(60, 60)
    held = pd.DataFrame({"rep_id": reps["rep_id"], "risk": [0.7, 0.2] * 60, "missed": [1.0, 1.0] * 60})
    audit = fairness_audit(_scores(reps, [False] * 120), reps, heldout=held, high_cut=0.6)
    cal = audit.get("gender").calibration.set_index("group")
    assert cal.loc["F", "fnr"] == pytest.approx(0.5) and math.isnan(cal.loc["F", "fpr"])  # nobody met


def test_shares_and_ratios_carry_confidence_intervals():
    assert wilson_interval(5, 10) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    # Katz: (20/100) / (30/100) = 0.667, interval exp(+-1.96 * sqrt(1/20 - 1/100 + 1/30 - 1/100))
    assert ratio_interval(20, 100, 30, 100) == pytest.approx((0.4071, 1.0917), abs=1e-4)
    lo, hi = ratio_interval(0, 60, 10, 60)  # no one flagged: still an interval, with 0.5 added
    assert lo > 0 and hi < 1
    t = selection_table(
        pd.Series(["F"] * 100 + ["M"] * 100), [True] * 30 + [False] * 70 + [True] * 20 + [False] * 80, 50
    )
    t, _ = impact_ratios(t)
    row = t.set_index("group")
    assert row.loc["M", "rate_low"] < 0.2 < row.loc["M", "rate_high"]
    assert row.loc["M", "ratio_low"] < row.loc["M", "ratio"] < row.loc["M", "ratio_high"]
    assert math.isnan(row.loc["F", "ratio_low"])  # the reference against itself: no interval


def test_calibration_per_group_needs_held_out_rows_of_this_organisation():
    reps = _reps(60, 60)
    rows = {"rep_id": reps["rep_id"], "risk": [0.5] * 120, "missed": [1.0, 0.0] * 60}
    ours = pd.DataFrame(rows | {"segment": "SMB"})
    audit = fairness_audit(_scores(reps, [False] * 120), reps, heldout=ours)
    assert audit.get("gender").calibration is not None
    # the same rep ids in another organisation (a model trained on another export): mostly other
    # segments, so these are other people and their rows must not be grouped by our reps' gender
    theirs = pd.DataFrame(rows | {"segment": ["Enterprise", "Enterprise", "SMB"] * 40})
    audit = fairness_audit(_scores(reps, [False] * 120), reps, heldout=theirs)
    assert audit.get("gender").calibration is None
    assert any("trained on another export" in n and "33%" in n for n in audit.notes)


def test_a_disparity_that_may_be_chance_is_not_pinned_on_the_model():
    reps = _reps(60, 60)
    high = np.array([i % 10 < 3 for i in range(60)] + [i % 10 < 2 for i in range(60)])  # 30% vs 20%
    audit = fairness_audit(_scores(reps, high), reps, outcomes=_outcomes(reps, 0.3, 0.3, 1.0, 1.0))
    (c,) = [c for c in audit.callouts if c.column == "gender"]
    assert not c.significant
    assert "watch whether it persists" in c.source and "may come from the model" not in c.source


def test_rates_over_snapshots_get_intervals_from_resampling_reps_not_rows():
    from reporting.fairness import rep_bootstrap_ratio

    rng = np.random.default_rng(3)
    missed = rng.random(60) < 0.3
    # 60 reps with 10 identical snapshots each, against 600 reps with one snapshot each
    clustered = rep_bootstrap_ratio(np.repeat(np.arange(60), 10), np.repeat(missed, 10), np.ones(600))
    independent = rep_bootstrap_ratio(np.arange(600), np.tile(missed, 10), np.ones(600))
    point = missed.mean()
    assert clustered[0] < point < clustered[1] and independent[0] < point < independent[1]
    assert clustered[1] - clustered[0] > 2.5 * (independent[1] - independent[0])  # about sqrt(10) wider
    assert rep_bootstrap_ratio(np.arange(600), np.tile(missed, 10), np.ones(600)) == independent  # seeded
    assert all(math.isnan(v) for v in rep_bootstrap_ratio([], [], []))


def test_calibration_and_outcome_rates_carry_intervals_that_small_groups_lose():
    reps = _reps(60, 60, 4)
    n = len(reps)
    rng = np.random.default_rng(0)
    held = pd.DataFrame(
        {
            "rep_id": np.repeat(reps["rep_id"], 3),
            "risk": rng.random(3 * n),
            "missed": (rng.random(3 * n) < 0.5).astype(float),
        }
    )
    outcomes = pd.DataFrame(
        {
            "rep_id": np.repeat(reps["rep_id"], 2),
            "missed": pd.array(rng.random(2 * n) < 0.5, dtype="boolean"),
            "quota_vs_segment": 1.0,
        }
    )
    # one X rep has no held-out rows and no finished period: 3 X reps there, below min_cell (4)
    held = held[held["rep_id"] != reps["rep_id"].iloc[-1]]
    outcomes = outcomes[outcomes["rep_id"] != reps["rep_id"].iloc[-1]]
    kw = dict(heldout=held, high_cut=0.6, outcomes=outcomes, min_group_size=3)
    audit = fairness_audit(_scores(reps, [False] * n), reps, min_cell=4, **kw)
    cal = audit.get("gender").calibration.set_index("group")
    for rate in ("miss_rate", "gap", "fnr", "fpr"):
        lo, mid, hi = cal.loc["M", [f"{rate}_low", rate, f"{rate}_high"]]
        assert lo - 1e-9 <= mid <= hi + 1e-9, rate
        assert hi - lo > 0.05, rate  # 60 reps: far from exact
    out = audit.get("gender").outcomes.set_index("group")
    assert out.loc["M", "miss_rate_low"] < out.loc["M", "miss_rate"] < out.loc["M", "miss_rate_high"]
    # three X reps are not shown on their own there: they and the smallest other group (F) are one group
    assert "X" not in cal.index and "X" not in out.index
    assert cal.loc[OTHER, "n_reps"] == 63 and out.loc[OTHER, "n_reps"] == 63
    # when every group is that small, every group's rates and intervals are suppressed
    audit = fairness_audit(_scores(reps, [False] * n), reps, min_cell=100, **kw)
    cal = audit.get("gender").calibration.set_index("group")
    out = audit.get("gender").outcomes.set_index("group")
    assert cal["suppressed"].all() and cal["miss_rate_low"].isna().all() and cal["n_rows"].isna().all()
    assert out["suppressed"].all() and out["miss_rate_high"].isna().all()


def test_a_group_small_only_in_the_held_out_rows_cannot_be_worked_out_from_the_totals():
    # X has 12 scored reps (shown as 'other (merged)'), but only 4 of them have held-out rows and
    # finished periods (hired since). Shown there as a suppressed group beside F and M, its snapshots
    # and misses were the model section's held-out totals (rows, missed) minus F's and M's, and its
    # finished periods' misses another attribute's outcome table (region: every rep) minus F's and M's.
    reps = _reps(60, 55, 12)
    n = len(reps)
    rng = np.random.default_rng(1)
    seen = reps["rep_id"].iloc[: n - 8]  # the last 8 X reps were hired after those periods
    held, outcomes = _held_and_outcomes(seen, rng)
    audit = fairness_audit(
        _scores(reps, [False] * n), reps, heldout=held, outcomes=outcomes, high_cut=0.6, min_cell=10
    )
    g = audit.get("gender")
    assert set(g.selection["group"]) == {"F", "M", OTHER} and not g.selection["suppressed"].any()
    totals = {  # what the report shows beside the audit: the model's held-out rows, every rep's periods
        "calibration": (len(held), held["missed"].sum(), "n_rows"),
        "outcomes": (len(outcomes), float(outcomes["missed"].astype(float).sum()), "n_periods"),
    }
    for name, table in (("calibration", g.calibration), ("outcomes", g.outcomes)):
        rows, missed, count = totals[name]
        shown = table[~table["suppressed"]]
        # what subtracting the shown groups from the totals leaves: nobody
        assert rows - shown[count].sum() == 0, table
        assert missed - (shown[count] * shown["miss_rate"]).sum() == pytest.approx(0), table
        assert (table["n_reps"] >= 10).all(), table
        t = table.set_index("group")
        assert sorted(t.index) == ["F", OTHER] and t.loc[OTHER, "n_reps"] == 59  # M (smaller) joined X
    where = [x for x in g.notes if f"'M' shown in '{OTHER}'" in x]
    assert len(where) == 2 and "held-out rows" in where[0] and "finished periods" in where[1], g.notes


def test_a_period_the_data_does_not_cover_to_its_end_is_not_a_finished_outcome():
    # two finished quarters of 2024, then the export stops on 2024-07-20, 20 days into Q3; the report
    # is asked as of 2024-10-14, after Q3 ended: Q3's last ten weeks are not in the data
    from tests.conftest import make_tables

    tables = make_tables(n_periods=2)
    o = finished_outcomes(tables, "2024-10-14")
    assert sorted(pd.to_datetime(o["period_end"]).dt.date.unique()) == [
        dt.date(2024, 3, 31),
        dt.date(2024, 6, 30),
    ]
    # the covered periods are those an as-of day right after the data would count, unchanged
    pd.testing.assert_frame_equal(o, finished_outcomes(tables, "2024-07-21"))
    # and the report says how many were left out and why
    notes: list[str] = []
    finished_outcomes(tables, "2024-10-14", notes=notes)
    [note] = notes
    assert "1 quota period(s)" in note and "2024-07-01..2024-09-30" in note
    assert "the data's latest event is on 2024-07-20" in note and "left out" in note
    reps = tables.reps  # the reps employed in Q3 (one left in Q2)
    employed = (reps["hire_date"] <= "2024-09-30") & (
        reps["end_date"].isna() | (reps["end_date"] >= "2024-07-01")
    )
    n_left = int(employed.sum())
    assert 0 < n_left < len(reps)
    assert f"{n_left} rep-period(s)" in note
    # data that covers the as-of day leaves nothing out and says nothing
    notes.clear()
    finished_outcomes(tables, "2024-07-01", notes=notes)
    assert notes == []


def _recovers(tables: dict[str, pd.DataFrame], values: dict[str, float]) -> list[tuple[str, str]]:
    """The pairs of published tables in which a union of one table's groups less a union of the
    other's gives `values` (column: figure, e.g. n and n_high: a small group's counts)."""
    found = []
    for x, y in itertools.permutations(tables, 2):
        a, b = tables[x], tables[y]
        for i in range(1, len(a) + 1):
            for s in itertools.combinations(range(len(a)), i):
                for j in range(1, len(b) + 1):
                    for t in itertools.combinations(range(len(b)), j):
                        if all(
                            a[c].iloc[list(s)].sum() - b[c].iloc[list(t)].sum() == pytest.approx(v)
                            for c, v in values.items()
                        ):
                            found.append((x, y))
    return found


def _selection_tables(audit) -> dict[str, pd.DataFrame]:
    return {a.column: a.selection[~a.selection["suppressed"]] for a in audit.attributes}


def test_two_tables_of_the_same_reps_cannot_be_differenced_down_to_a_small_group():
    # 6 reps of gender X, all under 35, 3 of them in the high band. Each table alone hides them: the
    # gender table shows F and 'other (merged)' (M with X), the age_band table '<35' (F with X) and
    # '35+'. Side by side, '<35' less F was X: 6 reps, 3 in the high band.
    reps = _reps(30, 25, 6).assign(age_band=["<35"] * 30 + ["35+"] * 25 + ["<35"] * 6)
    high = np.r_[np.arange(30) % 5 == 0, np.arange(25) % 5 == 0, [True] * 3 + [False] * 3]
    audit = fairness_audit(_scores(reps, high), reps, min_group_size=20, min_cell=10)
    assert _recovers(_selection_tables(audit), {"n": 6, "n_high": 3}) == []
    for a in audit.attributes:  # each table still hides its own small groups
        assert (a.selection["n"] >= 10).all()
    g, age = audit.get("gender"), audit.get("age_band")
    # one of the two tables gave way: a single group is left in it, no comparison there
    assert min(len(g.selection), len(age.selection)) == 1
    notes = g.notes + age.notes
    assert any("beside the" in n and "less the other's" in n for n in notes), notes


def test_an_attribute_nested_in_a_published_table_is_not_given_back_by_it():
    # office within region: London and Dublin are EMEA, NYC is AMER. The office table hides Dublin's 8
    # reps in 'other (merged)' with NYC, but the report's reps per region (the band table, shown as it
    # is, even with no region control in the audit) less London were Dublin's.
    office = ["London"] * 32 + ["NYC"] * 30 + ["Dublin"] * 8
    reps = _reps(35, 35).assign(office=office, region=["EMEA"] * 32 + ["AMER"] * 30 + ["EMEA"] * 8)
    high = np.r_[np.arange(32) % 4 == 0, np.arange(30) % 4 == 0, [True] * 5 + [False] * 3]
    audit = fairness_audit(_scores(reps, high), reps.drop(columns=["gender"]), min_group_size=20, controls=())
    o = audit.get("office")
    # the band table cannot give way: the office table is one group
    assert list(o.selection["group"]) == [OTHER] and o.merged == ["Dublin", "London", "NYC"]
    assert any("beside the report's reps per region" in n for n in o.notes), o.notes
    # with the region control audited too, neither table gives Dublin back
    audit = fairness_audit(_scores(reps, high), reps.drop(columns=["gender"]), min_group_size=20)
    assert _recovers(_selection_tables(audit), {"n": 8, "n_high": 5}) == []


def test_differenced_group_finds_what_two_tables_give_away():
    from reporting.fairness import differenced_group

    # the published gender table (M with X) and age_band table of the first test
    a = ["F"] * 30 + [OTHER] * 31
    b = ["<35"] * 30 + ["35+"] * 25 + ["<35"] * 6
    groups, inside, k = differenced_group(a, b, 10)
    assert k == 6 and (groups, inside) in ((["<35"], ["F"]), ([OTHER], ["35+"]))
    assert differenced_group(a, b, 6) is None  # 6 reps are not fewer than 6
    assert differenced_group(a, ["north", "south"] * 30 + ["north"], 10) is None  # nothing nested


def test_two_tables_of_the_same_held_out_rows_cannot_be_differenced_down_to_a_small_group():
    # 12 X reps, all under 35, like the M reps: scored, each table shows X or its remainder at 12 reps
    # or more. Only 6 X reps have held-out rows and finished periods: there the gender table folds them
    # with F, and '<35' (M and those X) less M was their snapshots and misses.
    reps = _reps(30, 30, 12).assign(age_band=["35+"] * 30 + ["<35"] * 42)
    seen = reps["rep_id"].iloc[:66]
    rng = np.random.default_rng(3)
    held, outcomes = _held_and_outcomes(seen, rng)
    x_held = held[held["rep_id"].isin(seen.iloc[60:])]
    x_out = outcomes[outcomes["rep_id"].isin(seen.iloc[60:])]
    audit = fairness_audit(
        _scores(reps, [False] * len(reps)),
        reps,
        heldout=held,
        outcomes=outcomes,
        min_group_size=20,
        min_cell=10,
        controls=(),
    )
    for part, count, rows in (("calibration", "n_rows", x_held), ("outcomes", "n_periods", x_out)):
        tables = {}
        for a in audit.attributes:
            t = getattr(a, part)
            t = t[~t["suppressed"]]
            tables[a.column] = t.assign(missed=t[count] * t["miss_rate"])
            assert (t["n_reps"] >= 10).all(), t
        missed = float(rows["missed"].astype(float).sum())
        assert _recovers(tables, {"n_reps": 6, count: len(rows), "missed": missed}) == [], part
    notes = audit.get("gender").notes + audit.get("age_band").notes
    assert any("in the held-out rows: beside the" in n for n in notes), notes
    assert any("in the finished periods: beside the" in n for n in notes), notes


def test_an_audit_that_could_compare_nothing_says_so_and_never_reads_as_a_pass():
    # 35 reps in three regions, no attribute column: the Maven export's shape
    reps = (
        _reps(0, 0, 35)
        .drop(columns=["gender"])
        .assign(region=["Central"] * 11 + ["East"] * 12 + ["West"] * 12)
    )
    audit = fairness_audit(_scores(reps, np.arange(35) % 2 == 0), reps)
    assert not audit.callouts
    (line,) = audit.summary_lines()
    assert line == audit.nothing_compared() == audit.to_dict()["nothing_compared"]
    assert "nothing could be judged" in line and "region (control)" in line and "at least 50" in line
    assert "declares no attribute column" in line and "within" not in line
    # a large enough organisation compares; a column still too small is named as not compared
    reps = _reps(60, 60).assign(age_band=["<35"] * 110 + ["35+"] * 10)
    audit = fairness_audit(_scores(reps, np.arange(120) % 3 == 0), reps)
    assert audit.nothing_compared() is None and not audit.callouts
    assert audit.summary_lines() == [
        "every compared group within [0.8, 1.25] (gender, region (control))",
        "not compared (fewer than two groups of at least 50 scored reps): age_band",
    ]


def test_the_lists_given_out_are_audited_per_group_with_the_bands_as_given():
    """`report --earlier`: per group, mean risk against the miss rate and the error rates of the high
    band each rep was given (not the risk against today's cut: the band is what the manager saw), with
    the held-out and outcome tables' folding of small groups."""
    from reporting.track_record import given_rows

    reps = _reps(60, 60)
    n = len(reps)
    earlier = pd.DataFrame(
        {
            "rep_id": reps["rep_id"],
            "period_start": pd.Timestamp("2024-01-01"),
            "period_end": pd.Timestamp("2024-03-31"),
            "as_of": pd.Timestamp("2024-01-22"),
            "risk": [0.55] * n,  # below a 0.6 cut: the bands given below are what counts
            "risk_band": ["high", "low"] * (n // 2),
            "attainment_to_date": 0.1,
        }
    )
    missed = np.array([True, True, False, False] * (n // 4))
    outcomes = earlier[["rep_id", "period_start", "period_end"]].assign(missed=missed)
    rows = given_rows(earlier.iloc[:-2], outcomes)  # the last two reps: no outcome yet, not here
    assert len(rows) == n - 2 and set(rows.columns) == {"rep_id", "risk", "high", "missed"}
    audit = fairness_audit(_scores(reps, [False] * n), reps, given=rows, high_cut=0.6, min_cell=10)
    t = audit.get("gender").given.set_index("group")
    f = rows[rows["rep_id"].isin(reps.loc[reps["gender"] == "F", "rep_id"])]
    fnr = float((~f.loc[f["missed"], "high"]).mean())
    fpr = float(f.loc[~f["missed"], "high"].mean())
    assert t.loc["F", "fnr"] == pytest.approx(fnr) and t.loc["F", "fpr"] == pytest.approx(fpr)
    assert 0 < fnr < 1 and 0 < fpr < 1  # the bands as given, not risk 0.55 >= 0.6 (never high)
    assert t.loc["F", "mean_risk"] == pytest.approx(0.55) and t.loc["F", "n_reps"] == 60
    assert t.loc["M", "n_reps"] == 58  # two reps without an outcome yet
    # a group with outcomes for fewer than min_cell of its reps is folded, and the notes say where
    few = rows[~rows["rep_id"].isin(reps.loc[reps["gender"] == "M", "rep_id"].iloc[5:])]
    folded = fairness_audit(_scores(reps, [False] * n), reps, given=few, min_cell=10).get("gender")
    assert "M" not in set(folded.given["group"])
    assert any("in the lists given out earlier" in str(n_) for n_ in folded.notes)
    assert audit.to_dict()["attributes"][0]["given"] is not None
    # without earlier lists there is no such table
    assert fairness_audit(_scores(reps, [False] * n), reps).get("gender").given is None
