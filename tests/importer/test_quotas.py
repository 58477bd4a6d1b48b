"""Quota policies give the amounts docs/import.md promises, on a three-rep organisation."""

import datetime as dt

import pandas as pd
import pytest

from importer.mapping import QuotaPolicy
from importer.quotas import derive_quotas, period_start, periods_between
from repradar.errors import UserError

T = pd.Timestamp


def org():
    """A and B in team T1 from January 2023; C in T2 from mid-May 2023.

    Won: A 100 in Q1 and 300 in Q2; B nothing in Q1 (one lost deal) and 100 in Q2; C 50 in Q2.
    The last closed deal (lost, C) closes in Q3.
    """
    reps = pd.DataFrame(
        {
            "rep_id": ["A", "B", "C"],
            "manager_id": ["m1", "m1", "m2"],
            "hire_date": [T("2023-01-01"), T("2023-01-01"), T("2023-05-15")],
            "team": ["T1", "T1", "T2"],
        }
    )
    deals = [
        ("A", "2023-02-10", 100.0, True, True),
        ("B", "2023-01-20", 80.0, True, False),
        ("A", "2023-05-02", 300.0, True, True),
        ("B", "2023-06-30", 100.0, True, True),
        ("C", "2023-06-01", 50.0, True, True),
        ("C", "2023-08-01", 20.0, True, False),
        ("A", "2023-12-01", 500.0, False, False),  # open: no effect on history
    ]
    opps = pd.DataFrame(deals, columns=["rep_id", "close_date", "amount", "is_closed", "is_won"])
    opps["close_date"] = pd.to_datetime(opps["close_date"])
    opps["created_date"] = T("2023-01-05")
    return reps, opps


def amounts(result):
    q = result.quotas
    return {
        (r, str(p.date())): a
        for r, p, a in zip(q["rep_id"], q["period_start"], q["quota_amount"], strict=True)
    }


def test_fixed_policy_gives_every_employed_rep_the_amount_each_period():
    reps, opps = org()
    result = derive_quotas(reps, opps, QuotaPolicy(kind="fixed", amount=1000.0, period="quarter"))
    assert amounts(result) == {
        ("A", "2023-01-01"): 1000.0,
        ("B", "2023-01-01"): 1000.0,
        ("A", "2023-04-01"): 1000.0,
        ("B", "2023-04-01"): 1000.0,
        ("C", "2023-04-01"): 1000.0,
        ("A", "2023-07-01"): 1000.0,
        ("B", "2023-07-01"): 1000.0,
        ("C", "2023-07-01"): 1000.0,
    }
    q = result.quotas
    assert (q["period_end"] == q["period_start"] + pd.DateOffset(months=3) - pd.Timedelta(days=1)).all()
    assert "quotas were derived" in result.notes[0]


def test_fixed_policy_by_month_within_from_and_to():
    reps, opps = org()
    policy = QuotaPolicy(
        kind="fixed", amount=10.0, period="month", start=dt.date(2023, 5, 10), end=dt.date(2023, 6, 1)
    )
    result = derive_quotas(reps, opps, policy)
    assert sorted(amounts(result)) == [
        ("A", "2023-05-01"),
        ("A", "2023-06-01"),
        ("B", "2023-05-01"),
        ("B", "2023-06-01"),
        ("C", "2023-05-01"),
        ("C", "2023-06-01"),
    ]


def test_trailing_share_of_the_reps_own_history_with_team_fallback():
    reps, opps = org()
    result = derive_quotas(reps, opps, QuotaPolicy(kind="trailing_share", share=1.0, basis="rep", lookback=4))
    assert amounts(result) == {
        # Q1: nobody has history and there is no fallback_amount: no quota.
        ("A", "2023-04-01"): 100.0,  # A's Q1
        ("B", "2023-04-01"): 50.0,  # B won nothing in Q1: T1's per-rep average (100 + 0) / 2
        # C was not employed in Q1 and T2 had nobody then: no quota in Q2.
        ("A", "2023-07-01"): 200.0,  # (100 + 300) / 2
        ("B", "2023-07-01"): 50.0,  # (0 + 100) / 2
        ("C", "2023-07-01"): 50.0,  # C's only period, Q2
    }
    assert result.how.tolist().count("team_history") == 1
    assert any("no quota" in n for n in result.notes)


def test_trailing_share_fallback_amount_and_share_and_lookback():
    reps, opps = org()
    policy = QuotaPolicy(kind="trailing_share", share=0.5, basis="rep", lookback=1, fallback_amount=70.0)
    got = amounts(derive_quotas(reps, opps, policy))
    assert got[("A", "2023-01-01")] == 70.0 and got[("B", "2023-01-01")] == 70.0
    assert got[("C", "2023-04-01")] == 70.0
    assert got[("A", "2023-07-01")] == 150.0  # half of Q2 only (lookback 1)
    policy = QuotaPolicy(kind="trailing_share", share=1.0, fallback="amount", fallback_amount=70.0)
    got = amounts(derive_quotas(reps, opps, policy))
    assert got[("B", "2023-04-01")] == 70.0  # no team fallback when fallback is `amount`


def test_trailing_share_of_the_teams_average():
    reps, opps = org()
    policy = QuotaPolicy(kind="trailing_share", share=1.0, basis="team", lookback=4)
    assert amounts(derive_quotas(reps, opps, policy)) == {
        ("A", "2023-04-01"): 50.0,
        ("B", "2023-04-01"): 50.0,
        ("A", "2023-07-01"): 125.0,  # T1: Q1 50 per rep, Q2 (300 + 100) / 2 = 200
        ("B", "2023-07-01"): 125.0,
        ("C", "2023-07-01"): 50.0,  # T2: Q2 50 for its one rep
    }


def test_periods_follow_the_fiscal_year():
    assert period_start(T("2024-02-14"), "quarter", year_start_month=2) == T("2024-02-01")
    assert period_start(T("2024-01-31"), "quarter", year_start_month=2) == T("2023-11-01")
    assert periods_between(T("2024-01-15"), T("2024-03-01"), "month") == [
        (T("2024-01-01"), T("2024-01-31")),
        (T("2024-02-01"), T("2024-02-29")),
        (T("2024-03-01"), T("2024-03-31")),
    ]


def test_no_closed_deals_and_no_dates_is_a_user_error():
    reps, opps = org()
    opps["is_closed"] = False
    opps["is_won"] = False
    opps["created_date"] = pd.NaT
    with pytest.raises(UserError, match="from"):
        derive_quotas(reps, opps, QuotaPolicy(kind="fixed", amount=1.0))
