"""Engine arrays -> contract tables (typed pandas frames, sorted) and their files.

Frames follow the project's conventions: dates are naive `datetime64` at midnight, timestamps UTC
`datetime64`. For CSV, dates are written `YYYY-MM-DD` and timestamps `YYYY-MM-DDTHH:MM:SS+00:00`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from features.io import write_table
from simulator import params as P
from simulator.engine import METRICS, NEVER, EngineResult
from simulator.org import Org
from simulator.timeline import Calendar

STAGE_NAMES = np.array([*P.OPEN_STAGES, P.WON_STAGE, P.LOST_STAGE], dtype=object)
# local time windows (hours) of the changes recorded for one deal on one day, in order
_SEQ_WINDOW = np.array([[8.0, 11.0], [11.0, 14.0], [14.0, 16.0], [16.0, 17.5]])


def _strings(values: np.ndarray, idx: np.ndarray, null: np.ndarray | None = None) -> pd.Series:
    """values[idx] as a pandas string column, built in Arrow (cheap for millions of rows)."""
    arr = pa.array(values, type=pa.string()).take(pa.array(idx, mask=null))
    return arr.to_pandas()


def _ids(prefix: str, n: int, width: int) -> np.ndarray:
    return np.array([f"{prefix}{i + 1:0{width}d}" for i in range(n)], dtype=object)


def _dates(cal: Calendar, day: np.ndarray, null: np.ndarray | None = None) -> pd.Series:
    d = (np.datetime64(cal.sim_start, "D") + np.asarray(day, np.int64).astype("timedelta64[D]")).astype(
        "datetime64[us]"
    )
    if null is not None:
        d = d.copy()
        d[null] = np.datetime64("NaT")
    return pd.Series(d)


def _timestamps(cal: Calendar, seconds: np.ndarray) -> pd.Series:
    base = np.datetime64(cal.sim_start, "s")
    t = (base + np.asarray(seconds, np.int64).astype("timedelta64[s]")).astype("datetime64[us]")
    return pd.Series(t).dt.tz_localize("UTC")


def reps_frame(cal: Calendar, org: Org, res: EngineResult) -> pd.DataFrame:
    mgr_ids = org.manager_ids
    gone = res.end_day == NEVER
    df = pd.DataFrame(
        {
            "rep_id": pd.array(org.rep_ids, dtype="str"),
            "manager_id": pd.array(mgr_ids[org.manager], dtype="str"),
            "hire_date": _dates(cal, org.hire_day),
            "end_date": _dates(cal, np.where(gone, 0, res.end_day), gone),
            "team": pd.array(org.teams["team"].to_numpy()[org.team], dtype="str"),
            "region": pd.array(np.asarray(P.REGIONS, dtype=object)[org.region], dtype="str"),
            "segment": pd.array(np.asarray(P.SEGMENTS, dtype=object)[org.seg], dtype="str"),
            "name": pd.array(org.names, dtype="str"),
            "gender": pd.array(org.gender, dtype="str"),
            "age_band": pd.array(org.age_band, dtype="str"),
        }
    )
    return df.sort_values("rep_id", kind="stable").reset_index(drop=True)


def rep_period_index(cal: Calendar, res: EngineResult) -> tuple[np.ndarray, np.ndarray]:
    """(rep, period) of every quota row: a quota was set and the rep was still employed at period end."""
    has = (res.quota > 0) & (res.end_day[:, None] >= cal.period_end_day[None, :])
    rep, period = np.nonzero(has)
    return rep, period


def quotas_frame(cal: Calendar, org: Org, res: EngineResult) -> pd.DataFrame:
    rep, period = rep_period_index(cal, res)
    return pd.DataFrame(
        {
            "rep_id": pd.array(org.rep_ids[rep], dtype="str"),
            "period_start": _dates(cal, cal.period_start_day[period]),
            "period_end": _dates(cal, cal.period_end_day[period]),
            "quota_amount": res.quota[rep, period].astype(float),
        }
    )


def opportunity_frames(cal: Calendar, org: Org, res: EngineResult, rng: np.random.Generator):
    dl = res.deals
    n = len(dl["rep"])
    width = max(7, len(str(n)))
    opp_ids = _ids("OPP", n, width)
    closed = dl["stage"] >= 4
    products = np.array([p for seg in P.PRODUCTS for p in seg], dtype=object)
    offset = np.cumsum([0] + [len(s) for s in P.PRODUCTS])[:-1]
    aw = max(6, len(str(org.n * P.ACCOUNTS_PER_REP)))
    acc_idx = dl["account"].astype(np.int64)
    opps = pd.DataFrame(
        {
            "opportunity_id": pd.array(opp_ids, dtype="str"),
            "rep_id": _strings(org.rep_ids, dl["rep"]),
            "created_date": _dates(cal, dl["created"]),
            "close_date": _dates(cal, np.where(closed, dl["close"], dl["exp_close"])),
            "stage": _strings(STAGE_NAMES, dl["stage"].astype(np.int64)),
            "amount": dl["amount"].astype(float),
            "is_closed": closed,
            "is_won": dl["stage"] == 4,
            "account_id": pd.Series(
                np.char.add("ACC", np.char.zfill((acc_idx + 1).astype(str), aw)), dtype="str"
            ),
            "product": _strings(products, offset[org.seg[dl["rep"]]] + dl["product"]),
        }
    )
    h = res.history
    order = np.lexsort((h["seq"], h["day"], h["deal"]))
    deal, day, seq = h["deal"][order], h["day"][order], h["seq"][order].astype(int)
    lo, hi = _SEQ_WINDOW[seq, 0], _SEQ_WINDOW[seq, 1]
    local = (lo + rng.random(len(seq)) * (hi - lo)) * 3600
    rep = dl["rep"][deal]
    secs = (
        day.astype(np.int64) * 86400 + local.astype(np.int64) - P.REGION_UTC_OFFSET_H[org.region[rep]] * 3600
    )
    hist = pd.DataFrame(
        {
            "opportunity_id": _strings(opp_ids, deal),
            "changed_at": _timestamps(cal, secs),
            "stage": _strings(STAGE_NAMES, h["stage"][order].astype(np.int64)),
            "amount": h["amount"][order].astype(float),
            "close_date": _dates(cal, h["close"][order]),
        }
    )
    return opps, hist, opp_ids


def activities_frame(cal: Calendar, org: Org, res: EngineResult, opp_ids: np.ndarray) -> pd.DataFrame:
    a = res.activities
    order = np.lexsort((a["rep"], a["t"]))
    n = len(order)
    width = max(8, len(str(n)))
    ids = pa.array(np.arange(1, n + 1)).cast(pa.string())
    import pyarrow.compute as pc

    ids = pc.binary_join_element_wise(pa.scalar("ACT"), pc.utf8_lpad(ids, width, "0"), "").to_pandas()
    deal = a["deal"][order]
    types = np.asarray(P.ACTIVITY_TYPES, dtype=object)
    return pd.DataFrame(
        {
            "activity_id": ids,
            "rep_id": _strings(org.rep_ids, a["rep"][order]),
            "occurred_at": _timestamps(cal, a["t"][order]),
            "type": _strings(types, a["type"][order].astype(np.int64)),
            "opportunity_id": _strings(opp_ids, np.maximum(deal, 0), deal < 0),
            "duration_minutes": a["dur"][order].astype(float),
        }
    )


def engagement_frame(cal: Calendar, org: Org, res: EngineResult) -> pd.DataFrame:
    e = res.engagement
    order = np.lexsort((e["metric"], e["day"], e["rep"]))  # rep ids are in index order
    return pd.DataFrame(
        {
            "rep_id": _strings(org.rep_ids, e["rep"][order]),
            "date": _dates(cal, e["day"][order]),
            "metric": _strings(np.asarray(METRICS, dtype=object), e["metric"][order].astype(np.int64)),
            "value": e["value"][order].astype(float),
        }
    )


def interventions_frame(cal: Calendar, org: Org, res: EngineResult) -> pd.DataFrame:
    ivs = res.interventions
    rep = np.array([iv.rep for iv in ivs], dtype=np.int64)
    started = np.array([iv.started for iv in ivs], dtype=np.int64)
    ended = np.array([iv.ended for iv in ivs], dtype=np.int64)
    ended = np.maximum(np.minimum(ended, res.end_day[rep]), started) if len(ivs) else ended
    open_ = ended >= NEVER
    df = pd.DataFrame(
        {
            "rep_id": pd.array(org.rep_ids[rep], dtype="str"),
            "intervention": pd.array([iv.intervention for iv in ivs], dtype="str"),
            "started_on": _dates(cal, started),
            "ended_on": _dates(cal, np.where(open_, 0, ended), open_),
        }
    )
    return df.sort_values(["rep_id", "started_on", "intervention"], kind="stable").reset_index(drop=True)


# ---- files ------------------------------------------------------------------------------------
def _date_strings(s: pd.Series) -> pd.Series:
    days = s.to_numpy().astype("datetime64[D]")
    null = np.isnat(days)
    if null.all():
        return pd.Series(pa.nulls(len(s), pa.string()).to_pandas())
    lo = days[~null].min()
    idx = np.where(null, 0, (days - lo).astype(np.int64))
    table = np.datetime_as_string(lo + np.arange(idx.max() + 1).astype("timedelta64[D]"))
    return _strings(table.astype(object), idx, null if null.any() else None)


def _timestamp_strings(s: pd.Series) -> pd.Series:
    """UTC timestamps as `YYYY-MM-DDTHH:MM:SS+00:00`, written digit by digit (fast for millions)."""
    ts = s.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy().astype("datetime64[s]")
    n = len(ts)
    secs = ts.astype(np.int64)
    days = secs // 86400
    tod = secs - days * 86400
    # civil date from days since 1970-01-01 (Howard Hinnant's algorithm)
    z = days + 719468
    era = np.floor_divide(z, 146097)
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    y = yoe + era * 400
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = np.where(mp < 10, mp + 3, mp - 9)
    y = y + (m <= 2)
    buf = np.empty((n, 25), np.uint8)
    buf[:] = np.frombuffer(b"0000-00-00T00:00:00+00:00", np.uint8)
    for col, v, w in (
        (0, y, 4),
        (5, m, 2),
        (8, d, 2),
        (11, tod // 3600, 2),
        (14, (tod // 60) % 60, 2),
        (17, tod % 60, 2),
    ):
        for i in range(w):
            buf[:, col + w - 1 - i] = 48 + (v // 10**i) % 10
    offsets = pa.py_buffer(np.arange(0, 25 * (n + 1), 25, dtype=np.int32))
    arr = pa.Array.from_buffers(pa.string(), n, [None, offsets, pa.py_buffer(buf.tobytes())])
    return arr.to_pandas()


def for_csv(df: pd.DataFrame) -> pd.DataFrame:
    """Dates and timestamps as ISO strings, so the CSV reads the same in any tool."""
    out = df.copy()
    for c in df.columns:
        dt = df[c].dtype
        if isinstance(dt, pd.DatetimeTZDtype):
            out[c] = _timestamp_strings(df[c])
        elif np.issubdtype(dt, np.datetime64) if isinstance(dt, np.dtype) else False:
            out[c] = _date_strings(df[c])
    return out


def write(df: pd.DataFrame, folder: Path, name: str, fmt: str) -> Path:
    """Write `name` in `fmt`, removing the table in the other format (readers prefer Parquet)."""
    path = Path(folder) / f"{name}.{fmt}"
    write_table(for_csv(df) if fmt == "csv" else df, path)
    other = path.with_suffix(".csv" if fmt == "parquet" else ".parquet")
    other.unlink(missing_ok=True)
    return path
