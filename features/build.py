"""Point-in-time training and scoring sets: snapshots (rep, period, as-of day) with features and labels.

Every feature of a snapshot uses only what was known before its as-of day's start (events on days
< as_of); see docs/features.md. The definitions are the SQL in features/sql/, run here by DuckDB
(`features.engine`) on tables staged by `features.staging`.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from features import registry
from features.contract import REPS
from features.engine import DuckDBEngine
from features.io import Tables
from features.staging import day_number, from_day_number, latest_data_day, stage
from models.i18n import Items, Message
from repradar.errors import UserError

KEY_COLUMNS = ["rep_id", "period_start", "period_end", "as_of"]
META_COLUMNS = ["manager_id", "team", "region", "segment", "day_of_period", "period_days", "week_of_period"]
LABEL_COLUMNS = ["attainment", "missed"]
PEER_PREFIX = "peer__"

# Features that depend on the expected close dates, amounts or stages of deals while open, so they
# differ when opportunity_history is absent (the fallback): docs/features.md.
FALLBACK_COLUMNS = [
    "open_pipeline_in_period",
    "open_deals_in_period",
    "pipeline_coverage",
    "open_pipeline_total",
    "new_pipeline_amount_28d",
    "new_pipeline_amount_91d",
    "avg_new_deal_size_182d",
    "overdue_open_deals",
    "overdue_open_share",
    "close_date_slips_91d",
    "late_stage_reach_rate_180d",
    "late_stage_loss_share_180d",
    "early_stage_progress_rate_180d",
    "stage_progress_rate_364d",
    "late_stage_progress_rate_180d",
    "stage_days_91d",
    "open_deal_stage_age_days",
]


def fallback_note() -> Message:
    """What the features lose without opportunity_history (the note's text: card.build_note.fallback)."""
    return Message("card.build_note.fallback", columns=Items(FALLBACK_COLUMNS[:9]))


@dataclass
class FeatureSet:
    """Snapshots with features, peer medians and labels; one row per snapshot."""

    frame: pd.DataFrame
    feature_names: list[str]
    history_fallback: bool
    # the build's notes: Messages (English wherever used as text; the Chinese model card says them in
    # Chinese), the scoring-day ones plain English
    notes: list[str] = field(default_factory=list)

    @property
    def peer_columns(self) -> list[str]:
        return [c for c in self.frame.columns if c.startswith(PEER_PREFIX)]

    def summary_lines(self) -> list[str]:
        f = self.frame
        lines = [
            f"rows: {len(f)}",
            f"reps: {f['rep_id'].nunique() if len(f) else 0}",
            f"periods: {f[['period_start', 'period_end']].drop_duplicates().shape[0] if len(f) else 0}",
            f"snapshot days: {f['as_of'].nunique() if len(f) else 0}",
            # what `train` counts as model inputs adds each feature's peer median (`peer__x`)
            f"features: {len(self.feature_names)} (plus {len(self.peer_columns)} peer "
            f"median{'s' * (len(self.peer_columns) != 1)}: {len(self.feature_names) + len(self.peer_columns)} "
            "model inputs)",
        ]
        missed = f["missed"].dropna() if len(f) else pd.Series([], dtype="boolean")
        if len(missed):
            lines.append(f"miss rate: {missed.astype(float).mean():.3f} ({len(missed)} labelled rows)")
        else:
            lines.append("miss rate: n/a (no labelled rows)")
        lines += [f"note: {n}" for n in self.notes]
        return lines


# ---------------------------------------------------------------------------------------------
# snapshots


def _as_date(value) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return pd.Timestamp(value).date()


def _day_series(s: pd.Series) -> np.ndarray:
    values = pd.to_datetime(s).to_numpy(dtype="datetime64[ns]").astype("datetime64[D]")
    return values


def default_reference_day(tables: Tables) -> dt.date | None:
    """The day after the latest event in the data: periods ending before it are finished."""
    latest = latest_data_day(tables)
    return None if latest is None else from_day_number(latest + 1)


def _employment(tables: Tables) -> pd.DataFrame:
    reps = tables.reps
    end = reps["end_date"] if "end_date" in reps else pd.Series(pd.NaT, index=reps.index)
    return pd.DataFrame(
        {
            "rep_id": reps["rep_id"].astype("string").to_numpy(),
            "hire": _day_series(reps["hire_date"]),
            "end": _day_series(end),
        }
    )


def _quota_periods(tables: Tables) -> pd.DataFrame:
    """Each rep's distinct quota periods as (rep_id, ps, pe) day numbers."""
    q = tables.quotas
    periods = pd.DataFrame(
        {
            "rep_id": q["rep_id"].astype("string").to_numpy(),
            "ps": _day_series(q["period_start"]),
            "pe": _day_series(q["period_end"]),
        }
    ).dropna()
    return periods.drop_duplicates(["rep_id", "ps", "pe"])


def snapshot_frame(
    tables: Tables,
    *,
    every_days: int = 7,
    finished_before: dt.date | None = None,
) -> pd.DataFrame:
    """Snapshots at period_start + k * every_days of each quota period, for days the rep is employed.

    With `finished_before`, only periods with period_end < finished_before.
    """
    if every_days < 1:
        raise UserError("every_days must be at least 1")
    periods = _quota_periods(tables)
    if finished_before is not None:
        periods = periods[periods["pe"] < np.datetime64(finished_before, "D")]
    periods = periods[periods["pe"] >= periods["ps"]]
    length = (periods["pe"] - periods["ps"]).to_numpy().astype("timedelta64[D]").astype("int64")
    n = length // every_days + 1
    idx = np.repeat(np.arange(len(periods)), n)
    offsets = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)
    snaps = periods.iloc[idx].reset_index(drop=True)
    snaps["as_of"] = snaps["ps"].to_numpy() + (offsets * every_days).astype("timedelta64[D]")
    return _employed(tables, snaps)


