"""Simulated folders satisfy every rule of the data contract, in Parquet and in CSV."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from features import contract
from features.io import read_raw, table_path

DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
STAMP_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(Z|[+-]\d{2}:\d{2})?$")
SORT_KEYS = {
    "reps": ["rep_id"],
    "quotas": ["rep_id", "period_start"],
    "opportunities": ["opportunity_id"],
    "opportunity_history": ["opportunity_id", "changed_at"],
    "activities": ["activity_id"],
    "engagement": ["rep_id", "date", "metric"],
    "interventions": ["rep_id", "started_on", "intervention"],
}


def typed(spec: contract.Table, raw: pd.DataFrame, csv: bool) -> pd.DataFrame:
    """The table with contract types, asserting CSV dates and timestamps are ISO 8601."""
    df = raw.copy()
    for col in spec.columns:
        if col.name not in df:
            continue
        s = df[col.name]
        if col.kind == "date":
            if csv:
                assert s.dropna().map(lambda v: bool(DATE_RE.match(v))).all(), (spec.name, col.name)
                df[col.name] = pd.to_datetime(s, format="%Y-%m-%d")
            else:
                assert np.issubdtype(s.dtype, np.datetime64), (spec.name, col.name, s.dtype)
                assert (s.dropna() == s.dropna().dt.normalize()).all(), "dates are at midnight"
        elif col.kind == "timestamp":
            if csv:
                assert s.dropna().map(lambda v: bool(STAMP_RE.match(v))).all(), (spec.name, col.name)
                df[col.name] = pd.to_datetime(s, utc=True, format="ISO8601")
            else:
                assert isinstance(s.dtype, pd.DatetimeTZDtype) and str(s.dt.tz) == "UTC", (
                    spec.name,
                    col.name,
                )
        elif col.kind == "number":
            df[col.name] = pd.to_numeric(s)
        elif col.kind == "boolean":
            df[col.name] = s.map({"True": True, "False": False}) if csv else s
            assert df[col.name].isin([True, False]).all()
    return df


def load(folder, csv: bool) -> dict[str, pd.DataFrame]:
    frames = {}
    for name, spec in contract.TABLES.items():
        path = table_path(folder, name)
        assert path is not None, f"{name} was not written"
        assert path.suffix == (".csv" if csv else ".parquet")
        frames[name] = typed(spec, read_raw(path), csv)
    return frames


def check_contract(frames: dict[str, pd.DataFrame]) -> None:
    for name, spec in contract.TABLES.items():
        df = frames[name]
        assert len(df), f"{name} is empty"
        for col in spec.columns:
            if col.required:
                assert col.name in df, (name, col.name)
            if col.name not in df:
                continue
            s = df[col.name]
            if not col.nullable:
                assert s.notna().all(), (name, col.name, "nulls")
            v = s.dropna()
            if col.non_empty:
                assert (v.astype(str).str.strip() != "").all(), (name, col.name)
            if col.unique:
                assert v.is_unique, (name, col.name)
            if col.ge is not None:
                assert (v >= col.ge).all(), (name, col.name)
            if col.gt is not None:
                assert (v > col.gt).all(), (name, col.name)
            if getattr(col, "one_of", None):
                assert v.isin(col.one_of).all(), (name, col.name)
            if col.references:
                table, other = col.references
                assert v.isin(frames[table][other]).all(), (name, col.name, "references", table)
    q = frames["quotas"]
    assert (q["period_end"] >= q["period_start"]).all()
    q = q.sort_values(["rep_id", "period_start"])
    prev_end = q.groupby("rep_id")["period_end"].shift()
    assert (prev_end.isna() | (q["period_start"] > prev_end)).all(), "a rep's quota periods overlap"
    o = frames["opportunities"]
    assert (~o["is_won"] | o["is_closed"]).all(), "is_won implies is_closed"
    r = frames["reps"]
    assert (r["end_date"].isna() | (r["end_date"] >= r["hire_date"])).all()
    e = frames["engagement"]
    for metric, (lo, hi) in contract.METRIC_RANGES.items():
        v = e.loc[e["metric"] == metric, "value"]
        assert len(v), f"no {metric} rows"
        assert (v >= lo).all() and (hi is None or (v <= hi).all()), metric
    i = frames["interventions"]
    assert (i["ended_on"].isna() | (i["ended_on"] >= i["started_on"])).all()
    assert i["intervention"].isin(contract.INTERVENTION_IDS).all()


_LOADED: dict[str, dict[str, pd.DataFrame]] = {}


@pytest.fixture(params=["parquet", "csv"])
def folder_and_frames(request, small_org, csv_org):
    folder = (small_org if request.param == "parquet" else csv_org)[0]
    if str(folder) not in _LOADED:
        _LOADED[str(folder)] = load(folder, request.param == "csv")
    return folder, _LOADED[str(folder)]


def test_every_contract_rule_holds(folder_and_frames):
    check_contract(folder_and_frames[1])


def test_the_projects_validator_accepts_it(folder_and_frames):
    validation = pytest.importorskip("features.validation")
    report = validation.validate_folder(folder_and_frames[0])
    assert report.ok, report.render()


def test_rows_are_sorted(folder_and_frames):
    for name, keys in SORT_KEYS.items():
        df = folder_and_frames[1][name]
        assert df[keys].equals(df.sort_values(keys, kind="stable")[keys]), name


def test_history_replays_to_the_final_state(folder_and_frames):
    f = folder_and_frames[1]
    o = f["opportunities"].set_index("opportunity_id")
    h = f["opportunity_history"]
    assert set(h["opportunity_id"]) == set(o.index), "every deal has a history"
    same_deal = h["opportunity_id"] == h["opportunity_id"].shift()
    assert (h["changed_at"] > h["changed_at"].shift())[same_deal].all(), (
        "a deal's changes are strictly in time order"
    )
    first = h.groupby("opportunity_id").first()
    assert (first["stage"] == "Prospecting").all()
    assert (
        first["changed_at"].dt.tz_localize(None).dt.normalize() - o.loc[first.index, "created_date"]
    ).abs().max() <= pd.Timedelta(days=1)
    last = h.groupby("opportunity_id").last()
    for col in ("stage", "amount", "close_date"):
        assert (last[col] == o.loc[last.index, col]).all(), col
    won = o[o["is_won"]]
    assert (won["stage"] == "Closed Won").all()
    assert (won["close_date"] >= won["created_date"]).all()


def test_activities_link_to_the_reps_own_deals(folder_and_frames):
    f = folder_and_frames[1]
    a = f["activities"].dropna(subset=["opportunity_id"])
    owner = f["opportunities"].set_index("opportunity_id")["rep_id"]
    assert len(a) > 0
    assert (owner.loc[a["opportunity_id"]].to_numpy() == a["rep_id"].to_numpy()).all()
    assert set(f["activities"]["type"]) == {"call", "email", "meeting", "demo"}


def test_engagement_is_one_measurement_per_rep_day_metric(folder_and_frames):
    e = folder_and_frames[1]["engagement"]
    assert not e.duplicated(["rep_id", "date", "metric"]).any()
    assert set(e["metric"]) == set(contract.KNOWN_METRICS)


def test_no_quota_before_hire_or_after_leaving(folder_and_frames):
    f = folder_and_frames[1]
    q = f["quotas"].merge(f["reps"], on="rep_id")
    assert (q["hire_date"] <= q["period_end"]).all()
    assert (q["end_date"].isna() | (q["end_date"] >= q["period_end"])).all()
