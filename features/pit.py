"""Point-in-time truncation: the folder an export taken on a given day would have contained.

`truncate_at(tables, cutoff)` is the reference the property test compares against: features of
any snapshot with as_of <= cutoff must be the same whether computed from the full data or from
the truncated data.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from features.engine import DuckDBEngine
from features.io import Tables
from features.staging import day_number, stage, to_days

# Stage written for a deal that was open on the cutoff day when its stage then is unknown
# (no opportunity_history): neither closed nor late by name.
UNKNOWN_OPEN_STAGE = "Open"


def _dates_like(days: np.ndarray, like: pd.Series) -> pd.Series:
    values = pd.Series(np.asarray(days, dtype="float64"))
    out = pd.to_datetime(values.where(values.notna()).to_numpy().astype("float64"), unit="D", origin="unix")
    out = pd.Series(out)
    try:
        return out.astype(like.dtype)
    except (TypeError, ValueError):
        return out


def _before(series: pd.Series, cut: int, *, timestamp: bool = False, inclusive: bool = False) -> np.ndarray:
    days = to_days(series, timestamp=timestamp)
    ok = (days <= cut) if inclusive else (days < cut)
    return ok.fillna(False).to_numpy(dtype=bool)


def _null_from(frame: pd.DataFrame, column: str, cut: int) -> pd.DataFrame:
    """Blank `column` where its date is on or after the cutoff (not yet known)."""
    if column in frame:
        late = ~_before(frame[column], cut) & frame[column].notna().to_numpy()
        frame.loc[late, column] = pd.NaT
    return frame


def truncate_at(tables: Tables, cutoff: dt.date) -> Tables:
    """The tables as an export taken at the start of `cutoff` would hold them.

    - events (history rows, activities, engagement, interventions started) before the cutoff day;
    - deals created before the cutoff, in their state as of the cutoff (stage, amount, close_date,
      is_closed, is_won of the last change before it, reconstructed from opportunity_history exactly
      as the features do);
    - reps hired on or before the cutoff, their end_date only if before it;
    - quotas of periods starting on or before the cutoff (a period's quota and a new hire's record
      exist at the start of their first day).
    """
    cut = day_number(cutoff)
    staged = stage(tables)
    states = DuckDBEngine().run(staged.frames, outputs=("deal_states",), steps=("deal_states",))[
        "deal_states"
    ]
    vt = states["valid_to"]
    cur = states[(states["valid_from"] <= cut) & (vt.isna() | (vt > cut))].drop_duplicates(
        "opp_key", keep="last"
    )
    cur = cur.set_index("opp_key")
    opps_all = tables.opportunities.reset_index(drop=True)
    rows = staged.opp_rows[cur.index.to_numpy(dtype="int64")]
    opps = opps_all.iloc[rows].copy().reset_index(drop=True)
    names = staged.frames["stg_stages"]["stage_name"].to_numpy(dtype=object)
    codes = cur["stage_code"]
    stage_now = [UNKNOWN_OPEN_STAGE if pd.isna(c) else names[int(c)] for c in codes]
    opps["stage"] = pd.Series(stage_now, dtype=opps_all["stage"].dtype)
    opps["amount"] = cur["amount"].to_numpy(dtype="float64")
    opps["close_date"] = _dates_like(
        cur["close_d"].to_numpy(dtype="float64"), opps_all["close_date"]
    ).to_numpy()
    opps["is_closed"] = cur["is_closed"].to_numpy(dtype="int64") == 1
    opps["is_won"] = cur["is_won"].to_numpy(dtype="int64") == 1
    for c in ("is_closed", "is_won"):
        try:
            opps[c] = opps[c].astype(opps_all[c].dtype)
        except (TypeError, ValueError):
            pass

    reps = tables.reps[_before(tables.reps["hire_date"], cut, inclusive=True)].copy()
    reps = _null_from(reps, "end_date", cut)
    quotas = tables.quotas[_before(tables.quotas["period_start"], cut, inclusive=True)].copy()

    out = {
        "reps": reps.reset_index(drop=True),
        "quotas": quotas.reset_index(drop=True),
        "opportunities": opps,
    }
    h = tables.opportunity_history
    out["opportunity_history"] = (
        None if h is None else h[_before(h["changed_at"], cut, timestamp=True)].reset_index(drop=True)
    )
    a = tables.activities
    out["activities"] = (
        None if a is None else a[_before(a["occurred_at"], cut, timestamp=True)].reset_index(drop=True)
    )
    e = tables.engagement
    out["engagement"] = None if e is None else e[_before(e["date"], cut)].reset_index(drop=True)
    iv = tables.interventions
    if iv is not None:
        iv = iv[_before(iv["started_on"], cut)].copy()
        iv = _null_from(iv, "ended_on", cut).reset_index(drop=True)
    out["interventions"] = iv
    # A rep hired after the cutoff is not in that day's export, and neither is anything they own:
    # without this the truncated folder would break the contract's references.
    known = reps["rep_id"]
    for name, frame in out.items():
        if frame is not None and name != "reps" and "rep_id" in frame.columns:
            out[name] = frame[_isin(frame["rep_id"], known)].reset_index(drop=True)
    if out["opportunity_history"] is not None:
        h = out["opportunity_history"]
        kept = out["opportunities"]["opportunity_id"]
        out["opportunity_history"] = h[_isin(h["opportunity_id"], kept)].reset_index(drop=True)
    return Tables(**out)


def _isin(values: pd.Series, among: pd.Series) -> np.ndarray:
    """`values.isin(among)` through a hash index: on pyarrow-backed strings pandas' own `isin` makes a Python
    scalar of each value looked for (1.8 s for 1.5 million history rows against 410,000 deals; this 0.4 s)."""
    return pd.Index(pd.unique(among)).get_indexer(values) >= 0
