"""The simulated timeline: days, working days, quota periods (quarters), seasonality."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from simulator import params as P


def add_months(d: dt.date, months: int) -> dt.date:
    """`d` moved by whole months, the day clamped to the month's length."""
    y, m = divmod(d.month - 1 + months, 12)
    year, month = d.year + y, m + 1
    nxt = dt.date(year + (month == 12), month % 12 + 1, 1)
    return dt.date(year, month, min(d.day, (nxt - dt.timedelta(days=1)).day))


@dataclass
class Calendar:
    """Day index 0 is `sim_start` (a Monday); periods are quarters from `start`."""

    start: dt.date
    sim_start: dt.date
    n_days: int
    dates: np.ndarray  # datetime64[D]
    working: np.ndarray  # bool: a weekday outside the year-end break
    month: np.ndarray  # 0..11
    season: np.ndarray  # creation multiplier per day
    push: np.ndarray  # Negotiation close-hazard multiplier per day
    period_start_day: np.ndarray
    period_end_day: np.ndarray
    period_of_day: np.ndarray  # -1 outside every period
    emit_start_day: int  # activities and engagement are written from this day

    @property
    def n_periods(self) -> int:
        return len(self.period_start_day)

    @property
    def n_weeks(self) -> int:
        return (self.n_days + 6) // 7

    def day_of(self, d: dt.date) -> int:
        return (d - self.sim_start).days

    def date_of(self, day) -> np.ndarray:
        return np.datetime64(self.sim_start, "D") + np.asarray(day).astype("timedelta64[D]")


def build_calendar(start: dt.date, n_periods: int) -> Calendar:
    bounds = [add_months(start, 3 * k) for k in range(n_periods + 1)]
    end = bounds[-1] - dt.timedelta(days=1)
    first = start - dt.timedelta(days=P.WARMUP_DAYS)
    sim_start = first - dt.timedelta(days=first.weekday())
    n_days = (end - sim_start).days + 1
    dates = np.datetime64(sim_start, "D") + np.arange(n_days).astype("timedelta64[D]")
    weekday = (np.arange(n_days) + sim_start.weekday()) % 7
    months = dates.astype("datetime64[M]").astype(int) % 12
    dom = (dates - dates.astype("datetime64[M]")).astype(int) + 1
    year_end_break = ((months == 11) & (dom >= 24)) | ((months == 0) & (dom == 1))
    working = (weekday < 5) & ~year_end_break
    season = P.CREATION_SEASON[months]

    # quarter ends on the period grid, extended back over the warm-up
    ends, k = [], -((P.WARMUP_DAYS // 80) + 2)
    while True:
        qe = add_months(start, 3 * (k + 1)) - dt.timedelta(days=1)
        if qe > end:
            break
        ends.append((qe - sim_start).days)
        k += 1
    push = np.ones(n_days)
    wd = np.flatnonzero(working)
    for e in ends:
        if e < 0:
            continue
        last = wd[wd <= e][-P.PUSH_WORKING_DAYS :]
        push[last] *= P.PUSH_FACTOR
    push[months >= 10] *= P.Q4_CLOSE_FACTOR

    ps = np.array([(b - sim_start).days for b in bounds[:-1]])
    pe = np.array([(b - sim_start).days - 1 for b in bounds[1:]])
    period_of_day = np.full(n_days, -1)
    for i, (a, b) in enumerate(zip(ps, pe, strict=True)):
        period_of_day[a : b + 1] = i
    emit = max(0, (start - dt.timedelta(days=P.EMIT_LOOKBACK_DAYS) - sim_start).days)
    return Calendar(
        start, sim_start, n_days, dates, working, months, season, push, ps, pe, period_of_day, emit
    )
