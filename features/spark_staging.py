"""Staging on Spark: the large tables of `SparkTables` become the integer-only stg_* views in Spark SQL.

The same staged tables as `features.staging` (see its docstring), built where the data is:
opportunities, their history, activities and engagement never leave the cluster. The small
tables (reps, quotas, the snapshots, the calendar, the parameters) go through the pandas
`features.staging.stage` itself, so there is one definition of their staging, and are shipped
to Spark. Keys: `rep_key` is the rep's position in `reps` (as in pandas); `opp_key` and the
history's `row_no` are read positions (unique and in file order, which is all the feature SQL
asks of them); stage, activity-type and metric codes number the names in order of first
appearance, as pandas' dictionary encoding does.
"""

from __future__ import annotations

import pandas as pd

from features.contract import OPPORTUNITIES
from features.spark_io import POS, SparkTables
from features.staging import Staged, stage


def stage_spark(
    tables: SparkTables,
    snapshots: pd.DataFrame,
    engine,
    *,
    reference_day: int | None = None,
    miss_threshold: float = 1.0,
) -> Staged:
    """Register every stg_* view on `engine`'s session; the returned Staged has no frames (None)."""
    from pyspark.sql import functions as F

    spark = engine.spark
    small = stage(
        _small_tables(tables), snapshots, reference_day=reference_day, miss_threshold=miss_threshold
    )
    has_history = tables.opportunity_history is not None
    has_activities = tables.activities is not None
    has_engagement = tables.engagement is not None
    params = small.frames["stg_params"].assign(
        has_history=int(has_history), has_activities=int(has_activities), has_engagement=int(has_engagement)
    )
    engine.register(
        {
            **{k: small.frames[k] for k in ("stg_reps", "stg_quotas", "stg_snapshots", "stg_calendar")},
            "stg_params": params,
        }
    )

    reps = pd.DataFrame(
        {
            "rep_id": tables.reps["rep_id"].astype("str").to_numpy(),
            "rep_key": small.frames["stg_reps"]["rep_key"].to_numpy(),
        }
    )
    rep_keys = F.broadcast(spark.createDataFrame(reps, "rep_id string, rep_key int"))

    def day(c):
        return F.unix_date(F.to_date(c)).cast("int")

    o = tables.opportunities.join(rep_keys, on="rep_id", how="inner")
    h = tables.opportunity_history
    names = o.select(F.col("stage").alias("name"), F.lit(0).alias("src"), F.col(POS))
    if has_history:
        names = names.unionByName(h.select(F.col("stage").alias("name"), F.lit(1).alias("src"), F.col(POS)))
    stages = _codes(names, "stage_code", "stage_name")
    views = {"stg_stages": stages}
    codes = F.broadcast(stages.select(F.col("stage_name").alias("stage"), "stage_code"))
    views["stg_opps"] = o.join(codes, on="stage", how="left").select(
        F.col(POS).alias("opp_key"),
        "rep_key",
        day("created_date").alias("created_d"),
        day("close_date").alias("close_d"),
        F.col("stage_code").cast("int"),
        F.col("amount").cast("double"),
        F.coalesce("is_closed", F.lit(False)).alias("is_closed"),
        F.coalesce("is_won", F.lit(False)).alias("is_won"),
    )
    if has_history:
        keys = o.select("opportunity_id", F.col(POS).alias("opp_key"))
        views["stg_history"] = (
            h.join(keys, on="opportunity_id", how="inner")
            .join(codes, on="stage", how="left")
            .select(
                "opp_key",
                day("changed_at").alias("changed_d"),
                F.unix_micros("changed_at").alias("changed_us"),
                F.col(POS).alias("row_no"),
                F.col("stage_code").cast("int"),
                F.col("amount").cast("double"),
                day("close_date").alias("close_d"),
            )
        )
    else:
        views["stg_history"] = spark.createDataFrame(
            [],
            "opp_key bigint, changed_d int, changed_us bigint, row_no bigint, stage_code int, amount double, close_d int",
        )

    if has_activities:
        a = tables.activities.withColumn("type", F.coalesce("type", F.lit("")))
        types = _codes(
            a.select(F.col("type").alias("name"), F.lit(0).alias("src"), F.col(POS)), "type_code", "type_name"
        )
        views["stg_activity_types"] = types
        views["stg_activities"] = (
            a.join(rep_keys, on="rep_id", how="inner")
            .join(F.broadcast(types.withColumnRenamed("type_name", "type")), on="type", how="left")
            .select("rep_key", day("occurred_at").alias("d"), F.col("type_code").cast("int"))
        )
    else:
        views["stg_activity_types"] = spark.createDataFrame([], "type_code int, type_name string")
        views["stg_activities"] = spark.createDataFrame([], "rep_key int, d int, type_code int")

    metric_names: list[str] = []
    if has_engagement:
        e = tables.engagement
        metrics = _codes(
            e.select(F.col("metric").alias("name"), F.lit(0).alias("src"), F.col(POS)),
            "metric_code",
            "metric_name",
        )
        metric_names = [r["metric_name"] for r in metrics.orderBy("metric_code").collect()]
        views["stg_metrics"] = metrics
        views["stg_engagement"] = (
            e.join(rep_keys, on="rep_id", how="inner")
            .join(F.broadcast(metrics.withColumnRenamed("metric_name", "metric")), on="metric", how="left")
            .select(
                "rep_key",
                day("date").alias("d"),
                F.col("metric_code").cast("int"),
                F.col("value").cast("double"),
            )
        )
    else:
        views["stg_metrics"] = spark.createDataFrame([], "metric_code int, metric_name string")
        views["stg_engagement"] = spark.createDataFrame(
            [], "rep_key int, d int, metric_code int, value double"
        )
    engine.register_views(views)
    return Staged(None, small.rep_ids, has_history, has_activities, has_engagement, metric_names, None)


def _small_tables(tables: SparkTables):
    """The pandas half: reps and quotas as they are, no deals or events (staged on Spark)."""
    from features.io import Tables
    from features.validation import coerce_table

    # The contract's opportunities with no rows (every column typed): no deal is staged in pandas.
    return Tables(
        reps=tables.reps, quotas=tables.quotas, opportunities=coerce_table(OPPORTUNITIES, pd.DataFrame())
    )


def _codes(names, code: str, name: str):
    """(code, name) numbering distinct non-null names by first appearance (source, then position)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    first = (
        names.filter(F.col("name").isNotNull())
        .groupBy("name")
        .agg(F.min(F.struct("src", POS)).alias("first"))
    )
    order = Window.orderBy("first")
    # One row per distinct name (a few dozen): the unpartitioned window is cheap.
    return first.select(
        (F.row_number().over(order) - 1).cast("int").alias(code), F.col("name").alias(name)
    ).localCheckpoint(eager=True)
