"""Stage-by-stage conversion, time in stage, deal flow per activity and the rep's earlier periods,
on tiny hand-made organisations."""

from __future__ import annotations

import math

import pytest

from tests.features.test_build import Q2, lost, open_deal, org, snap, snaps, won


def _stage_org(with_history=True):
    history = [
        # o1: Prospecting 3 days, Qualification 7 days, Proposal 8 days (a slipped close date on the
        # way is not a new stage), then lost from a late stage
        ("o1", "2024-01-02T09:00:00Z", "Prospecting", 10.0, "2024-02-01"),
        ("o1", "2024-01-05T09:00:00Z", "Qualification", 10.0, "2024-02-01"),
        ("o1", "2024-01-12T09:00:00Z", "Proposal", 12.0, "2024-02-01"),
        ("o1", "2024-01-15T09:00:00Z", "Proposal", 12.0, "2024-02-20"),
        ("o1", "2024-01-20T09:00:00Z", "Closed Lost", 12.0, "2024-01-20"),
        # o2: lost from Prospecting after 2 days
        ("o2", "2024-01-02T09:00:00Z", "Prospecting", 20.0, "2024-02-01"),
        ("o2", "2024-01-04T09:00:00Z", "Closed Lost", 20.0, "2024-01-04"),
        # o3: Prospecting 3 days, then Negotiation since 2024-01-06 (still open)
        ("o3", "2024-01-03T09:00:00Z", "Prospecting", 30.0, "2024-03-01"),
        ("o3", "2024-01-06T09:00:00Z", "Negotiation", 30.0, "2024-03-01"),
    ]
    deals = [
        lost("o1", "2024-01-02", "2024-01-20", 12),
        lost("o2", "2024-01-02", "2024-01-04", 20),
        open_deal("o3", "2024-01-03", "2024-03-01", 30, stage="Negotiation"),
    ]
    acts = [(f"a{i}", "r1", f"2024-01-{10 + i:02d}T10:00:00Z", "call") for i in range(10)]
    return org(deals, history=history if with_history else None, activities=acts)


def test_stage_conversion_time_in_stage_and_stale_deals():
    f = snap(_stage_org(), "2024-02-01")
    # early exits: o1 Prospecting -> Qualification -> Proposal, o2 lost, o3 -> Negotiation
    assert f["early_stage_progress_rate_180d"] == pytest.approx(3 / 4)
    # late exits: o1 lost from Proposal
    assert f["late_stage_progress_rate_180d"] == pytest.approx(0.0)
    assert f["stage_progress_rate_364d"] == pytest.approx(3 / 5)
    assert f["stage_days_91d"] == pytest.approx((3 + 7 + 8 + 2 + 3) / 5)
    # o3 has sat in Negotiation since 2024-01-06: 26 days on 2024-02-01
    assert f["open_deal_stage_age_days"] == pytest.approx(26.0)
    # 3 deals created, 10 activities; amounts at creation 10, 20, 30
    assert f["new_deals_per_100_activities_91d"] == pytest.approx(30.0)
    assert f["new_deals_per_100_activities_182d"] == pytest.approx(30.0)
    assert f["avg_new_deal_size_182d"] == pytest.approx(20.0)


def test_stage_features_know_only_changes_before_the_as_of_day():
    t = _stage_org()
    f = snap(t, "2024-01-06")  # o3's move to Negotiation on 01-06 is not known yet
    assert f["early_stage_progress_rate_180d"] == pytest.approx(1 / 2)  # o1 -> Qualification, o2 lost
    assert f["open_deal_stage_age_days"] == pytest.approx(((6 - 5) + (6 - 3)) / 2)  # o1, o3
    assert math.isnan(f["late_stage_progress_rate_180d"])  # no late exit yet


def test_stage_features_need_history():
    f = snap(_stage_org(with_history=False), "2024-02-01")
    for c in (
        "early_stage_progress_rate_180d",
        "late_stage_progress_rate_180d",
        "stage_progress_rate_364d",
        "stage_days_91d",
        "open_deal_stage_age_days",
    ):
        assert math.isnan(f[c]), c
    assert f["new_deals_per_100_activities_91d"] == pytest.approx(30.0)