def _employed_without_quota(tables: Tables, day: np.datetime64, scored: set[str]) -> list[str]:
    """Reps employed on `day` (hired, not yet gone) who are not among `scored`, sorted."""
    emp = _employment(tables)
    ok = (emp["hire"] <= day) & (emp["end"].isna() | (day <= emp["end"]))
    return sorted(set(emp.loc[ok, "rep_id"].astype(str)) - scored)


def _employed(tables: Tables, snaps: pd.DataFrame) -> pd.DataFrame:
    emp = _employment(tables)
    snaps = snaps.merge(emp, on="rep_id", how="inner")
    ok = (snaps["hire"] <= snaps["as_of"]) & (snaps["end"].isna() | (snaps["as_of"] <= snaps["end"]))
    snaps = snaps[ok]
    out = pd.DataFrame(
        {
            "rep_id": snaps["rep_id"].astype("string").to_numpy(),
            "period_start": snaps["ps"].to_numpy().astype("datetime64[ns]"),
            "period_end": snaps["pe"].to_numpy().astype("datetime64[ns]"),
            "as_of": snaps["as_of"].to_numpy().astype("datetime64[ns]"),
        }
    )
    out["rep_id"] = out["rep_id"].astype("string")
    return out.sort_values(["period_start", "as_of", "rep_id"], kind="stable").reset_index(drop=True)


# ---------------------------------------------------------------------------------------------
# features


def _slug(name: str) -> str:
    return re.sub(r"[^0-9a-z]+", "_", str(name).lower()).strip("_") or "metric"


def _unknown_metric_frame(long: pd.DataFrame, n: int) -> pd.DataFrame:
    """Pivot (snap_id, metric_name, mean_28d) to one feature column per unknown metric."""
    if long is None or long.empty:
        return pd.DataFrame(index=pd.RangeIndex(n))
    wide = long.pivot_table(
        index="snap_id", columns="metric_name", values="mean_28d", aggfunc="first", dropna=False
    )
    wide = wide.reindex(index=range(n))
    names, used = {}, set()
    for metric in sorted(wide.columns, key=str):
        base = registry.unknown_metric_feature(_slug(metric))
        name, i = base, 2
        while name in used:
            name = registry.unknown_metric_feature(f"{_slug(metric)}_{i}")
            i += 1
        used.add(name)
        names[metric] = name
    wide = wide[sorted(wide.columns, key=str)].rename(columns=names).astype("float64")
    wide.columns.name = None
    return wide.reset_index(drop=True)


def _attribute_columns(tables: Tables) -> list[str]:
    known = set(REPS.column_names)
    return [c for c in tables.reps.columns if c not in known]


