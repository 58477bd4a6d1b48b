"""Observable per rep-period signals, computed from the contract tables only (what a model could see)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from features.io import read_raw, table_path


def read(folder: Path, name: str) -> pd.DataFrame:
    return read_raw(table_path(folder, name))


def _in_period(df: pd.DataFrame, rp: pd.DataFrame, col: str) -> pd.DataFrame:
    m = df.merge(rp[["rep_id", "period_start", "period_end", "key"]], on="rep_id")
    d = m[col]
    if isinstance(d.dtype, pd.DatetimeTZDtype):
        d = d.dt.tz_localize(None).dt.floor("D")
    return m[(d >= m["period_start"]) & (d <= m["period_end"])]


def rep_period_signals(folder: Path) -> pd.DataFrame:
    """truth/rep_periods joined with activity, engagement, pipeline and quota signals per rep-period."""
    folder = Path(folder)
    rp = pd.read_parquet(folder / "truth" / "rep_periods.parquet")
    reps = read(folder, "reps")
    acts = read(folder, "activities")
    eng = read(folder, "engagement")
    opps = read(folder, "opportunities")
    rp = rp.merge(reps[["rep_id", "hire_date", "gender"]], on="rep_id")
    rp["key"] = np.arange(len(rp))
    days = ((rp["period_end"] - np.maximum(rp["period_start"], rp["hire_date"])).dt.days + 1).clip(lower=1)
    workdays = days * 5 / 7
    a = _in_period(acts, rp, "occurred_at")
    rp["act_per_day"] = rp["key"].map(a.groupby("key").size()).fillna(0) / workdays
    for metric in ("csat", "pulse_score", "crm_logins", "after_hours_minutes", "pto_days", "one_on_one"):
        e = _in_period(eng[eng["metric"] == metric], rp, "date")
        if metric in ("csat", "pulse_score"):
            rp[metric] = rp["key"].map(e.groupby("key")["value"].mean())
        else:
            rp[metric] = rp["key"].map(e.groupby("key")["value"].sum()).fillna(0) / workdays
    created = _in_period(opps, rp, "created_date")
    rp["created_per_day"] = rp["key"].map(created.groupby("key").size()).fillna(0) / workdays
    rp["created_rel"] = rp["created_per_day"] / rp.groupby("segment")["created_per_day"].transform("median")
    closed = _in_period(opps[opps["is_closed"]], rp, "close_date")
    rp["win_rate"] = rp["key"].map(closed.groupby("key")["is_won"].mean())
    late = closed[closed["stage"].isin(["Closed Won", "Closed Lost"])]
    won = late[late["is_won"]]
    rp["cycle_days"] = rp["key"].map(
        (won["close_date"] - won["created_date"]).dt.days.groupby(won["key"]).median()
    )
    rp["tenure_days"] = (rp["period_start"] - rp["hire_date"]).dt.days
    rp["quota_rel"] = rp["quota_amount"] / rp.groupby(["segment", "period_start"])["quota_amount"].transform(
        "median"
    )
    return rp
