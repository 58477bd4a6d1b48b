"""Runs the shared feature SQL (features/sql/*.sql) on Spark SQL, unchanged.

Same interface as `features.engine.DuckDBEngine` (`run(staged, outputs, steps)`, `timings_`), so
`features.build` takes either through `engine=`. Each staged frame becomes a temp view, each SQL
file a checkpointed temp view named after it (materialised in PIPELINE order, so each step's time is its
own), and the outputs come back as pandas frames sorted like DuckDB's.

The session is `SparkSession.builder.getOrCreate()`: an existing session (spark-submit, Databricks,
a test fixture) is used as is; otherwise a local one with master `local[2]` unless SPARK_MASTER /
spark-submit configuration says otherwise.
"""

from __future__ import annotations

import os
import sys
import time

import pandas as pd

from features.engine import PIPELINE, sql_text

DEFAULT_MASTER = "local[2]"

# Output sort orders, as DuckDBEngine returns them.
_ORDER = {"deal_states": ["opp_key", "ord"], "engagement_unknown": ["snap_id", "metric_name"]}


def _driver_memory() -> str:
    """A quarter of this machine's memory, 2 to 8 GiB: a local session's driver is its only executor."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return "2g"
    return f"{max(2, min(8, total // 4 // 2**30))}g"


# A local session (tests, one machine) runs many small queries: per-query compilation and the JIT,
# not the data, dominate. Interpreted stages, no adaptive re-planning and the client JIT (C1) cut
# the 30-rep parity run several-fold on two cores. Only applied to sessions RepRadar creates itself;
# spark-submit / Databricks sessions keep their own configuration.
LOCAL_CONF = {
    "spark.sql.shuffle.partitions": "4",
    "spark.sql.adaptive.enabled": "false",
    "spark.sql.codegen.wholeStage": "false",
    "spark.driver.extraJavaOptions": "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
}
SESSION_CONF = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
}


def spark_session(master: str | None = None, app_name: str = "repradar", conf: dict | None = None):
    """The active Spark session, or a new one (master: argument, else SPARK_MASTER, else local[2]).

    A new local session gets LOCAL_CONF and a driver memory from the machine's, unless the caller's
    `conf` or spark-submit's configuration sets the key; every session gets SESSION_CONF (UTC, Arrow),
    which the feature SQL relies on.
    """
    from pyspark import SparkConf
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        for key, value in SESSION_CONF.items():
            active.conf.set(key, value)
        return active
    builder = SparkSession.builder.appName(app_name)
    submitted = SparkConf()  # what spark-submit / spark-defaults.conf already set
    if master is None and submitted.contains("spark.master"):
        master = submitted.get("spark.master")
    else:
        master = master or os.environ.get("SPARK_MASTER") or DEFAULT_MASTER
        builder = builder.master(master)
    settings = {}
    if master.startswith("local"):
        defaults = {**LOCAL_CONF, "spark.driver.memory": _driver_memory()}
        settings = {k: v for k, v in defaults.items() if not submitted.contains(k)}
        # Python workers of a local session must run this interpreter (its LightGBM, MLflow):
        # PySpark reads the worker's interpreter from PYSPARK_PYTHON only, default `python3`.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    for key, value in {**settings, **(conf or {}), **SESSION_CONF}.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel(os.environ.get("REPRADAR_SPARK_LOG_LEVEL", "ERROR"))
    return session


def to_spark_frame(spark, frame: pd.DataFrame, null_type: str = "int32"):
    """A pandas frame as a Spark DataFrame via Arrow (plain strings; all-null columns typed)."""
    table = _arrow(frame, null_type)
    try:
        return spark.createDataFrame(table)
    except TypeError:  # an older PySpark without pyarrow.Table input
        return spark.createDataFrame(table.to_pandas())


def _arrow(frame: pd.DataFrame, null_type: str = "int32"):
    """A frame as an Arrow table Spark accepts (plain strings; all-null columns get `null_type`)."""
    import pyarrow as pa

    table = pa.Table.from_pandas(frame, preserve_index=False)
    fields = []
    for f in table.schema:
        t = f.type
        if pa.types.is_large_string(t):
            t = pa.string()
        elif pa.types.is_null(t):
            # An all-null column (e.g. an absent optional table's): Spark has no null type to hold.
            t = getattr(pa, null_type)()
        fields.append(pa.field(f.name, t))
    return table.cast(pa.schema(fields))


class SparkEngine:
    """Executes the pipeline on a Spark session (default: the active one, else local[2])."""

    def __init__(self, spark=None, master: str | None = None):
        self._spark = spark
        self.master = master
        self.timings_: list[tuple[str, float]] = []  # (step, wall seconds) of the last run
        self._staged: list = []

    @property
    def spark(self):
        if self._spark is None:
            self._spark = spark_session(self.master)
        return self._spark

    def register(self, staged: dict[str, pd.DataFrame]) -> None:
        """Register the staged pandas frames as temp views (via Arrow)."""
        for name, frame in staged.items():
            # Cached, the view is an in-memory relation: a bare local relation would be folded by
            # the optimizer and evaluated row by row on the driver (very slow, heap-hungry).
            df = to_spark_frame(self.spark, frame).cache()
            df.count()
            self._staged.append(df)
            df.createOrReplaceTempView(name)

    def register_views(self, views: dict) -> None:
        """Register Spark DataFrames (staged on Spark) as temp views, materialised once."""
        for name, df in views.items():
            # Checkpointed like the pipeline's steps: each staged table is read by several steps.
            df = df.localCheckpoint(eager=True)
            self._staged.append(df)
            df.createOrReplaceTempView(name)

    def release(self) -> None:
        """Unpersist what `register` and `register_views` materialised."""
        for df in self._staged:
            df.unpersist()
        self._staged = []

    def run(
        self,
        staged: dict[str, pd.DataFrame] | None,
        outputs: tuple[str, ...] = ("feature_table", "engagement_unknown", "labels"),
        steps: tuple[str, ...] = PIPELINE,
    ) -> dict[str, pd.DataFrame]:
        """Register the staged frames (None: the stg_* views already exist, e.g. staged on Spark by
        `features.spark_staging`),
        materialise `steps` in order as checkpointed views, return `outputs` as pandas frames."""
        spark = self.spark
        if staged is not None:
            self.register(staged)
        self.timings_ = []
        try:
            for name in steps:
                t0 = time.perf_counter()
                # Checkpointed, not cached: a view over a cached query keeps the query's whole plan,
                # so every later step re-planned (and often re-ran) all earlier ones, quadratic in
                # the pipeline's length. The checkpoint cuts the lineage: later steps read rows.
                df = spark.sql(sql_text(name)).localCheckpoint(eager=True)
                df.createOrReplaceTempView(name)
                self.timings_.append((name, time.perf_counter() - t0))
            result = {}
            for name in outputs:
                frame = spark.table(name).orderBy(*_ORDER.get(name, ["snap_id"])).toPandas()
                result[name] = frame.reset_index(drop=True)
            return result
        finally:
            for name in steps:
                spark.catalog.dropTempView(name)
            self.release()