def _notes(tables: Tables, staged, unknown: list[str]) -> list[Message]:
    """What the build had to leave out or guess (texts under card.build_note in models/messages/)."""
    notes = []
    if not staged.has_history:
        notes.append(fallback_note())
    if not staged.has_activities:
        notes.append(Message("card.build_note.no_activities"))
    if not staged.has_engagement:
        notes.append(Message("card.build_note.no_engagement"))
    if unknown:
        notes.append(Message("card.build_note.unknown_metrics", metrics=Items(unknown)))
    attrs = _attribute_columns(tables)
    if attrs:
        notes.append(Message("card.build_note.attributes", columns=Items(attrs)))
    return notes


def compute_features(
    tables: Tables,
    snapshots: pd.DataFrame,
    *,
    miss_threshold: float = 1.0,
    reference_day: dt.date | None = None,
    engine: DuckDBEngine | None = None,
) -> FeatureSet:
    """Features, peer medians and labels for the given snapshots (KEY_COLUMNS), in their order.

    Pass an `engine` to choose DuckDB threads or read its per-step `timings_` afterwards.

    Labels are filled for periods ending before `reference_day` (default: the day after the latest
    event in the data) and NaN otherwise.
    """
    missing = [c for c in KEY_COLUMNS if c not in snapshots.columns]
    if missing:
        raise ValueError(f"snapshots lack columns {missing}")
    snaps = snapshots[KEY_COLUMNS].reset_index(drop=True).copy()
    snaps["rep_id"] = snaps["rep_id"].astype("string")
    for c in ["period_start", "period_end", "as_of"]:
        snaps[c] = pd.to_datetime(snaps[c]).dt.normalize().astype("datetime64[ns]")
    if reference_day is None:
        reference_day = default_reference_day(tables)
    ref = None if reference_day is None else day_number(reference_day)

    n = len(snaps)
    if getattr(tables, "spark", None) is not None:
        # features.spark_io.SparkTables: the large tables are staged on Spark, not collected here.
        from features.spark_engine import SparkEngine
        from features.spark_staging import stage_spark

        if engine is None:
            engine = SparkEngine(tables.spark)
        if not isinstance(engine, SparkEngine):
            raise UserError("tables read on Spark are built with the Spark engine: pass --engine spark")
        staged = stage_spark(tables, snaps, engine, reference_day=ref, miss_threshold=miss_threshold)
    else:
        staged = stage(tables, snaps, reference_day=ref, miss_threshold=miss_threshold)
    if n:
        results = (engine or DuckDBEngine()).run(staged.frames)
        ft = results["feature_table"]
        labels = results["labels"]
        unknown = _unknown_metric_frame(results["engagement_unknown"], n)
        if len(ft) != n or not np.array_equal(ft["snap_id"].to_numpy(), np.arange(n)):
            raise RuntimeError("feature SQL did not return one row per snapshot")
    else:
        ft = pd.DataFrame(
            columns=["snap_id"]
            + registry.feature_names()
            + [PEER_PREFIX + p for p in registry.peer_feature_names()]
        )
        labels = pd.DataFrame(
            {"attainment": pd.Series([], dtype="float64"), "missed": pd.Series([], dtype="float64")}
        )
        unknown = pd.DataFrame(index=pd.RangeIndex(0))
        if hasattr(engine, "release"):
            engine.release()  # views staged on Spark for nothing to compute

    frame = snaps
    reps = tables.reps.copy()
    reps["rep_id"] = reps["rep_id"].astype("string")
    meta = pd.DataFrame({"rep_id": reps["rep_id"]})
    for c in ["manager_id", "team", "region", "segment"]:
        meta[c] = (
            reps[c].astype("string") if c in reps else pd.Series(pd.NA, index=reps.index, dtype="string")
        )
    meta = meta.drop_duplicates("rep_id")
    frame = frame.merge(meta, on="rep_id", how="left")
    ps = frame["period_start"].to_numpy().astype("datetime64[D]")
    pe = frame["period_end"].to_numpy().astype("datetime64[D]")
    asof = frame["as_of"].to_numpy().astype("datetime64[D]")
    frame["day_of_period"] = ((asof - ps).astype("int64") + 1).astype("int64")
    frame["period_days"] = ((pe - ps).astype("int64") + 1).astype("int64")
    frame["week_of_period"] = ((frame["day_of_period"] - 1) // 7 + 1).astype("int64")

    fixed = registry.feature_names()
    feats = ft[fixed].astype("float64").reset_index(drop=True)
    peers = (
        ft[[PEER_PREFIX + p for p in registry.peer_feature_names()]].astype("float64").reset_index(drop=True)
    )
    missed = labels["missed"].astype("float64")
    lab = pd.DataFrame(
        {
            "attainment": labels["attainment"].astype("float64").to_numpy(),
            "missed": pd.arrays.BooleanArray(missed.to_numpy() == 1, missed.isna().to_numpy()),
        }
    )
    frame = pd.concat(
        [frame[KEY_COLUMNS + META_COLUMNS].reset_index(drop=True), feats, unknown, peers, lab], axis=1
    )
    unknown_names = list(unknown.columns)
    return FeatureSet(
        frame=frame,
        feature_names=fixed + unknown_names,
        history_fallback=not staged.has_history,
        notes=_notes(tables, staged, unknown_names),
    )


# ---------------------------------------------------------------------------------------------
# training and scoring sets


def build_training_set(
    tables: Tables,
    *,
    every_days: int = 7,
    reference_day: dt.date | None = None,
    miss_threshold: float = 1.0,
    engine: DuckDBEngine | None = None,
) -> FeatureSet:
    """Snapshots every `every_days` days of every period finished before `reference_day`, with labels."""
    ref = _as_date(reference_day) if reference_day is not None else default_reference_day(tables)
    if ref is None:
        raise UserError("the data holds no dated events, so no quota period can be called finished")
    snaps = snapshot_frame(tables, every_days=every_days, finished_before=ref)
    if snaps.empty:
        periods = _quota_periods(tables)
        if periods.empty:
            raise UserError(
                "no finished quota period with an employed rep: the quotas table has no rows. "
                "Training needs quotas (at least one finished period); see docs/import.md#quota-policy"
            )
        if (periods["pe"] < np.datetime64(ref, "D")).any():
            why = (
                f"the quota periods that end before {ref} (the day after the latest event in the data) "
                "fall outside every rep's employment (before their hire_date or after their end_date)"
            )
        else:
            why = f"every period ends on or after {ref} (the day after the latest event in the data)"
        raise UserError(
            f"no finished quota period with an employed rep: {why}. "
            "Training needs at least one finished period."
        )
    fs = compute_features(tables, snaps, miss_threshold=miss_threshold, reference_day=ref, engine=engine)
    n_periods = snaps[["period_start", "period_end"]].drop_duplicates().shape[0]
    fs.notes.insert(
        0, Message("card.build_note.snapshots", every_days=every_days, periods=n_periods, day=ref)
    )
    return fs


def period_outcomes(
    tables: Tables,
    reference_day: dt.date,
    *,
    since: dt.date | None = None,
    miss_threshold: float = 1.0,
    engine: DuckDBEngine | None = None,
) -> pd.DataFrame:
    """Each rep's outcome of every quota period ending before `reference_day` (and on or after
    `since`): the training label (attainment, missed) and the quota against the segment's, computed by
    the feature SQL on one snapshot per rep and period, the period's last day the rep was employed.

    One definition of the label for training and for the fairness audit's outcomes.
    """
    cols = ["rep_id", "period_start", "period_end", "attainment", "missed", "quota_vs_segment"]
    ref = np.datetime64(_as_date(reference_day), "D")
    periods = _quota_periods(tables)
    periods = periods[(periods["pe"] < ref) & (periods["pe"] >= periods["ps"])]
    if since is not None:
        periods = periods[periods["pe"] >= np.datetime64(_as_date(since), "D")]
    periods = periods.merge(_employment(tables), on="rep_id")
    # a leaver's outcome is read on their last day; the label itself counts the whole period
    last = periods["pe"].where(periods["end"].isna() | (periods["end"] >= periods["pe"]), periods["end"])
    employed = last >= np.maximum(periods["ps"], periods["hire"])
    periods = periods.assign(as_of=last)[employed]
    if periods.empty:
        return pd.DataFrame({c: pd.Series(dtype="float64") for c in cols}).astype(
            {"rep_id": "string", "period_start": "datetime64[ns]", "period_end": "datetime64[ns]"}
        )
    snaps = pd.DataFrame(
        {
            "rep_id": periods["rep_id"].astype("string").to_numpy(),
            "period_start": periods["ps"].to_numpy().astype("datetime64[ns]"),
            "period_end": periods["pe"].to_numpy().astype("datetime64[ns]"),
            "as_of": periods["as_of"].to_numpy().astype("datetime64[ns]"),
        }
    )
    day = _as_date(reference_day)
    if getattr(tables, "spark", None) is not None:
        fs = compute_features(tables, snaps, miss_threshold=miss_threshold, reference_day=day, engine=engine)
        return fs.frame[cols].reset_index(drop=True)
    # only the two relations the outcome needs, from the tables they read: a whole feature build
    # costs about a minute on 1,500 reps, this a second or two
    lean = tables.replace(opportunity_history=None, activities=None, engagement=None, interventions=None)
    staged = stage(lean, snaps, reference_day=day_number(day), miss_threshold=miss_threshold)
    steps = ("quota_context", "labels")
    res = (engine or DuckDBEngine()).run(staged.frames, outputs=steps, steps=steps)
    for name in steps:
        if not np.array_equal(res[name]["snap_id"].to_numpy(), np.arange(len(snaps))):
            raise RuntimeError(f"{name} SQL did not return one row per snapshot")
    missed = res["labels"]["missed"].astype("float64")
    out = snaps[["rep_id", "period_start", "period_end"]].copy()
    out["attainment"] = res["labels"]["attainment"].astype("float64").to_numpy()
    out["missed"] = pd.arrays.BooleanArray(missed.to_numpy() == 1, missed.isna().to_numpy())
    out["quota_vs_segment"] = res["quota_context"]["quota_vs_segment"].astype("float64").to_numpy()
    return out[cols]


def check_as_of_inside(tables, as_of) -> np.ndarray:
    """The quota rows whose period contains `as_of` (a boolean mask); UserError naming the covered
    range when there is none. Cheap: callers run it before loading a model or building features."""
    as_of = _as_date(as_of)
    q = tables.quotas
    ps = _day_series(q["period_start"])
    pe = _day_series(q["period_end"])
    day = np.datetime64(as_of, "D")
    inside = (ps <= day) & (day <= pe)
    if not inside.any():
        if len(q):
            lo, hi = pd.Timestamp(ps.min()).date(), pd.Timestamp(pe.max()).date()
            covered = f"quota periods cover {lo} to {hi}"
        else:
            covered = "the quotas table is empty"
        # Most often the new period's quotas are not loaded yet (its first weeks): say whom it leaves out.
        employed = _employed_without_quota(tables, day, set())
        who = (
            f"none of the {len(employed)} rep(s) employed on {as_of} ({_some(employed)}) has a quota period "
            "containing it"
            if employed
            else f"no rep is employed on {as_of} either"
        )
        raise UserError(
            f"as-of date {as_of} is outside every quota period ({covered}): {who}. If the new period's "
            "quotas are not loaded yet, add them to quotas (one row per rep: rep_id, period_start, period_end, "
            "quota_amount) and score again; otherwise pick a date inside a period"
        )
    return inside


def _some(ids: list[str], n: int = 10) -> str:
    """The first `n` ids, and how many more."""
    return ", ".join(ids[:n]) + (f" and {len(ids) - n} more" if len(ids) > n else "")


def build_scoring_set(
    tables: Tables, as_of: dt.date, *, miss_threshold: float = 1.0, engine: DuckDBEngine | None = None
) -> FeatureSet:
    """One snapshot per rep employed on `as_of` whose quota period contains it."""
    as_of = _as_date(as_of)
    q = tables.quotas
    ps = _day_series(q["period_start"])
    pe = _day_series(q["period_end"])
    day = np.datetime64(as_of, "D")
    inside = check_as_of_inside(tables, as_of)
    snaps = pd.DataFrame(
        {"rep_id": q["rep_id"].astype("string").to_numpy()[inside], "ps": ps[inside], "pe": pe[inside]}
    ).drop_duplicates(["rep_id", "ps", "pe"])
    snaps["as_of"] = day
    snaps = _employed(tables, snaps)
    unquoted = _employed_without_quota(tables, day, set(snaps["rep_id"].astype(str)))
    fs = compute_features(tables, snaps, miss_threshold=miss_threshold, engine=engine)
    if unquoted:
        fs.notes.append(
            f"{len(unquoted)} rep(s) employed on {as_of} are not scored: no quota period of theirs contains "
            f"that day ({_some(unquoted)}); add their quotas to score them"
        )
    latest = latest_data_day(tables)
    if latest is not None and day_number(as_of) > latest + 1:
        fs.notes.append(
            f"as-of date {as_of} is {day_number(as_of) - latest - 1} day(s) after the latest event in the data "
            f"({from_day_number(latest)}): features see nothing after that"
        )
    if fs.frame.empty:
        fs.notes.append(f"no rep is employed on {as_of} with a quota period containing it")
    return fs