def test_previous_periods_attainment_as_known_when_they_ended():
    deals = [
        won("o1", "2024-01-05", "2024-02-01", 50),
        won("o2", "2024-01-05", "2024-03-31", 30),  # the last day of Q1 counts
        won("o3", "2024-04-02", "2024-04-20", 40),
        won("o4", "2024-01-05", "2024-03-01", 70, rep="r2"),
    ]
    t = org(deals)
    q1 = snap(t, "2024-03-15")
    assert math.isnan(q1["prev_period_attainment"])  # no earlier period
    assert math.isnan(q1["attainment_mean_4p"])
    q2 = snap(t, "2024-05-01", period=Q2)
    assert q2["prev_period_attainment"] == pytest.approx(0.8)
    assert q2["attainment_mean_4p"] == pytest.approx(0.8)
    assert q2["attainment_to_date"] == pytest.approx(0.4)
    assert snap(t, "2024-04-01", rep="r2", period=Q2)["prev_period_attainment"] == pytest.approx(0.7)


def test_dynamics_close_is_read_as_a_late_stage():
    # Develop -> Close -> lost: lost from Dynamics 365's last open stage, so it reached a late stage.
    history = [
        ("o1", "2024-01-02T09:00:00Z", "Develop", 10.0, "2024-02-01"),
        ("o1", "2024-01-05T09:00:00Z", "4-Close", 10.0, "2024-02-01"),
        ("o1", "2024-01-20T09:00:00Z", "Closed Lost", 10.0, "2024-01-20"),
    ]
    f = snap(org([lost("o1", "2024-01-02", "2024-01-20", 10)], history=history), "2024-02-01")
    assert f["late_stage_progress_rate_180d"] == pytest.approx(0.0)  # one late exit: lost
    assert f["late_stage_reach_rate_180d"] == pytest.approx(1.0)
    assert f["early_stage_progress_rate_180d"] == pytest.approx(1.0)  # Develop -> 4-Close moved on


def test_a_stage_closed_deals_kept_is_still_open_for_the_deals_in_it():
    # Pipedrive and Dynamics 365 keep a closed deal's last open stage (won or lost is a status):
    # o1 was won and o3 lost while in Negotiations Started, o2 sits there open. The stage is still
    # open: o2 is open pipeline, and o1 counts as won only from its close, not from entering it.
    history = [
        ("o1", "2024-01-02T09:00:00Z", "Qualified", 10.0, "2024-02-01"),
        ("o1", "2024-01-05T09:00:00Z", "Negotiations Started", 10.0, "2024-02-01"),
        ("o2", "2024-01-03T09:00:00Z", "Qualified", 20.0, "2024-03-01"),
        ("o2", "2024-01-08T09:00:00Z", "Negotiations Started", 20.0, "2024-03-01"),
        ("o3", "2024-01-03T09:00:00Z", "Negotiations Started", 40.0, "2024-03-01"),
    ]
    deals = [
        ("o1", "r1", "2024-01-02", "2024-01-20", "Negotiations Started", 10.0, True, True),
        open_deal("o2", "2024-01-03", "2024-03-01", 20, stage="Negotiations Started"),
        ("o3", "r1", "2024-01-03", "2024-01-25", "Negotiations Started", 40.0, True, False),
    ]
    f = snaps(org(deals, history=history), ["2024-01-15", "2024-02-01"])
    early = f.loc["2024-01-15"]
    assert early["attainment_to_date"] == 0.0  # o1 is won on 01-20, not when it entered the stage
    assert early["open_pipeline_total"] == pytest.approx(70.0)  # all three still open
    later = f.loc["2024-02-01"]
    assert later["attainment_to_date"] == pytest.approx(0.10)
    assert later["open_pipeline_total"] == pytest.approx(20.0)  # o2 is open, o3 lost
    assert later["open_deal_stage_age_days"] == pytest.approx(24.0)  # o2 since 01-08


