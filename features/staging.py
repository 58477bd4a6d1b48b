"""Staging: typed pandas tables -> the small, integer-only tables the shared feature SQL reads.

This is the engine-specific half of "one definition, two engines". Everything dialects disagree
on happens here, once: dates and timestamps become integer day numbers (days since 1970-01-01;
timestamps by their UTC day), ids become integer keys, free-text activity types and metric
names move to small lookup tables. The SQL in `features/sql/` then only does integer arithmetic,
joins, GROUP BY and window functions, which DuckDB and Spark SQL read the same way.

Staged tables (all day columns are integers, NULL when unknown):
  stg_reps(rep_key, hire_d, end_d, segment)
  stg_quotas(rep_key, ps, pe, quota_amount)
  stg_opps(opp_key, rep_key, created_d, close_d, stage_code, amount, is_closed, is_won)
  stg_history(opp_key, changed_d, changed_us, row_no, stage_code, amount, close_d)
  stg_stages(stage_code, stage_name)             every stage spelling in opportunities and history
  stg_activities(rep_key, d, type_code)          stg_activity_types(type_code, type_name)
  stg_engagement(rep_key, d, metric_code, value) stg_metrics(metric_code, metric_name)
  stg_snapshots(snap_id, rep_key, ps, pe, as_of)
  stg_calendar(d, quarter_of_year)               one row per period start in the snapshots
  stg_params(has_history, has_activities, has_engagement, reference_day, miss_threshold)
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from features.io import Tables

EPOCH = dt.date(1970, 1, 1)


def day_number(value: dt.date | pd.Timestamp | str) -> int:
    """Days since 1970-01-01 of one date."""
    return (pd.Timestamp(value).date() - EPOCH).days


def from_day_number(day: int) -> dt.date:
    return EPOCH + dt.timedelta(days=int(day))


def _as_datetime(s: pd.Series, *, timestamp: bool) -> pd.Series:
    """A naive datetime64 series in UTC (timestamps) or local calendar (dates)."""
    if not (pd.api.types.is_datetime64_any_dtype(s)):
        s = pd.to_datetime(s, utc=timestamp, format="ISO8601")
    if isinstance(s.dtype, pd.DatetimeTZDtype):
        # Dates should be naive already; a tz-aware date keeps its calendar day, a timestamp its UTC day.
        s = s.dt.tz_convert("UTC").dt.tz_localize(None) if timestamp else s.dt.tz_localize(None)
    return s


def to_days(s: pd.Series, *, timestamp: bool = False) -> pd.Series:
    """Integer day numbers (nullable Int32) of a date column, or of the UTC day of a timestamp column."""
    s = _as_datetime(s, timestamp=timestamp)
    values = s.to_numpy(dtype="datetime64[ns]", na_value=np.datetime64("NaT")).astype("datetime64[D]")
    mask = np.isnat(values)
    days = values.astype("int64")
    return pd.Series(pd.arrays.IntegerArray(days.astype("int32"), mask), index=s.index)


def to_micros(s: pd.Series) -> np.ndarray:
    """Microseconds since the epoch (UTC) of a timestamp column: an integer sort key for changes."""
    s = _as_datetime(s, timestamp=True)
    return s.to_numpy(dtype="datetime64[ns]").astype("datetime64[us]").astype("int64")


def _bool(s: pd.Series) -> np.ndarray:
    if pd.api.types.is_bool_dtype(s):
        return s.fillna(False).to_numpy(dtype=bool)
    text = s.astype("string").str.strip().str.lower()
    return text.isin(["true", "1", "yes", "t", "y"]).to_numpy(dtype=bool)


def _float(s: pd.Series) -> np.ndarray:
    return pd.to_numeric(s, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)


def _strings(s: pd.Series) -> pa.Array:
    """A string column as an Arrow array (no copy for Arrow-backed pandas strings)."""
    arr = pa.array(s, from_pandas=True)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if not pa.types.is_large_string(arr.type):
        arr = arr.cast(pa.large_string())
    return arr


def _keys(index: pa.Array, values: pd.Series) -> np.ndarray:
    """Integer keys of `values` as positions in `index` (-1 when absent); hashes in Arrow, not Python."""
    if len(values) == 0:
        return np.array([], dtype="int64")
    found = pc.index_in(_strings(values), value_set=index)
    return found.fill_null(-1).to_numpy(zero_copy_only=False).astype("int64")


def _codes(*columns: pd.Series) -> tuple[list[np.ndarray], list[str]]:
    """Dictionary codes (nullable Int32) of string columns over one shared dictionary."""
    arrays = [_strings(c) for c in columns]
    encoded = pc.dictionary_encode(pa.chunked_array(arrays, type=pa.large_string())).combine_chunks()
    codes = encoded.indices
    names = [str(x) for x in encoded.dictionary.to_pylist()]
    out, start = [], 0
    for a in arrays:
        part = codes.slice(start, len(a))
        mask = part.is_null().to_numpy(zero_copy_only=False)
        values = part.fill_null(0).to_numpy(zero_copy_only=False).astype("int32")
        out.append(pd.arrays.IntegerArray(values, mask))
        start += len(a)
    return out, names


@dataclass
class Staged:
    """The staged tables plus what is needed to map results back to ids."""

    frames: dict[str, pd.DataFrame]
    rep_ids: pa.Array
    has_history: bool
    has_activities: bool
    has_engagement: bool
    metric_names: list[str] = field(default_factory=list)
    opp_rows: np.ndarray | None = None  # opp_key -> row position in tables.opportunities


def latest_data_day(tables: Tables) -> int | None:
    """The latest day any event in the data happened (not quotas, not expected close dates, not hires)."""
    if hasattr(tables, "latest_data_day"):  # features.spark_io.SparkTables: computed on Spark
        return tables.latest_data_day()
    days: list[int] = []

    def add(s: pd.Series, timestamp: bool = False) -> None:
        d = to_days(s, timestamp=timestamp).dropna()
        if len(d):
            days.append(int(d.max()))

    opps = tables.opportunities
    add(opps["created_date"])
    closed = _bool(opps["is_closed"])
    add(opps.loc[closed, "close_date"])
    if tables.opportunity_history is not None:
        add(tables.opportunity_history["changed_at"], timestamp=True)
    if tables.activities is not None:
        add(tables.activities["occurred_at"], timestamp=True)
    if tables.engagement is not None:
        add(tables.engagement["date"])
    if tables.interventions is not None:
        add(tables.interventions["started_on"])
    return max(days) if days else None


def stage(
    tables: Tables,
    snapshots: pd.DataFrame | None = None,
    *,
    reference_day: int | None = None,
    miss_threshold: float = 1.0,
) -> Staged:
    """Stage `tables` (and the snapshots to compute, with KEY columns) for the feature SQL."""
    reps = tables.reps.reset_index(drop=True)
    rep_ids = _strings(reps["rep_id"])
    segment = (
        reps["segment"].astype("string")
        if "segment" in reps
        else pd.Series(pd.NA, index=reps.index, dtype="string")
    )
    end = (
        reps["end_date"]
        if "end_date" in reps
        else pd.Series(pd.NaT, index=reps.index, dtype="datetime64[ns]")
    )
    frames: dict[str, pd.DataFrame] = {}
    frames["stg_reps"] = pd.DataFrame(
        {
            "rep_key": np.arange(len(reps), dtype="int32"),
            "hire_d": to_days(reps["hire_date"]).to_numpy(),
            "end_d": to_days(end).to_numpy(),
            # Text even when every value is missing (no segment column): untyped, Spark would read the
            # all-null column as a number and the SQL's COALESCE(segment, '') would fail there.
            "segment": segment.array,
        }
    )

    q = tables.quotas
    qk = _keys(rep_ids, q["rep_id"])
    keep = qk >= 0
    frames["stg_quotas"] = pd.DataFrame(
        {
            "rep_key": qk[keep].astype("int32"),
            "ps": to_days(q["period_start"]).to_numpy()[keep],
            "pe": to_days(q["period_end"]).to_numpy()[keep],
            "quota_amount": _float(q["quota_amount"])[keep],
        }
    )

    o = tables.opportunities.reset_index(drop=True)
    ok = _keys(rep_ids, o["rep_id"])
    keep = ok >= 0
    opp_rows = np.flatnonzero(keep)
    o = o.loc[keep].reset_index(drop=True)
    opp_ids = _strings(o["opportunity_id"])
    h = tables.opportunity_history
    has_history = h is not None
    stage_cols = [o["stage"]] + ([h["stage"]] if has_history else [])
    stage_codes, stage_names = _codes(*stage_cols)
    frames["stg_opps"] = pd.DataFrame(
        {
            "opp_key": np.arange(len(o), dtype="int64"),
            "rep_key": ok[keep].astype("int32"),
            "created_d": to_days(o["created_date"]).to_numpy(),
            "close_d": to_days(o["close_date"]).to_numpy(),
            "stage_code": stage_codes[0],
            "amount": _float(o["amount"]),
            "is_closed": _bool(o["is_closed"]),
            "is_won": _bool(o["is_won"]),
        }
    )

    frames["stg_stages"] = pd.DataFrame(
        {
            "stage_code": np.arange(len(stage_names), dtype="int32"),
            "stage_name": pd.Series(stage_names, dtype=object),
        }
    )
    if has_history:
        hk = _keys(opp_ids, h["opportunity_id"])
        keep = hk >= 0
        frames["stg_history"] = pd.DataFrame(
            {
                "opp_key": hk[keep].astype("int64"),
                "changed_d": to_days(h["changed_at"], timestamp=True).to_numpy()[keep],
                "changed_us": to_micros(h["changed_at"])[keep],
                "row_no": np.arange(len(h), dtype="int64")[keep],  # ties in changed_at: file order
                "stage_code": stage_codes[1][keep],
                "amount": _float(h["amount"])[keep],
                "close_d": to_days(h["close_date"]).to_numpy()[keep],
            }
        )
    else:
        frames["stg_history"] = pd.DataFrame(
            {
                "opp_key": pd.Series([], dtype="int64"),
                "changed_d": pd.Series([], dtype="Int32"),
                "changed_us": pd.Series([], dtype="int64"),
                "row_no": pd.Series([], dtype="int64"),
                "stage_code": pd.Series([], dtype="Int32"),
                "amount": pd.Series([], dtype="float64"),
                "close_d": pd.Series([], dtype="Int32"),
            }
        )

    a = tables.activities
    has_activities = a is not None
    if has_activities:
        ak = _keys(rep_ids, a["rep_id"])
        keep = ak >= 0
        (codes,), uniques = _codes(a["type"].fillna(""))
        codes = np.asarray(codes.fillna(-1), dtype="int32")
        frames["stg_activities"] = pd.DataFrame(
            {
                "rep_key": ak[keep].astype("int32"),
                "d": to_days(a["occurred_at"], timestamp=True).to_numpy()[keep],
                "type_code": codes[keep].astype("int32"),
            }
        )
        types = list(uniques)
    else:
        frames["stg_activities"] = pd.DataFrame(
            {
                "rep_key": pd.Series([], dtype="int32"),
                "d": pd.Series([], dtype="Int32"),
                "type_code": pd.Series([], dtype="int32"),
            }
        )
        types = []
    frames["stg_activity_types"] = pd.DataFrame(
        {"type_code": np.arange(len(types), dtype="int32"), "type_name": pd.Series(types, dtype=object)}
    )

    e = tables.engagement
    has_engagement = e is not None
    if has_engagement:
        ek = _keys(rep_ids, e["rep_id"])
        keep = ek >= 0
        (codes,), uniques = _codes(e["metric"])
        codes = np.asarray(codes.fillna(-1), dtype="int32")
        frames["stg_engagement"] = pd.DataFrame(
            {
                "rep_key": ek[keep].astype("int32"),
                "d": to_days(e["date"]).to_numpy()[keep],
                "metric_code": codes[keep].astype("int32"),
                "value": _float(e["value"])[keep],
            }
        )
        metrics = [str(m) for m in uniques]
    else:
        frames["stg_engagement"] = pd.DataFrame(
            {
                "rep_key": pd.Series([], dtype="int32"),
                "d": pd.Series([], dtype="Int32"),
                "metric_code": pd.Series([], dtype="int32"),
                "value": pd.Series([], dtype="float64"),
            }
        )
        metrics = []
    frames["stg_metrics"] = pd.DataFrame(
        {
            "metric_code": np.arange(len(metrics), dtype="int32"),
            "metric_name": pd.Series(metrics, dtype=object),
        }
    )

    snaps = (
        stage_snapshots(snapshots, rep_ids)
        if snapshots is not None
        else stage_snapshots(pd.DataFrame(columns=["rep_id", "period_start", "period_end", "as_of"]), rep_ids)
    )
    frames["stg_snapshots"] = snaps
    starts = np.unique(snaps["ps"].dropna().to_numpy(dtype="int64")) if len(snaps) else np.array([], "int64")
    quarters = (
        pd.DatetimeIndex(starts.astype("datetime64[D]")).quarter.to_numpy()
        if len(starts)
        else np.array([], dtype="int32")
    )
    frames["stg_calendar"] = pd.DataFrame(
        {"d": starts.astype("int32"), "quarter_of_year": quarters.astype("int32")}
    )
    frames["stg_params"] = pd.DataFrame(
        {
            "has_history": [int(has_history)],
            "has_activities": [int(has_activities)],
            "has_engagement": [int(has_engagement)],
            "reference_day": pd.array([reference_day], dtype="Int32"),
            "miss_threshold": [float(miss_threshold)],
        }
    )
    return Staged(frames, rep_ids, has_history, has_activities, has_engagement, metrics, opp_rows)


def stage_snapshots(snapshots: pd.DataFrame, rep_ids: pa.Array) -> pd.DataFrame:
    """stg_snapshots: snap_id is the row position in `snapshots`; unknown reps get rep_key -1."""
    n = len(snapshots)
    rk = _keys(rep_ids, snapshots["rep_id"]) if n else np.array([], dtype="int64")
    return pd.DataFrame(
        {
            "snap_id": np.arange(n, dtype="int64"),
            "rep_key": np.asarray(rk, dtype="int32"),
            "ps": to_days(snapshots["period_start"]).to_numpy() if n else pd.array([], dtype="Int32"),
            "pe": to_days(snapshots["period_end"]).to_numpy() if n else pd.array([], dtype="Int32"),
            "as_of": to_days(snapshots["as_of"]).to_numpy() if n else pd.array([], dtype="Int32"),
        }
    )
