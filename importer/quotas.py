"""Quotas for exports that have none, by a policy the user chooses (docs/import.md, "Quota policy").

`fixed`: the same amount for every rep and period. `trailing_share`: a share of the average won
amount over the previous periods, the rep's own (`basis: rep`) or the team's per rep
(`basis: team`); periods without that history fall back to the team average, a fixed amount,
or no quota, and the notes say how many did.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from importer.mapping import QuotaPolicy
from repradar.errors import UserError

PERIOD_LENGTH = {"month": 1, "quarter": 3}


def period_start(day: pd.Timestamp, period: str, year_start_month: int = 1) -> pd.Timestamp:
    """First day of the period (month, or quarter of a year starting in `year_start_month`) holding `day`."""
    day = pd.Timestamp(day).normalize()
    n = PERIOD_LENGTH[period]
    offset = (day.month - year_start_month) % n
    return (day - pd.DateOffset(months=offset)).replace(day=1)


def period_starts(days: pd.Series, period: str, year_start_month: int = 1) -> pd.Series:
    """`period_start` for a whole column of dates at once."""
    n = PERIOD_LENGTH[period]
    month_index = days.dt.year * 12 + (days.dt.month - 1)
    start = month_index - ((days.dt.month - year_start_month) % n)
    return pd.to_datetime(
        pd.DataFrame({"year": start // 12, "month": start % 12 + 1, "day": 1}), errors="coerce"
    )


def periods_between(first: pd.Timestamp, last: pd.Timestamp, period: str, year_start_month: int = 1):
    """Consecutive (start, end) periods, inclusive, from the one holding `first` to the one holding `last`."""
    n = PERIOD_LENGTH[period]
    start = period_start(first, period, year_start_month)
    out = []
    while start <= pd.Timestamp(last):
        nxt = start + pd.DateOffset(months=n)
        out.append((start, nxt - pd.Timedelta(days=1)))
        start = nxt
    return out


@dataclass
class QuotaResult:
    """Derived quotas in the contract's shape; `how` says, per row, where the amount came from."""

    quotas: pd.DataFrame
    how: pd.Series
    notes: list[str] = field(default_factory=list)


def _window(opps: pd.DataFrame, policy: QuotaPolicy) -> tuple[pd.Timestamp, pd.Timestamp, pd.Timestamp]:
    """(first day with history, first quota day, last quota day) of the export."""
    closed = opps[opps["is_closed"].astype(bool)]
    history_start = closed["close_date"].min() if len(closed) else pd.NaT
    known_end = pd.concat([closed["close_date"], opps["created_date"]]).max()
    first = pd.Timestamp(policy.start) if policy.start else history_start
    last = pd.Timestamp(policy.end) if policy.end else known_end
    if pd.isna(first) or pd.isna(last):
        raise UserError(
            "cannot place quota periods: the export has no closed deals; give the quota policy "
            "`from` and `to` dates"
        )
    if pd.isna(history_start):
        history_start = first
    return pd.Timestamp(history_start), first, pd.Timestamp(last)


def _employed(reps: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp) -> pd.Series:
    ok = reps["hire_date"].isna() | (reps["hire_date"] <= end)
    if "end_date" in reps:
        ok &= reps["end_date"].isna() | (reps["end_date"] >= start)
    return ok


