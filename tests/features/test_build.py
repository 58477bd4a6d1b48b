"""Key features on tiny hand-made organisations: what a snapshot may and may not know."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest

from features.build import (
    KEY_COLUMNS,
    LABEL_COLUMNS,
    META_COLUMNS,
    build_scoring_set,
    build_training_set,
    compute_features,
)
from repradar.errors import UserError
from tests.conftest import typed

Q1 = ("2024-01-01", "2024-03-31")
Q2 = ("2024-04-01", "2024-06-30")


def org(opps=(), history=None, activities=None, engagement=None, reps=None, quotas=None):
    """One or two reps with Q1/Q2 2024 quotas of 100 and whatever else the test needs."""
    reps = reps or [
        dict(
            rep_id="r1",
            manager_id="m1",
            hire_date="2023-01-01",
            end_date=None,
            team="a",
            region="n",
            segment="SMB",
            name="Ann",
            gender="f",
            age_band="30-39",
            shoe_size="41",
        ),
        dict(
            rep_id="r2",
            manager_id="m1",
            hire_date="2023-01-01",
            end_date=None,
            team="a",
            region="n",
            segment="SMB",
            name="Bob",
            gender="m",
            age_band="40-49",
            shoe_size="44",
        ),
    ]
    quotas = quotas or [
        dict(rep_id=r["rep_id"], period_start=ps, period_end=pe, quota_amount=100.0)
        for r in reps
        for ps, pe in (Q1, Q2)
    ]
    opp_cols = [
        "opportunity_id",
        "rep_id",
        "created_date",
        "close_date",
        "stage",
        "amount",
        "is_closed",
        "is_won",
    ]
    return typed(
        reps=pd.DataFrame(reps),
        quotas=pd.DataFrame(quotas),
        opportunities=pd.DataFrame(list(opps), columns=opp_cols),
        opportunity_history=None
        if history is None
        else pd.DataFrame(
            list(history), columns=["opportunity_id", "changed_at", "stage", "amount", "close_date"]
        ),
        activities=None
        if activities is None
        else pd.DataFrame(list(activities), columns=["activity_id", "rep_id", "occurred_at", "type"]),
        engagement=None
        if engagement is None
        else pd.DataFrame(list(engagement), columns=["rep_id", "date", "metric", "value"]),
    )


def won(oid, created, close, amount, rep="r1"):
    return (oid, rep, created, close, "Closed Won", float(amount), True, True)


def lost(oid, created, close, amount, rep="r1"):
    return (oid, rep, created, close, "Closed Lost", float(amount), True, False)


def open_deal(oid, created, close, amount, rep="r1", stage="Qualification"):
    return (oid, rep, created, close, stage, float(amount), False, False)


def snap(tables, as_of, rep="r1", period=Q1):
    snaps = pd.DataFrame([dict(rep_id=rep, period_start=period[0], period_end=period[1], as_of=as_of)])
    return compute_features(tables, snaps).frame.iloc[0]


def snaps(tables, as_ofs, rep="r1", period=Q1):
    frame = pd.DataFrame(
        [dict(rep_id=rep, period_start=period[0], period_end=period[1], as_of=a) for a in as_ofs]
    )
    return compute_features(tables, frame).frame.set_index(pd.Index(as_ofs))


# --- attainment: known before the as-of day only ---------------------------------------------


def test_deal_won_before_as_of_counts_and_one_won_on_as_of_does_not():
    t = org([won("o1", "2024-01-05", "2024-02-09", 30), won("o2", "2024-01-05", "2024-02-10", 20)])
    f = snaps(t, ["2024-02-09", "2024-02-10", "2024-02-11"])
    assert f.loc["2024-02-09", "attainment_to_date"] == 0.0
    assert f.loc["2024-02-10", "attainment_to_date"] == pytest.approx(0.30)
    assert f.loc["2024-02-11", "attainment_to_date"] == pytest.approx(0.50)
    assert f.loc["2024-02-11", "pace_gap"] == pytest.approx(0.50 - 41 / 91)
    assert f.loc["2024-02-11", "elapsed_share"] == pytest.approx(41 / 91)


def test_with_history_the_close_is_known_from_the_day_after_its_change():
    history = [
        ("o1", "2024-01-05T10:00:00Z", "Prospecting", 30.0, "2024-02-20"),
        ("o1", "2024-02-09T23:59:00Z", "Closed Won", 30.0, "2024-02-09"),
    ]
    t = org([won("o1", "2024-01-05", "2024-02-09", 30)], history=history)
    f = snaps(t, ["2024-02-09", "2024-02-10"])
    assert f.loc["2024-02-09", "attainment_to_date"] == 0.0
    assert f.loc["2024-02-09", "open_pipeline_in_period"] == 30.0
    assert f.loc["2024-02-10", "attainment_to_date"] == pytest.approx(0.30)
    assert f.loc["2024-02-10", "open_pipeline_in_period"] == 0.0


def test_won_deal_outside_the_period_does_not_count():
    t = org([won("o1", "2023-12-01", "2023-12-20", 50), won("o2", "2024-01-02", "2024-01-03", 10)])
    assert snap(t, "2024-01-10")["attainment_to_date"] == pytest.approx(0.10)


# --- open pipeline reconstructed from history ------------------------------------------------

HISTORY = [
    ("o1", "2024-01-05T09:00:00Z", "Prospecting", 50.0, "2024-03-15"),
    ("o1", "2024-01-20T09:00:00Z", "Proposal", 80.0, "2024-04-10"),  # pushed out of Q1: a slip
    ("o1", "2024-02-01T09:00:00Z", "Negotiation", 70.0, "2024-03-20"),  # pulled back in: no slip
    ("o1", "2024-02-15T09:00:00Z", "Closed Won", 70.0, "2024-02-15"),
]
DEALS = [won("o1", "2024-01-05", "2024-02-15", 70), open_deal("o2", "2024-01-10", "2024-03-20", 40)]


def test_open_pipeline_follows_the_history():
    t = org(DEALS, history=HISTORY)
    f = snaps(t, ["2024-01-05", "2024-01-06", "2024-01-21", "2024-02-02", "2024-02-16"])
    # created on the as-of day: not known yet
    assert f.loc["2024-01-05", "open_pipeline_total"] == 0.0
    assert f.loc["2024-01-05", "open_deals_in_period"] == 0.0
    assert f.loc["2024-01-06", "open_pipeline_in_period"] == 50.0
    # o2 (no history rows) is open from its creation with its final amount
    assert f.loc["2024-01-21", "open_pipeline_in_period"] == 40.0
    assert f.loc["2024-01-21", "open_pipeline_total"] == 120.0
    assert f.loc["2024-01-21", "close_date_slips_91d"] == 1.0
    assert f.loc["2024-02-02", "open_pipeline_in_period"] == 110.0
    assert f.loc["2024-02-02", "close_date_slips_91d"] == 1.0
    assert f.loc["2024-02-16", "open_pipeline_in_period"] == 40.0
    assert f.loc["2024-02-16", "attainment_to_date"] == pytest.approx(0.70)
    assert f.loc["2024-02-16", "pipeline_coverage"] == pytest.approx(40 / 30)
    # new pipeline counts the amount at creation
    # new pipeline: amount at creation; o1 was created on 01-05 = 28 days before 02-02
    assert f.loc["2024-02-02", "new_pipeline_amount_28d"] == 90.0
    assert f.loc["2024-02-02", "new_deals_91d"] == 2.0
    assert f.loc["2024-02-02", "new_pipeline_amount_91d"] == 90.0
    assert snap(t, "2024-02-03")["new_pipeline_amount_28d"] == 40.0


def test_without_history_deals_keep_their_final_state_from_creation():
    t = org(DEALS)
    fs = compute_features(
        t, pd.DataFrame([dict(rep_id="r1", period_start=Q1[0], period_end=Q1[1], as_of="2024-01-21")])
    )
    f = fs.frame.iloc[0]
    assert f["open_pipeline_in_period"] == 110.0  # o1: final close 02-15 and amount 70
    assert math.isnan(f["close_date_slips_91d"])
    assert fs.history_fallback
    assert any("opportunity_history is absent" in n for n in fs.notes)


def test_overdue_deals_start_the_day_after_their_expected_close():
    t = org(DEALS, history=HISTORY)
    f = snaps(t, ["2024-03-20", "2024-03-21"])
    assert f.loc["2024-03-20", "overdue_open_deals"] == 0.0
    assert f.loc["2024-03-21", "overdue_open_deals"] == 1.0
    assert f.loc["2024-03-21", "overdue_open_share"] == 1.0


def test_the_last_change_of_a_day_wins_whatever_the_file_order():
    history = [
        ("o1", "2024-01-05T18:00:00Z", "Qualification", 90.0, "2024-03-01"),
        ("o1", "2024-01-05T08:00:00Z", "Prospecting", 10.0, "2024-03-01"),
        ("o1", "2024-01-08T12:00:00+05:00", "Proposal", 60.0, "2024-03-01"),  # 07:00 UTC on 01-08
    ]
    t = org([open_deal("o1", "2024-01-05", "2024-03-01", 60, stage="Proposal")], history=history)
    f = snaps(t, ["2024-01-06", "2024-01-08", "2024-01-09"])
    assert f.loc["2024-01-06", "open_pipeline_in_period"] == 90.0
    assert f.loc["2024-01-08", "open_pipeline_in_period"] == 90.0
    assert f.loc["2024-01-09", "open_pipeline_in_period"] == 60.0
    # created amount is the state at the end of the creation day
    assert f.loc["2024-01-09", "new_pipeline_amount_28d"] == 90.0


# --- windows -------------------------------------------------------------------------------


def test_activity_windows_cover_the_days_before_as_of():
    as_of = pd.Timestamp("2024-03-01")
    days_before = [100, 1, 7, 8, 28, 29, 0]  # 100: the start of the activity data
    acts = [
        (f"a{i}", "r1", (as_of - pd.Timedelta(days=d) + pd.Timedelta(hours=12)).isoformat() + "Z", "call")
        for i, d in enumerate(days_before)
    ]
    acts.append(("late", "r1", "2024-02-29T23:30:00-05:00", "demo"))  # 04:30 UTC on the as-of day
    t = org(activities=acts)
    f = snap(t, "2024-03-01")
    assert f["activities_per_week_7d"] == pytest.approx(2.0)  # days 1 and 7
    assert f["activities_per_week_28d"] == pytest.approx(4 * 7 / 28)  # 1, 7, 8, 28
    assert f["calls_per_week_91d"] == pytest.approx(5 * 7 / 91)
    assert f["demos_per_week_28d"] == 0.0
    # a rep with no activities while the table exists: 0, not NaN
    g = snap(t, "2024-03-01", rep="r2")
    assert g["activities_per_week_28d"] == 0.0
    assert math.isnan(g["meeting_demo_share_28d"])  # no activity: a share is undefined


def test_activities_absent_gives_nan_not_zero():
    fs = compute_features(
        org(), pd.DataFrame([dict(rep_id="r1", period_start=Q1[0], period_end=Q1[1], as_of="2024-03-01")])
    )
    assert math.isnan(fs.frame.loc[0, "activities_per_week_28d"])
    assert any("activities is absent" in n for n in fs.notes)


def test_activity_rate_counts_only_days_since_hire():
    reps = [dict(rep_id="r1", manager_id="m", hire_date="2024-02-19", segment="SMB")]
    acts = [("a0", "r1", "2023-12-01T10:00:00Z", "email")]  # an old activity: the data start
    acts += [(f"a{i}", "r1", f"2024-02-{20 + i:02d}T10:00:00Z", "call") for i in range(1, 8)]
    t = org(activities=acts, reps=reps)
    f = snap(t, "2024-03-01")
    # 7 calls in the 11 days since hire
    assert f["activities_per_week_28d"] == pytest.approx(7 * 7 / 11)
    assert f["tenure_days"] == 11.0


def test_activities_before_a_rehire_do_not_count_in_rates_over_the_days_since_it():
    # r1 came back on 2024-02-01 (hire_date is the latest hire) after a first stint whose last calls,
    # 10 of them, fell in late January. The rates are over the days since the hire: so are the counts.
    reps = [dict(rep_id="r1", manager_id="m", hire_date="2024-02-01", segment="SMB")]
    acts = [(f"a{i}", "r1", f"2024-01-{10 + i:02d}T10:00:00Z", "call") for i in range(10)]
    acts += [(f"b{i}", "r1", f"2024-02-{1 + i:02d}T10:00:00Z", "email") for i in range(7)]
    f = snap(org(activities=acts, reps=reps), "2024-02-08")
    assert f["activities_per_week_28d"] == pytest.approx(7.0)  # 7 emails in the 7 days since the hire
    assert f["activities_per_week_91d"] == pytest.approx(7.0)
    assert f["calls_per_week_28d"] == 0.0 and f["emails_per_week_28d"] == pytest.approx(7.0)


def test_win_rate_cycle_and_deal_size_over_180_days():
    deals = [
        won("o1", "2024-01-01", "2024-01-31", 100),
        won("o2", "2024-01-10", "2024-01-20", 300),
        lost("o3", "2024-01-01", "2024-01-15", 50),
        won("o4", "2023-01-01", "2023-03-01", 999),  # closed more than 180 days before
        won("o5", "2024-01-01", "2024-01-11", 200, rep="r2"),
    ]
    f = snap(org(deals), "2024-02-01")
    assert f["win_rate_180d"] == pytest.approx(2 / 3)
    assert f["closed_deals_180d"] == 3.0
    assert f["won_cycle_days_180d"] == pytest.approx((30 + 10) / 2)
    assert f["avg_won_deal_size_180d"] == pytest.approx(200.0)
    assert f["won_deal_size_vs_segment"] == pytest.approx(200.0 / 200.0)
    assert math.isnan(f["late_stage_reach_rate_180d"])  # stages before the close need history


def test_deals_handed_over_before_the_hire_are_the_reps_pipeline_not_their_new_deals():
    # r1, hired on 2024-02-01, took over o1 and o2 from a leaver (the CRM names r1 as their owner from
    # the start) and created o3 on 2024-02-05. The handed-over deals are r1's pipeline and wins, not
    # deals r1 created: a new hire does not start with a deal flow of other people's deals.
    reps = [
        dict(rep_id="r1", manager_id="m", hire_date="2024-02-01", segment="SMB"),
        dict(rep_id="r2", manager_id="m", hire_date="2023-01-01", segment="SMB"),
    ]
    deals = [
        open_deal("o1", "2024-01-10", "2024-03-20", 40),
        won("o2", "2024-01-12", "2024-02-10", 30),
        open_deal("o3", "2024-02-05", "2024-03-25", 10),
    ]
    acts = [(f"a{i}", "r1", f"2024-02-{5 + i:02d}T10:00:00Z", "call") for i in range(10)]
    f = snap(org(deals, reps=reps, activities=acts), "2024-02-20")
    assert f["new_deals_28d"] == 1.0 and f["new_deals_91d"] == 1.0
    assert f["new_pipeline_amount_28d"] == pytest.approx(10.0)
    assert f["avg_new_deal_size_182d"] == pytest.approx(10.0)
    assert f["new_deals_per_100_activities_91d"] == pytest.approx(10.0)
    assert f["open_pipeline_total"] == pytest.approx(50.0)  # o1 and o3
    assert f["attainment_to_date"] == pytest.approx(0.30)  # o2 is r1's win
    assert f["closed_deals_180d"] == 1.0


def test_late_stage_losses_need_history():
    history = [
        ("o1", "2024-01-02T09:00:00Z", "Prospecting", 10.0, "2024-02-01"),
        ("o1", "2024-01-05T09:00:00Z", "Negotiation", 10.0, "2024-02-01"),
        ("o1", "2024-01-09T09:00:00Z", "Closed Lost", 10.0, "2024-01-09"),
        ("o2", "2024-01-02T09:00:00Z", "Prospecting", 10.0, "2024-02-01"),
        ("o2", "2024-01-09T09:00:00Z", "Closed Lost", 10.0, "2024-01-09"),
        ("o3", "2024-01-02T09:00:00Z", "Prospecting", 10.0, "2024-02-01"),
        ("o3", "2024-01-09T09:00:00Z", "Closed Won", 10.0, "2024-01-09"),
    ]
    deals = [
        lost("o1", "2024-01-02", "2024-01-09", 10),
        lost("o2", "2024-01-02", "2024-01-09", 10),
        won("o3", "2024-01-02", "2024-01-09", 10),
    ]
    f = snap(org(deals, history=history), "2024-01-10")
    assert f["late_stage_loss_share_180d"] == pytest.approx(0.5)
    assert f["late_stage_reach_rate_180d"] == pytest.approx(2 / 3)


# --- engagement: unmeasured is NaN, not 0 --------------------------------------------------


def test_engagement_missing_measurements_stay_nan():
    eng = [
        ("r1", "2024-02-20", "pulse_score", 8.0),
        ("r1", "2024-02-27", "pulse_score", 6.0),
        ("r1", "2023-12-01", "pulse_score", 4.0),  # 91 days before 03-01 is 2023-12-01: in
        ("r1", "2024-01-10", "pto_days", 2.0),
        ("r1", "2024-02-28", "one_on_one", 1.0),
        ("r1", "2024-02-10", "team_spirit", 3.0),
        ("r1", "2024-02-12", "team_spirit", 5.0),
        ("r2", "2023-10-01", "csat", 4.0),  # r2 is in the export, with no pulse, leave or 1:1 recorded
    ]
    t = org(engagement=eng)
    fs = compute_features(
        t,
        pd.DataFrame(
            [dict(rep_id=r, period_start=Q1[0], period_end=Q1[1], as_of="2024-03-01") for r in ("r1", "r2")]
        ),
    )
    f1, f2 = fs.frame.iloc[0], fs.frame.iloc[1]
    assert f1["pulse_mean_28d"] == pytest.approx(7.0)
    assert f1["pulse_mean_91d"] == pytest.approx(6.0)
    assert f1["pulse_trend_28d"] == pytest.approx(7.0 - 4.0)
    assert f1["pto_days_91d"] == 2.0
    assert f1["days_since_pto"] == 51.0
    assert f1["one_on_ones_28d"] == 1.0
    # r2 never answered the pulse survey: NaN, not 0
    assert math.isnan(f2["pulse_mean_28d"])
    assert math.isnan(f2["pulse_trend_28d"])
    # ... but leave and 1:1s are tracked events: none recorded is 0
    assert f2["pto_days_91d"] == 0.0
    assert f2["one_on_ones_91d"] == 0.0
    assert f2["days_since_pto"] == 51.0  # none yet: days since leave records began (01-10)
    # metrics nobody records: NaN for everyone
    assert math.isnan(f1["csat_mean_91d"]) and math.isnan(f1["training_hours_91d"])
    # an unknown metric becomes a generic 28-day mean
    assert "eng__team_spirit_mean_28d" in fs.feature_names
    assert f1["eng__team_spirit_mean_28d"] == pytest.approx(4.0)
    assert math.isnan(f2["eng__team_spirit_mean_28d"])


def test_a_rep_without_any_engagement_row_is_unknown_not_zero():
    # r2 has no engagement row of any metric: the HR/LMS export does not cover them, so "0 1:1s"
    # or "0 CRM logins" would be claims about them the data do not make (reasons cite these values)
    eng = [
        ("r1", "2024-01-10", "pto_days", 2.0),
        ("r1", "2024-02-28", "one_on_one", 1.0),
        ("r1", "2024-02-20", "crm_logins", 3.0),
        ("r1", "2024-02-21", "training_hours", 1.0),
        ("r1", "2024-02-22", "peer_sessions", 1.0),
    ]
    snaps = pd.DataFrame(
        [dict(rep_id=r, period_start=Q1[0], period_end=Q1[1], as_of="2024-03-01") for r in ("r1", "r2")]
    )
    fs = compute_features(org(engagement=eng), snaps)
    f1, f2 = fs.frame.iloc[0], fs.frame.iloc[1]
    totals = (
        "pto_days_91d",
        "days_since_pto",
        "one_on_ones_28d",
        "one_on_ones_91d",
        "crm_logins_per_week_28d",
        "crm_logins_per_week_91d",
        "training_hours_28d",
        "training_hours_91d",
        "peer_sessions_28d",
        "peer_sessions_91d",
    )
    for c in totals:
        assert not math.isnan(f1[c]), c
        assert math.isnan(f2[c]), c
    # point in time: covered only from the day after the rep's first measurement
    later = eng + [("r2", "2024-03-05", "pulse_score", 7.0)]
    fs = compute_features(org(engagement=later), snaps)
    assert math.isnan(fs.frame.iloc[1]["one_on_ones_91d"])
    snaps2 = snaps.assign(as_of="2024-03-06")
    assert compute_features(org(engagement=later), snaps2).frame.iloc[1]["one_on_ones_91d"] == 0.0


def test_engagement_absent_gives_nan():
    fs = compute_features(
        org(), pd.DataFrame([dict(rep_id="r1", period_start=Q1[0], period_end=Q1[1], as_of="2024-03-01")])
    )
    f = fs.frame.iloc[0]
    for c in ("pulse_mean_28d", "pto_days_91d", "one_on_ones_91d", "crm_logins_per_week_28d"):
        assert math.isnan(f[c]), c
    assert any("engagement is absent" in n for n in fs.notes)


# --- quota and tenure --------------------------------------------------------------------------


def test_quota_against_own_history_and_segment():
    reps = [dict(rep_id=f"r{i}", manager_id="m", hire_date="2023-01-01", segment="SMB") for i in (1, 2, 3)]
    quotas = [
        dict(rep_id="r1", period_start=Q1[0], period_end=Q1[1], quota_amount=100.0),
        dict(rep_id="r1", period_start=Q2[0], period_end=Q2[1], quota_amount=150.0),
        dict(rep_id="r2", period_start=Q2[0], period_end=Q2[1], quota_amount=100.0),
        dict(rep_id="r3", period_start=Q2[0], period_end=Q2[1], quota_amount=120.0),
    ]
    t = org(reps=reps, quotas=quotas)
    assert math.isnan(snap(t, "2024-01-15")["quota_vs_own_history"])
    f = snap(t, "2024-04-15", period=Q2)
    assert f["quota_vs_own_history"] == pytest.approx(1.5)
    assert f["quota_vs_segment"] == pytest.approx(150 / 120)
    assert f["quota_amount"] == 150.0
    assert f["quarter_of_year"] == 2.0


def test_quota_against_own_history_compares_quotas_per_month_across_period_lengths():
    # r1 moves from a quarterly quota to monthly ones: 100 for April is the same target per month as
    # 300 for Q1, not a third of it. r2 has fiscal quarters (Feb-Apr, May-Jul), as long as Q1.
    reps = [dict(rep_id=f"r{i}", manager_id="m", hire_date="2023-01-01", segment="SMB") for i in (1, 2)]
    quotas = [
        dict(rep_id="r1", period_start=Q1[0], period_end=Q1[1], quota_amount=300.0),
        dict(rep_id="r1", period_start="2024-04-01", period_end="2024-04-30", quota_amount=100.0),
        dict(rep_id="r1", period_start="2024-05-01", period_end="2024-05-31", quota_amount=150.0),
        dict(rep_id="r2", period_start="2024-02-01", period_end="2024-04-30", quota_amount=200.0),
        dict(rep_id="r2", period_start="2024-05-01", period_end="2024-07-31", quota_amount=300.0),
    ]
    t = org(reps=reps, quotas=quotas)
    april = snap(t, "2024-04-15", period=("2024-04-01", "2024-04-30"))
    assert april["quota_vs_own_history"] == pytest.approx(1.0)
    may = snap(t, "2024-05-15", period=("2024-05-01", "2024-05-31"))
    assert may["quota_vs_own_history"] == pytest.approx(150 / ((100 + 100) / 2))
    assert may["quota_amount"] == 150.0
    fiscal = snap(t, "2024-05-15", rep="r2", period=("2024-05-01", "2024-07-31"))
    assert fiscal["quota_vs_own_history"] == pytest.approx(1.5)


# --- snapshots and labels ----------------------------------------------------------------------


def test_no_snapshot_before_hire_or_after_end_date():
    reps = [
        dict(rep_id="r1", manager_id="m", hire_date="2024-01-20", end_date=None, segment="SMB"),
        dict(rep_id="r2", manager_id="m", hire_date="2023-01-01", end_date="2024-02-15", segment="SMB"),
    ]
    t = org([won("o1", "2024-06-01", "2024-07-10", 1, rep="r1")], reps=reps)
    fs = build_training_set(t, every_days=7)
    f = fs.frame
    assert (f.loc[f.rep_id == "r1", "as_of"] >= pd.Timestamp("2024-01-20")).all()
    assert f.loc[f.rep_id == "r1", "as_of"].min() == pd.Timestamp("2024-01-22")
    assert (f.loc[f.rep_id == "r2", "as_of"] <= pd.Timestamp("2024-02-15")).all()
    assert f.loc[f.rep_id == "r2", "as_of"].max() == pd.Timestamp("2024-02-12")
    assert f.loc[f.rep_id == "r2", "period_start"].eq(pd.Timestamp(Q1[0])).all()
    # as_of = period_start + 7k, inside the period
    assert ((f["as_of"] - f["period_start"]).dt.days % 7 == 0).all()
    assert (f["as_of"] <= f["period_end"]).all()
    assert list(f.columns[:11]) == KEY_COLUMNS + META_COLUMNS


def test_labels_follow_the_contract():
    deals = [
        won("o1", "2024-01-05", "2024-02-10", 60),
        won("o2", "2024-03-01", "2024-03-31", 30),  # last day of Q1 counts
        won("o3", "2024-03-01", "2024-04-01", 500),  # Q2
        lost("o4", "2024-01-05", "2024-02-10", 900),
        won("o5", "2024-01-05", "2024-02-10", 100, rep="r2"),
        open_deal("o6", "2024-06-01", "2024-09-01", 5),  # something in July: Q2 is finished
    ]
    deals.append(won("o7", "2024-07-01", "2024-07-02", 1))
    t = org(deals)
    fs = build_training_set(t, every_days=30)
    f = fs.frame.set_index(["rep_id", "period_start", "as_of"]).sort_index()
    q1 = f.loc[("r1", pd.Timestamp(Q1[0]))]
    assert q1["attainment"].eq(0.9).all() and q1["missed"].eq(True).all()
    assert f.loc[("r1", pd.Timestamp(Q2[0])), "attainment"].eq(5.0).all()
    assert f.loc[("r2", pd.Timestamp(Q1[0])), "missed"].eq(False).all()  # exactly 1.0 is not a miss
    fs2 = build_training_set(t, every_days=30, miss_threshold=0.8)
    assert not fs2.frame.loc[(fs2.frame.rep_id == "r1") & (fs2.frame.period_start == Q1[0]), "missed"].any()
    assert str(fs.frame["missed"].dtype) == "boolean"
    assert list(fs.frame.columns[-2:]) == LABEL_COLUMNS
    assert any("miss rate" in line for line in fs.summary_lines())


def test_unfinished_periods_are_not_in_training_and_scoring_has_no_labels():
    t = org([won("o1", "2024-01-05", "2024-05-10", 60)])  # latest event: 2024-05-10
    fs = build_training_set(t)
    assert fs.frame["period_start"].eq(pd.Timestamp(Q1[0])).all()
    assert fs.frame["missed"].notna().all()
    sc = build_scoring_set(t, pd.Timestamp("2024-05-11").date())
    assert len(sc.frame) == 2 and sc.frame["as_of"].eq(pd.Timestamp("2024-05-11")).all()
    assert sc.frame["missed"].isna().all() and sc.frame["attainment"].isna().all()
    assert sc.frame["period_start"].eq(pd.Timestamp(Q2[0])).all()
    assert sc.frame.loc[sc.frame.rep_id == "r1", "attainment_to_date"].item() == pytest.approx(0.6)
    assert sc.frame.loc[sc.frame.rep_id == "r2", "attainment_to_date"].item() == 0.0


def test_no_finished_period_is_a_user_error():
    t = org([won("o1", "2024-01-05", "2024-02-10", 60)])
    with pytest.raises(UserError, match="no finished quota period"):
        build_training_set(t)


def test_no_training_period_says_why_no_quotas_or_no_one_employed():
    # Finished periods exist (latest event in May), but both reps left before Q1: the message must
    # not claim that every period is unfinished.
    gone = [
        dict(rep_id=r, manager_id="m1", hire_date="2023-01-01", end_date="2023-06-30") for r in ("r1", "r2")
    ]
    t = org([won("o1", "2023-01-05", "2024-05-10", 60)], reps=gone)
    with pytest.raises(UserError) as exc:
        build_training_set(t)
    assert "no finished quota period with an employed rep" in str(exc.value)
    assert "every period ends on or after" not in str(exc.value)
    assert "hire_date" in str(exc.value) and "end_date" in str(exc.value)
    # No quotas at all (a header-only quotas file).
    t = org([won("o1", "2024-01-05", "2024-05-10", 60)])
    t = dataclasses.replace(t, quotas=t.quotas.iloc[0:0])
    with pytest.raises(UserError, match="the quotas table has no rows"):
        build_training_set(t)


def test_scoring_outside_every_period_is_a_user_error_naming_the_range():
    t = org([won("o1", "2024-01-05", "2024-02-10", 60)])
    with pytest.raises(UserError, match="2024-01-01 to 2024-06-30"):
        build_scoring_set(t, pd.Timestamp("2024-07-01").date())


def test_scoring_before_the_new_periods_quotas_are_loaded_names_the_reps_and_what_to_do():
    # The first weeks of a quarter: Q3's quotas are not loaded yet, so no period holds 2024-07-08 for
    # the two reps employed that day (r3 left in June). Partly loaded, the covered rep is scored.
    reps = [
        dict(rep_id="r1", manager_id="m", hire_date="2023-01-01", segment="SMB"),
        dict(rep_id="r2", manager_id="m", hire_date="2023-01-01", segment="SMB"),
        dict(rep_id="r3", manager_id="m", hire_date="2023-01-01", end_date="2024-06-15", segment="SMB"),
    ]
    t = org([won("o1", "2024-01-05", "2024-02-10", 60)], reps=reps)
    with pytest.raises(UserError) as err:
        build_scoring_set(t, pd.Timestamp("2024-07-08").date())
    text = str(err.value)
    assert "outside every quota period (quota periods cover 2024-01-01 to 2024-06-30)" in text
    assert "none of the 2 rep(s) employed on 2024-07-08 (r1, r2) has a quota period containing it" in text
    assert "quotas are not loaded yet, add them to quotas (one row per rep: rep_id, period_start" in text
    q3 = pd.DataFrame(
        [dict(rep_id="r2", period_start="2024-07-01", period_end="2024-09-30", quota_amount=100.0)]
    )
    t = org(
        [won("o1", "2024-01-05", "2024-02-10", 60)],
        reps=reps,
        quotas=t.quotas.to_dict("records") + q3.to_dict("records"),
    )
    fs = build_scoring_set(t, pd.Timestamp("2024-07-08").date())
    assert fs.frame["rep_id"].tolist() == ["r2"]
    assert any(
        n.startswith("1 rep(s) employed on 2024-07-08 are not scored") and "(r1)" in n for n in fs.notes
    )


def test_scoring_skips_reps_not_employed_on_as_of():
    reps = [
        dict(rep_id="r1", manager_id="m", hire_date="2024-03-01", segment="SMB"),
        dict(rep_id="r2", manager_id="m", hire_date="2023-01-01", end_date="2024-02-01", segment="SMB"),
        dict(rep_id="r3", manager_id="m", hire_date="2023-01-01", segment="SMB"),
    ]
    t = org([won("o1", "2024-01-05", "2024-02-10", 60)], reps=reps)
    fs = build_scoring_set(t, pd.Timestamp("2024-02-20").date())
    assert fs.frame["rep_id"].tolist() == ["r3"]


def test_attributes_and_names_never_become_features():
    fs = build_scoring_set(
        org([won("o1", "2024-01-05", "2024-02-10", 60)]), pd.Timestamp("2024-02-20").date()
    )
    for col in ("gender", "age_band", "shoe_size", "name"):
        assert col not in fs.feature_names
        assert col not in fs.frame.columns
    assert any("gender" in n and "shoe_size" in n for n in fs.notes)
    assert fs.frame["segment"].tolist() == ["SMB", "SMB"]


def test_peer_columns_are_segment_medians_at_the_same_as_of():
    reps = [
        dict(rep_id=f"r{i}", manager_id="m", hire_date="2023-01-01", segment=s)
        for i, s in enumerate(["SMB", "SMB", "SMB", "ENT"])
    ]
    deals = [won(f"o{i}", "2024-01-02", "2024-01-03", a, rep=f"r{i}") for i, a in enumerate([10, 20, 60, 90])]
    t = org(deals, reps=reps)
    fs = build_scoring_set(t, pd.Timestamp("2024-01-10").date())
    f = fs.frame.set_index("rep_id")
    assert f.loc["r0", "peer__attainment_to_date"] == pytest.approx(0.20)
    assert f.loc["r3", "peer__attainment_to_date"] == pytest.approx(0.90)
    assert all(f"peer__{n}" in f.columns for n in ("win_rate_180d", "pipeline_coverage"))
    assert not any(c.startswith("peer__") for c in fs.feature_names)


def test_frame_is_typed():
    fs = build_scoring_set(
        org([won("o1", "2024-01-05", "2024-02-10", 60)]), pd.Timestamp("2024-02-20").date()
    )
    f = fs.frame
    for c in ("period_start", "period_end", "as_of"):
        assert pd.api.types.is_datetime64_dtype(f[c]) and (f[c] == f[c].dt.normalize()).all()
    assert all(f[c].dtype == np.float64 for c in fs.feature_names)
    assert f["day_of_period"].tolist() == [51, 51] and f["week_of_period"].tolist() == [8, 8]


def test_period_outcomes_are_the_full_builds_labels_and_quota_against_segment(tiny_tables):
    # the lean path (two SQL relations, four tables) must give what the whole feature build gives
    from features.build import compute_features, default_reference_day, period_outcomes

    ref = default_reference_day(tiny_tables)
    o = period_outcomes(tiny_tables, ref)
    assert len(o) and o["missed"].notna().all() and o["missed"].any() and not o["missed"].all()
    end = tiny_tables.reps.set_index(tiny_tables.reps["rep_id"].astype(str))["end_date"]
    last = o["rep_id"].astype(str).map(end)
    snaps = o[["rep_id", "period_start", "period_end"]].assign(
        as_of=o["period_end"].where(last.isna() | (last >= o["period_end"]), last)
    )
    full = compute_features(tiny_tables, snaps, reference_day=ref).frame
    pd.testing.assert_series_equal(o["attainment"], full["attainment"], check_names=False)
    assert o["missed"].tolist() == full["missed"].tolist()
    pd.testing.assert_series_equal(o["quota_vs_segment"], full["quota_vs_segment"], check_names=False)
    # the leaver's period is read on their last day; the running period is not an outcome yet
    assert "r2" in set(o["rep_id"]) and (o["period_end"] < pd.Timestamp(ref)).all()
    assert o.groupby("rep_id").size().max() <= tiny_tables.quotas.groupby("rep_id").size().max()
