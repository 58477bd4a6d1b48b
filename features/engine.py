"""Runs the shared feature SQL (features/sql/*.sql) on DuckDB.

Each SQL file is one SELECT defining the relation named after the file; PIPELINE lists them in
dependency order. The same files are meant to run unchanged on Spark SQL (each becomes a temp
view); only this runner and `features.staging` are engine-specific.
"""

from __future__ import annotations

import re
import time
from functools import cache
from pathlib import Path

import pandas as pd

SQL_DIR = Path(__file__).parent / "sql"

# Relations in dependency order (each is features/sql/<name>.sql).
PIPELINE: tuple[str, ...] = (
    "deal_states",
    "deal_events",
    "deal_windows",
    "pipeline_asof",
    "stage_runs",
    "stage_windows",
    "period_history",
    "activity_windows",
    "metric_starts",
    "engagement_windows",
    "engagement_known",
    "engagement_unknown",
    "segment_windows",
    "quota_context",
    "snapshot_features",
    "feature_table",
    "labels",
)

DEFAULT_THREADS = 2


@cache
def sql_text(name: str) -> str:
    """The SQL of relation `name`, without a trailing semicolon."""
    return (SQL_DIR / f"{name}.sql").read_text().strip().rstrip(";")


def sql_files() -> list[Path]:
    return sorted(SQL_DIR.glob("*.sql"))


class DuckDBEngine:
    """Executes the pipeline in an in-memory DuckDB limited to `threads` threads."""

    def __init__(self, threads: int = DEFAULT_THREADS, memory_limit: str | None = None):
        self.threads = threads
        self.memory_limit = memory_limit
        self.timings_: list[tuple[str, float]] = []  # (step, wall seconds) of the last run

    def _connect(self):
        import duckdb

        con = duckdb.connect(":memory:")
        con.execute(f"SET threads = {int(self.threads)}")
        # Progress bars would flood the stderr of `train` and `score`.
        con.execute("SET enable_progress_bar = false")
        if self.memory_limit:
            con.execute(f"SET memory_limit = '{self.memory_limit}'")
        # Keep insertion order irrelevant: results are always sorted explicitly.
        con.execute("SET preserve_insertion_order = false")
        return con

    def run(
        self,
        staged: dict[str, pd.DataFrame],
        outputs: tuple[str, ...] = ("feature_table", "engagement_unknown", "labels"),
        steps: tuple[str, ...] = PIPELINE,
    ) -> dict[str, pd.DataFrame]:
        """Register the staged frames, materialise `steps` in order, return `outputs` as frames.

        Each intermediate table is dropped after the last step that reads it, to bound memory.
        """
        last_use = _last_use(steps)
        con = self._connect()
        try:
            for name, frame in staged.items():
                con.register(name, frame)
            self.timings_ = []
            for i, name in enumerate(steps):
                t0 = time.perf_counter()
                con.execute(f"CREATE TEMP TABLE {name} AS {sql_text(name)}")
                self.timings_.append((name, time.perf_counter() - t0))
                for done in [t for t, j in last_use.items() if j == i and t not in outputs]:
                    con.execute(f"DROP TABLE {done}")
            result = {}
            for name in outputs:
                order = {"deal_states": "opp_key, ord", "engagement_unknown": "snap_id, metric_name"}.get(
                    name, "snap_id"
                )
                result[name] = con.execute(f"SELECT * FROM {name} ORDER BY {order}").df()
            return result
        finally:
            con.close()


def _last_use(steps: tuple[str, ...]) -> dict[str, int]:
    """For each step's table, the index of the last step whose SQL reads it."""
    last = {}
    for i, name in enumerate(steps):
        last[name] = i
    for i, name in enumerate(steps):
        text = sql_text(name)
        for other in steps[:i]:
            if re.search(rf"\b{other}\b", text):
                last[other] = i
    return last
