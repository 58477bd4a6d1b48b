"""The pure business rules: scope resolution and the alert budget."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from serving.rules import (
    EVERYONE,
    NOBODY,
    OrgChart,
    export_query_problem,
    idempotency_key,
    may_read_reps,
    may_see_names,
    request_fingerprint,
    resolve_scope,
    select_alerts,
    unknown_manager_warning,
)

CHART = OrgChart(
    {"R1": "M1", "R2": "M1", "M2": "M1", "R3": "M2", "R4": "M2", "M3": "M2", "R5": "M3", "R9": "M9"}
)


def test_subtree_includes_managers_of_managers_and_excludes_the_manager():
    assert CHART.subtree("M1") == {"R1", "R2", "M2", "R3", "R4", "M3", "R5"}
    assert CHART.subtree("M2") == {"R3", "R4", "M3", "R5"}
    assert CHART.subtree("M9") == {"R9"}
    assert CHART.subtree("nobody") == frozenset()


def test_subtree_survives_a_cycle():
    chart = OrgChart({"A": "B", "B": "A", "C": "A"})
    assert chart.subtree("A") == {"B", "C"}


def test_hr_sees_everyone_or_a_requested_subtree():
    assert resolve_scope({"hr"}, None, CHART) == EVERYONE
    assert resolve_scope({"hr"}, None, CHART, "M2").reps == CHART.subtree("M2")
    assert resolve_scope({"hr", "manager"}, "M9", CHART) == EVERYONE


def test_manager_sees_own_subtree_and_may_narrow_inside_it_only():
    assert resolve_scope({"manager"}, "M1", CHART).reps == CHART.subtree("M1")
    assert resolve_scope({"manager"}, "M1", CHART, "M1").reps == CHART.subtree("M1")
    assert resolve_scope({"manager"}, "M1", CHART, "M2").reps == CHART.subtree("M2")
    # outside the subtree (or not existing): the same empty answer
    assert resolve_scope({"manager"}, "M2", CHART, "M1") == NOBODY
    assert resolve_scope({"manager"}, "M2", CHART, "M9") == NOBODY
    assert resolve_scope({"manager"}, "M2", CHART, "nope") == NOBODY


def test_other_roles_and_managers_without_id_see_nobody():
    assert resolve_scope({"data_scientist"}, None, CHART) == NOBODY
    assert resolve_scope({"admin"}, "M1", CHART) == NOBODY
    assert resolve_scope({"manager"}, None, CHART) == NOBODY
    assert "R1" not in NOBODY and "R1" in EVERYONE


def test_names_and_rep_reads_by_role():
    assert may_see_names({"hr"}) and may_see_names({"manager"}) and may_see_names({"data_scientist", "hr"})
    assert not may_see_names({"data_scientist"}) and not may_see_names({"admin"})
    assert may_read_reps({"manager"}) and not may_read_reps({"data_scientist", "admin"})


@dataclass
class Row:
    rep_id: str
    risk: float
    risk_band: str
    name: str | None = None
    attainment_to_date: float | None = None
    risk_change: float | None = None


ROWS = [
    Row("a", 0.9, "high", "Zoe", 0.1),
    Row("b", 0.7, "high", "Amy", 0.3),
    Row("c", 0.5, "medium", None, 0.2),
    Row("d", 0.5, "medium", "Bob", None),
    Row("e", 0.1, "low", "Cat", 0.9),
]


def test_budget_keeps_the_riskiest_whatever_the_display_order():
    sel = select_alerts(ROWS, budget=3, sort="name", descending=False)
    assert {r.rep_id for r in sel.rows} == {"a", "b", "c"}  # ties on risk broken by rep id
    assert [r.rep_id for r in sel.rows] == ["b", "a", "c"]  # by name, missing name last
    assert sel.truncated and sel.in_scope == 5 and sel.matching == 5 and sel.budget == 3


def test_band_filter_then_budget():
    sel = select_alerts(ROWS, budget=1, bands=["medium"])
    assert [r.rep_id for r in sel.rows] == ["c"] and sel.matching == 2 and sel.truncated
    sel = select_alerts(ROWS, budget=10, bands=["low", "high"])
    assert [r.rep_id for r in sel.rows] == ["a", "b", "e"] and not sel.truncated


def test_limit_only_lowers_the_budget():
    assert len(select_alerts(ROWS, budget=2, limit=4).rows) == 2
    assert len(select_alerts(ROWS, budget=4, limit=1).rows) == 1


def test_sort_orders_and_missing_values_last():
    sel = select_alerts(ROWS, budget=10, sort="attainment_to_date", descending=False)
    assert [r.rep_id for r in sel.rows] == ["a", "c", "b", "e", "d"]
    sel = select_alerts(ROWS, budget=10, sort="risk", descending=False)
    assert [r.rep_id for r in sel.rows][0] == "e"


def test_ties_are_in_rank_order_in_either_direction():
    """Five reps tied at 100% were listed in reverse id order by risk descending (the list's default),
    where the scores file ranks them by id. Ties on any sort key now keep the rank order: risk descending,
    then rep id ascending, whichever the direction."""
    tied = [Row(r, 1.0, "high", "Same", 0.1) for r in ("r3", "r1", "r5", "r2", "r4")] + [ROWS[1]]
    for sort in ("risk", "name", "attainment_to_date"):
        for descending in (True, False):
            ids = [r.rep_id for r in select_alerts(tied, budget=10, sort=sort, descending=descending).rows]
            ties = ["r1", "r2", "r3", "r4", "r5"]
            assert ids == (ties + ["b"] if descending == (sort != "attainment_to_date") else ["b"] + ties), (
                sort,
                descending,
            )
    missing = [Row(r, x, "high") for r, x in (("z", 0.9), ("y", 0.8), ("x", 0.9))]
    assert [r.rep_id for r in select_alerts(missing, budget=10, sort="name").rows] == ["x", "z", "y"]


def test_empty_and_bad_arguments():
    sel = select_alerts([], budget=5)
    assert sel.rows == [] and not sel.truncated and sel.in_scope == 0
    with pytest.raises(ValueError):
        select_alerts(ROWS, budget=0)
    with pytest.raises(ValueError):
        select_alerts(ROWS, budget=3, sort="salary")


def test_intervention_dates_are_refused_before_hire_and_beyond_a_year():
    import datetime as dt

    from serving.rules import intervention_date_problem

    hired, today = dt.date(2023, 5, 2), dt.date(2026, 11, 29)
    assert intervention_date_problem(hired, hired, today) is None  # the hire day itself is fine
    field, why = intervention_date_problem(dt.date(2023, 5, 1), hired, today)
    assert field == "started_on" and "before the rep was hired (2023-05-02)" in why
    assert intervention_date_problem(dt.date(2017, 1, 1), None, today) is None  # no hire date: ten years back
    field, why = intervention_date_problem(dt.date(1, 1, 1), None, today)
    assert field == "started_on" and "more than 3653 days ago (earliest 2016-11-28)" in why
    assert intervention_date_problem(today + dt.timedelta(days=366), hired, today) is None
    field, why = intervention_date_problem(today + dt.timedelta(days=367), hired, today)
    assert field == "started_on" and "more than 366 days ahead (latest 2027-11-30)" in why
    assert intervention_date_problem(today, hired, today, horizon_days=0) is None
    assert intervention_date_problem(today, hired, today, ended_on=today + dt.timedelta(days=732)) is None
    field, why = intervention_date_problem(today, hired, today, ended_on=dt.date(9999, 12, 31))
    assert field == "ended_on" and "more than 732 days ahead" in why
    # a rep who left: an intervention may start on the last day, not after it
    left = dt.date(2024, 3, 20)
    assert intervention_date_problem(left, hired, today, end_date=left) is None
    field, why = intervention_date_problem(dt.date(2024, 3, 21), hired, today, end_date=left)
    assert field == "started_on" and "after the rep left (2024-03-20)" in why


def test_who_may_narrow_a_list_to_a_manager():
    from serving.rules import may_narrow_to

    assert may_narrow_to({"hr"}, None, CHART, "M9")
    assert may_narrow_to({"manager"}, "M1", CHART, "M1") and may_narrow_to({"manager"}, "M1", CHART, "M3")
    assert not may_narrow_to({"manager"}, "M2", CHART, "M1")  # their own manager: above them
    assert not may_narrow_to({"manager"}, "M1", CHART, "M9") and not may_narrow_to(
        {"manager"}, None, CHART, "M1"
    )
    assert not may_narrow_to({"data_scientist"}, None, CHART, "M1")


def test_an_idempotency_key_is_read_quoted_or_bare_and_refused_when_malformed():
    assert idempotency_key('"8e03978e-40d5"') == idempotency_key("8e03978e-40d5") == "8e03978e-40d5"
    assert idempotency_key(" k ") == "k"
    for bad, why in (
        ("", "empty"),
        ('""', "empty"),
        ("x" * 256, "longer than 255"),
        ("a b", "visible ASCII"),
        ("caf\u00e9", "visible ASCII"),
        ('a"b', "quotes"),
        ("a\\b", "backslashes"),
    ):
        with pytest.raises(ValueError, match=why):
            idempotency_key(bad)


def test_a_request_fingerprint_ignores_key_order_and_tells_reps_and_bodies_apart():
    body = {"intervention": "mentoring", "started_on": "2024-01-16", "note": None}
    same = request_fingerprint("R1", dict(reversed(list(body.items()))))
    assert request_fingerprint("R1", body) == same
    assert request_fingerprint("R2", body) != same
    assert request_fingerprint("R1", {**body, "note": "x"}) != same


def test_an_export_range_must_not_end_before_it_starts_and_only_json_is_paged():
    import datetime as dt

    jan, feb = dt.date(2024, 1, 1), dt.date(2024, 2, 1)
    assert export_query_problem(jan, feb, "csv", None, None) is None
    assert export_query_problem(jan, jan, "json", 10, 0) is None  # one day: both ends inclusive
    assert export_query_problem(None, jan, "json", None, 5) is None
    field, why = export_query_problem(feb, jan, "json", None, None)
    assert field == "started_to" and "before started_from 2024-02-01" in why
    assert export_query_problem(None, None, "csv", 10, None)[0] == "limit"
    assert export_query_problem(None, None, "csv", None, 0)[0] == "offset"


def test_a_manager_id_no_rep_reports_to_is_warned_of_once_the_directory_is_filled():
    assert "reports to 'M999'" in unknown_manager_warning("M999", 6, 0)
    assert unknown_manager_warning("M1", 6, 2) is None
    assert unknown_manager_warning("M999", 0, 0) is None  # no batch yet: nothing to check against
    assert unknown_manager_warning(None, 6, 0) is None
