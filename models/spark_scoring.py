"""Distributed batch scoring: the champion pyfunc over a Spark DataFrame with `mapInPandas`.

Each partition is scored by the same `models.scoring.scores_from_features` as on one machine, so
risks, bands, drivers and interventions are computed by the same code; only the rank (which needs
every row) is recomputed over the whole frame afterwards, with the same tie-break (rep id).
"""

from __future__ import annotations

import pandas as pd

from models.scoring import DATE_COLUMNS, EXTRA_COLUMNS, SCORE_COLUMNS, _as_date
from repradar.errors import UserError

DRIVER_TYPE = "array<struct<feature:string,group:string,value:double,contribution:double>>"
# Spark schema of the frame `scores_from_features` returns (SCORE_COLUMNS + EXTRA_COLUMNS).
SCORES_SCHEMA = ", ".join(
    [
        "rep_id string",
        "manager_id string",
        "period_start timestamp_ntz",
        "period_end timestamp_ntz",
        "as_of timestamp_ntz",
        "risk double",
        "risk_band string",
        "rank bigint",
        "attainment_to_date double",
        f"drivers {DRIVER_TYPE}",
        "interventions array<string>",
        "model_version string",
        "raw_score double",
        "base_value double",
        "model_name string",
        "team string",
        "region string",
        "segment string",
    ]
)


def _arrow_frame(frame: pd.DataFrame):
    """A pandas feature frame as an Arrow table Spark accepts (plain strings, no labels)."""
    import pyarrow as pa

    frame = frame.drop(columns=[c for c in ("attainment", "missed") if c in frame.columns])
    table = pa.Table.from_pandas(frame, preserve_index=False)
    fields = []
    for f in table.schema:
        t = f.type
        if pa.types.is_large_string(t):
            t = pa.string()
        elif pa.types.is_null(t):
            t = pa.float64()
        fields.append(pa.field(f.name, t))
    return table.cast(pa.schema(fields))


def to_spark(spark, frame: pd.DataFrame):
    """A feature frame (KEY + META + features) as a Spark DataFrame."""
    table = _arrow_frame(frame)
    try:
        return spark.createDataFrame(table)
    except TypeError:  # an older PySpark without pyarrow.Table input
        return spark.createDataFrame(table.to_pandas())


def score_spark(features, model, settings):
    """Spark DataFrame of scores (SCORES_SCHEMA) from a Spark DataFrame of features, ranked globally."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    from models.scoring import scores_from_features

    def score_batches(batches):
        for batch in batches:
            if len(batch):
                out = scores_from_features(batch.reset_index(drop=True), model, settings)
                yield out[SCORE_COLUMNS + EXTRA_COLUMNS]

    scored = features.mapInPandas(score_batches, schema=SCORES_SCHEMA)
    # The per-batch rank is local; rank 1 = highest risk over all rows, ties broken by rep id.
    order = Window.orderBy(F.col("risk").desc(), F.col("rep_id").asc())
    ranked = scored.withColumn("rank", F.row_number().over(order).cast("bigint"))
    return ranked.select(*(SCORE_COLUMNS + EXTRA_COLUMNS))


def _drivers(value) -> list[dict]:
    if value is None:
        return []
    out = []
    for d in list(value):
        d = d.asDict() if hasattr(d, "asDict") else dict(d)
        out.append({k: d.get(k) for k in ("feature", "group", "value", "contribution")})
    return out


def collect_scores(scores) -> pd.DataFrame:
    """A Spark scores DataFrame as the pandas frame `models.scoring.scores_from_features` returns."""
    df = scores.toPandas()
    for c in DATE_COLUMNS:
        df[c] = pd.to_datetime(df[c]).astype("datetime64[ns]")
    for c in ("rep_id", "manager_id", "model_version", "model_name", "team", "region", "segment"):
        df[c] = df[c].astype("string")
    df["rank"] = df["rank"].astype("int64")
    df["drivers"] = [_drivers(v) for v in df["drivers"]]
    df["interventions"] = [[] if v is None else [str(x) for x in v] for v in df["interventions"]]
    df["risk_band"] = df["risk_band"].astype(object)
    return df.sort_values("rank").reset_index(drop=True)[SCORE_COLUMNS + EXTRA_COLUMNS]


def score_tables_spark(tables, as_of, model, settings, spark=None) -> pd.DataFrame:
    """Like `models.scoring.score_tables`, with features built and scored on Spark."""
    from features.build import build_scoring_set
    from features.spark_engine import SparkEngine

    engine = SparkEngine(spark)
    as_of = _as_date(as_of)
    fs = build_scoring_set(tables, as_of, miss_threshold=settings.miss_threshold, engine=engine)
    if fs.frame.empty:
        raise UserError(
            f"no rep to score on {as_of}: nobody is employed with a quota period containing that day; "
            "check the reps' hire and end dates and the quotas"
        )
    out = collect_scores(score_spark(to_spark(engine.spark, fs.frame), model, settings))
    out.attrs["notes"] = list(fs.notes or [])
    return out
