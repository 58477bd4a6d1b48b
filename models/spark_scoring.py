"""Distributed batch scoring: the champion pyfunc over a Spark DataFrame, one as-of day per group.

Each group is scored by the same `models.scoring.scores_from_features` as on one machine, so risks,
bands, drivers, interventions and recourse come from the same code. Groups are whole as-of days
(`groupBy("as_of").applyInPandas`) because peer comparisons and recourse bounds are statistics over
all reps on the same day: a partition holding only part of a day would compare a rep with the wrong
peers. Several as-of days (a backfill) score in parallel. Nested columns (drivers, interventions,
reasons, recourse ...) travel as JSON text and are decoded on collect, so nothing is lost or rounded;
the rank (which needs every row) is recomputed over the whole frame, with the same tie-break.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from models.scoring import (
    ACTION_COLUMNS,
    DATE_COLUMNS,
    EXTRA_COLUMNS,
    NESTED_COLUMNS,
    SCORE_COLUMNS,
    _as_date,
)
from repradar.errors import UserError

COLUMNS = SCORE_COLUMNS + EXTRA_COLUMNS + ACTION_COLUMNS


def _plain(value):
    """numpy scalars and arrays as plain Python, for json.dumps."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _encode(value) -> str:
    # allow_nan: Python's json writes NaN and reads it back, so a NaN peer value survives the trip.
    return json.dumps(value, default=_plain, allow_nan=True)


def _spark_type(series: pd.Series) -> str:
    if series.name in NESTED_COLUMNS:
        return "string"
    if pd.api.types.is_bool_dtype(series):
        return "boolean"
    if pd.api.types.is_integer_dtype(series):
        return "bigint"
    if pd.api.types.is_float_dtype(series):
        return "double"
    if pd.api.types.is_datetime64_any_dtype(series):
        return "timestamp_ntz"
    return "string"


def scores_schema(sample: pd.DataFrame) -> str:
    """The Spark DDL schema of a scores frame, from a sample scored on the driver."""
    return ", ".join(f"`{c}` {_spark_type(sample[c])}" for c in COLUMNS)


def encode_scores(scores: pd.DataFrame) -> pd.DataFrame:
    """Scores with nested columns as JSON text (what crosses the Arrow boundary)."""
    out = scores[COLUMNS].copy()
    for c in NESTED_COLUMNS:
        out[c] = [_encode(v) for v in out[c]]
    return out


def score_spark(features, model, settings, schema: str):
    """Spark DataFrame of encoded scores from a Spark DataFrame of features, ranked globally."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    from models.scoring import scores_from_features

    def score_day(day: pd.DataFrame) -> pd.DataFrame:
        return encode_scores(scores_from_features(day.reset_index(drop=True), model, settings))

    scored = features.groupBy("as_of").applyInPandas(score_day, schema=schema)
    # The per-day rank is local; rank 1 = highest risk over all rows, ties broken by rep id.
    order = Window.orderBy(F.col("risk").desc(), F.col("rep_id").asc())
    return scored.withColumn("rank", F.row_number().over(order).cast("bigint")).select(*COLUMNS)


def collect_scores(scores, like: pd.DataFrame) -> pd.DataFrame:
    """Encoded Spark scores as the pandas frame `scores_from_features` returns (dtypes of `like`)."""
    df = scores.toPandas()
    for c in NESTED_COLUMNS:
        df[c] = [None if v is None else json.loads(v) for v in df[c]]
    for c in DATE_COLUMNS:
        df[c] = pd.to_datetime(df[c]).astype("datetime64[ns]")
    for c in COLUMNS:
        if c not in NESTED_COLUMNS and c not in DATE_COLUMNS:
            df[c] = df[c].astype(like[c].dtype)
    return df.sort_values("rank").reset_index(drop=True)[COLUMNS]


def score_tables_spark(tables, as_of, model, settings, spark=None) -> pd.DataFrame:
    """Like `models.scoring.score_tables`, with features built and scored on Spark."""
    from features.build import build_scoring_set
    from features.spark_engine import SparkEngine, to_spark_frame
    from models.scoring import score_notes, scores_from_features

    engine = SparkEngine(spark)
    as_of = _as_date(as_of)
    fs = build_scoring_set(tables, as_of, miss_threshold=settings.miss_threshold, engine=engine)
    if fs.frame.empty:
        raise UserError(
            f"no rep to score on {as_of}: nobody is employed with a quota period containing that day; "
            "check the reps' hire and end dates and the quotas"
        )
    # Column types come from scoring two rows on the driver: the scores' columns follow the code.
    sample = scores_from_features(fs.frame.head(2).reset_index(drop=True), model, settings)
    features = fs.frame.drop(columns=[c for c in ("attainment", "missed") if c in fs.frame.columns])
    sdf = to_spark_frame(engine.spark, features, null_type="float64")
    out = collect_scores(score_spark(sdf, model, settings, scores_schema(sample)), sample)
    out.attrs["notes"] = score_notes(fs, model, settings)
    return out