def test_a_closed_stage_holding_both_outcomes_keeps_each_deals_own():
    history = [
        ("o1", "2024-01-02T09:00:00Z", "Open", 10.0, "2024-02-01"),
        ("o1", "2024-01-10T09:00:00Z", "Closed", 10.0, "2024-01-10"),
        ("o2", "2024-01-02T09:00:00Z", "Open", 20.0, "2024-02-01"),
        ("o2", "2024-01-12T09:00:00Z", "Closed", 20.0, "2024-01-12"),
    ]
    deals = [
        ("o1", "r1", "2024-01-02", "2024-01-10", "Closed", 10.0, True, True),
        ("o2", "r1", "2024-01-02", "2024-01-12", "Closed", 20.0, True, False),
    ]
    f = snap(org(deals, history=history), "2024-02-01")
    assert f["attainment_to_date"] == pytest.approx(0.10)  # o1 won, o2 lost
    assert f["open_pipeline_total"] == pytest.approx(0.0)


def test_salesforce_value_proposition_is_an_early_stage():
    # Value Proposition comes before Id. Decision Makers and Perception Analysis in Salesforce's
    # default order: a deal lost there never reached a late stage, and it moved on from early ones.
    history = [
        ("o1", "2024-01-02T09:00:00Z", "Needs Analysis", 10.0, "2024-02-01"),
        ("o1", "2024-01-05T09:00:00Z", "Value Proposition", 10.0, "2024-02-01"),
        ("o1", "2024-01-08T09:00:00Z", "Id. Decision Makers", 10.0, "2024-02-01"),
        ("o1", "2024-01-20T09:00:00Z", "Closed Lost", 10.0, "2024-01-20"),
    ]
    f = snap(org([lost("o1", "2024-01-02", "2024-01-20", 10)], history=history), "2024-02-01")
    assert f["late_stage_reach_rate_180d"] == pytest.approx(0.0)
    assert f["early_stage_progress_rate_180d"] == pytest.approx(2 / 3)  # two moved on, one lost
    assert math.isnan(f["late_stage_progress_rate_180d"])  # no late exit


def test_a_stage_closed_only_by_its_won_deals_counts_a_deal_from_its_close_date():
    # Pipedrive's last stage "Contract signed": every deal in it is won and none leaves it, so it reads
    # as closed-won. A deal waits there open until it is marked won (close_date): o1 entered on 01-05
    # and was won on 01-20, o2 entered on 01-08 expecting 03-01 and was won on 04-02, in Q2.
    history = [
        ("o1", "2024-01-02T09:00:00Z", "Qualified", 10.0, "2024-02-10"),
        ("o1", "2024-01-05T09:00:00Z", "Contract signed", 10.0, "2024-02-10"),
        ("o2", "2024-01-03T09:00:00Z", "Qualified", 20.0, "2024-03-01"),
        ("o2", "2024-01-08T09:00:00Z", "Contract signed", 20.0, "2024-03-01"),
    ]
    deals = [
        ("o1", "r1", "2024-01-02", "2024-01-20", "Contract signed", 10.0, True, True),
        ("o2", "r1", "2024-01-03", "2024-04-02", "Contract signed", 20.0, True, True),
    ]
    t = org(deals, history=history)
    f = snaps(t, ["2024-01-15", "2024-02-01"])
    early = f.loc["2024-01-15"]
    assert early["attainment_to_date"] == 0.0  # nothing is won before 01-20
    assert early["open_pipeline_total"] == pytest.approx(30.0)
    assert early["closed_deals_180d"] == 0.0
    later = f.loc["2024-02-01"]
    assert later["attainment_to_date"] == pytest.approx(0.10)  # o1 only: o2 is won in Q2
    assert later["open_pipeline_in_period"] == pytest.approx(20.0)  # o2, expected on 03-01
    assert later["won_cycle_days_180d"] == pytest.approx(18.0)  # o1: 01-02 -> 01-20
    q2 = snaps(t, ["2024-04-02", "2024-04-03"], period=Q2)
    assert q2.loc["2024-04-02", "attainment_to_date"] == 0.0
    assert q2.loc["2024-04-03", "attainment_to_date"] == pytest.approx(0.20)  # o2 counts where it was won
