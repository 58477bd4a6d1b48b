"""Runs the shared feature SQL (features/sql/*.sql) on Spark SQL, unchanged.

Same interface as `features.engine.DuckDBEngine` (`run(staged, outputs, steps)`, `timings_`), so
`features.build` takes either through `engine=`. Each staged frame becomes a temp view, each SQL
file a cached temp view named after it (materialised in PIPELINE order, so each step's time is its
own), and the outputs come back as pandas frames sorted like DuckDB's.

The session is `SparkSession.builder.getOrCreate()`: an existing session (spark-submit, Databricks,
a test fixture) is used as is; otherwise a local one with master `local[2]` unless SPARK_MASTER /
spark-submit configuration says otherwise.
"""

from __future__ import annotations

import os
import time

import pandas as pd

from features.engine import PIPELINE, _last_use, sql_text

DEFAULT_MASTER = "local[2]"

# Output sort orders, as DuckDBEngine returns them.
_ORDER = {"deal_states": ["opp_key", "ord"], "engagement_unknown": ["snap_id", "metric_name"]}


def spark_session(master: str | None = None, app_name: str = "repradar"):
    """The active Spark session, or a new one (master: argument, else SPARK_MASTER, else local[2])."""
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    builder = SparkSession.builder.appName(app_name)
    # spark-submit sets spark.master in the driver's conf; only fall back to local[2] without one.
    from pyspark import SparkConf

    conf = SparkConf()
    if master or not conf.contains("spark.master"):
        builder = builder.master(master or os.environ.get("SPARK_MASTER") or DEFAULT_MASTER)
    if not conf.contains("spark.sql.shuffle.partitions"):
        # The default 200 shuffle partitions cost more than they bring on small inputs.
        builder = builder.config("spark.sql.shuffle.partitions", "8")
    builder = builder.config("spark.sql.session.timeZone", "UTC")
    builder = builder.config("spark.sql.execution.arrow.pyspark.enabled", "true")
    return builder.getOrCreate()


def _arrow(frame: pd.DataFrame):
    """A staged frame as an Arrow table Spark accepts (plain strings; typed empty columns)."""
    import pyarrow as pa

    table = pa.Table.from_pandas(frame, preserve_index=False)
    fields = []
    for f in table.schema:
        t = f.type
        if pa.types.is_large_string(t):
            t = pa.string()
        elif pa.types.is_null(t):
            # An empty object column (an absent optional table): integers are what the SQL expects.
            t = pa.int32()
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
            table = _arrow(frame)
            try:
                df = self.spark.createDataFrame(table)
            except TypeError:  # an older PySpark without pyarrow.Table input
                df = self.spark.createDataFrame(table.to_pandas())
            # Cached, the view is an in-memory relation: a bare local relation would be folded by
            # the optimizer and evaluated row by row on the driver (very slow, heap-hungry).
            df = df.cache()
            df.count()
            self._staged.append(df)
            df.createOrReplaceTempView(name)

    def run(
        self,
        staged: dict[str, pd.DataFrame] | None,
        outputs: tuple[str, ...] = ("feature_table", "engagement_unknown", "labels"),
        steps: tuple[str, ...] = PIPELINE,
    ) -> dict[str, pd.DataFrame]:
        """Register the staged frames (None: the stg_* views already exist, e.g. read from Parquet),
        materialise `steps` in order as cached views, return `outputs` as pandas frames."""
        spark = self.spark
        if staged is not None:
            self.register(staged)
        last_use = _last_use(steps)
        cached = {}
        self.timings_ = []
        try:
            for i, name in enumerate(steps):
                t0 = time.perf_counter()
                df = spark.sql(sql_text(name)).cache()
                df.count()  # materialise now, so later steps read the cache and timings are per step
                df.createOrReplaceTempView(name)
                cached[name] = df
                self.timings_.append((name, time.perf_counter() - t0))
                for done in [t for t, j in last_use.items() if j == i and t not in outputs]:
                    cached.pop(done).unpersist()
                    spark.catalog.dropTempView(done)
            result = {}
            for name in outputs:
                frame = spark.table(name).orderBy(*_ORDER.get(name, ["snap_id"])).toPandas()
                result[name] = frame.reset_index(drop=True)
            return result
        finally:
            for df in list(cached.values()) + self._staged:
                df.unpersist()
            self._staged = []