def derive_quotas(reps: pd.DataFrame, opportunities: pd.DataFrame, policy: QuotaPolicy) -> QuotaResult:
    """Quotas for every rep and period of the export under `policy` (see the module docstring).

    Periods run from the one holding `policy.start` (default: the first closed deal's close date)
    to the one holding `policy.end` (default: the latest close or created date of the export);
    a rep gets a quota for each period they were employed in.
    """
    history_start, first, last = _window(opportunities, policy)
    ysm = policy.year_start_month
    quota_periods = periods_between(first, last, policy.period, ysm)
    hist_first = min(pd.Timestamp(history_start), first)
    all_periods = periods_between(hist_first, last, policy.period, ysm)
    hist_floor = period_start(history_start, policy.period, ysm)

    won = opportunities[opportunities["is_won"].astype(bool)].copy()
    won["p"] = period_starts(won["close_date"], policy.period, ysm)
    won_by = won.groupby(["rep_id", "p"])["amount"].sum()

    team_of = _team_of(reps)
    employed = {ps: _employed(reps, ps, pe) for ps, pe in all_periods}
    # Per-rep won amount of each team in each period, over the reps employed then.
    team_rate: dict[tuple[str, pd.Timestamp], float] = {}
    for ps, _pe in all_periods:
        if ps < hist_floor:
            continue
        emp = reps[employed[ps]]
        for team, members in emp.groupby(team_of[employed[ps]]):
            total = sum(won_by.get((r, ps), 0.0) for r in members["rep_id"])
            team_rate[(team, ps)] = total / len(members)

    rows, how = [], []
    for i, (ps, pe) in enumerate(all_periods):
        if ps < period_start(first, policy.period, ysm):
            continue
        previous = [p for p, _ in all_periods[max(0, i - policy.lookback) : i] if p >= hist_floor]
        for idx, rep in reps[employed[ps]].iterrows():
            rid = rep["rep_id"]
            amount, source = _amount(policy, rid, team_of[idx], previous, employed, idx, won_by, team_rate)
            if amount is None:
                how.append("none")
                continue
            rows.append((rid, ps, pe, round(float(amount), 2)))
            how.append(source)
    quotas = pd.DataFrame(rows, columns=["rep_id", "period_start", "period_end", "quota_amount"])
    quotas["period_start"] = pd.to_datetime(quotas["period_start"])
    quotas["period_end"] = pd.to_datetime(quotas["period_end"])
    how_s = pd.Series(how, dtype=object)
    notes = [
        f"quotas were derived (the export has none) by the policy {policy.describe()}: "
        f"{len(quotas)} quotas for {quotas['rep_id'].nunique()} reps over {len(quota_periods)} "
        f"{policy.period}s from {quota_periods[0][0].date()} to {quota_periods[-1][1].date()}"
    ]
    counts = how_s.value_counts()
    if policy.kind == "trailing_share":
        labels = {
            "rep_history": "the rep's own trailing average",
            "team_history": "the team's trailing average per rep",
            "fallback_amount": f"fallback_amount {policy.fallback_amount}",
            "none": "no quota (no history and no fallback), so no prediction for them",
        }
        for key, label in labels.items():
            if counts.get(key, 0):
                notes.append(f"quota policy: {int(counts[key])} rep-periods used {label}")
    return QuotaResult(quotas, how_s[how_s != "none"].reset_index(drop=True), notes)


def _team_of(reps: pd.DataFrame) -> pd.Series:
    """A rep's team for `basis: team`: the `team` column, else the manager."""
    if "team" in reps:
        return reps["team"].where(reps["team"].notna(), reps["manager_id"]).astype(str)
    return reps["manager_id"].astype(str)


def _amount(policy, rid, team, previous, employed, idx, won_by, team_rate):
    if policy.kind == "fixed":
        return policy.amount, "fixed"
    share = policy.share

    def team_avg():
        vals = [team_rate[(team, p)] for p in previous if (team, p) in team_rate]
        avg = sum(vals) / len(vals) if vals else 0.0
        return share * avg if avg > 0 else None

    if policy.basis == "rep":
        hist = [won_by.get((rid, p), 0.0) for p in previous if employed[p].loc[idx]]
        avg = sum(hist) / len(hist) if hist else 0.0
        if avg > 0:
            return share * avg, "rep_history"
        if policy.fallback == "team":
            t = team_avg()
            if t is not None:
                return t, "team_history"
    else:
        t = team_avg()
        if t is not None:
            return t, "team_history"
    if policy.fallback in ("team", "amount") and policy.fallback_amount is not None:
        return policy.fallback_amount, "fallback_amount"
    return None, "none"
