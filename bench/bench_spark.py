"""Benchmark: the training-set build of the 1,500-rep organisation on DuckDB and on Spark local[2].

    .venv/bin/python bench/bench_spark.py [--reps 1500] [--periods 13] [--runs 3] [--master local[2]]
        [--engines duckdb,spark,spark-native] [--load-only]

Engines: `duckdb`; `spark` (tables read and checked in pandas on the driver, staged and built on
Spark); `spark-native` (read, checked and staged on Spark too: features.spark_io / spark_staging).
`--load-only` stops after reading and checking the tables.

Reuses the organisation cached by bench/bench_features.py under bench/data/ (simulated once if
absent). Each run is a fresh child process (a cold JVM for Spark, as a batch job would have);
prints each run and the median wall time per engine, side by side.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))


def child(folder: Path, engine: str, master: str, spark_conf: dict, load_only: bool) -> None:
    import resource

    from features.build import build_training_set
    from features.io import load_folder

    t0 = time.perf_counter()
    if engine.startswith("spark"):
        from features.spark_engine import SparkEngine, spark_session

        # RepRadar's own local session (features.spark_engine.LOCAL_CONF), with a bigger driver.
        spark = spark_session(
            master, app_name="repradar-bench", conf={"spark.driver.memory": "6g", **spark_conf}
        )
        eng = SparkEngine(spark)
    else:
        from features.engine import DuckDBEngine

        eng = DuckDBEngine(threads=2)
    t1 = time.perf_counter()
    if engine == "spark-native":
        from features.spark_io import load_spark_tables

        tables = load_spark_tables(spark, str(folder))
    else:
        tables = load_folder(folder)
    t2 = time.perf_counter()
    rows = None
    if not load_only:
        rows = len(build_training_set(tables, engine=eng).frame)
    t3 = time.perf_counter()
    print(
        json.dumps(
            {
                "engine": engine,
                "rows": rows,
                "session_s": t1 - t0,
                "load_s": t2 - t1,
                "build_s": t3 - t2,
                "steps": {k: round(v, 2) for k, v in eng.timings_},
                "peak_rss_mib_self": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            }
        ),
        flush=True,
    )


def main() -> None:
    from bench_features import org_arguments

    ap = org_arguments(argparse.ArgumentParser())
    ap.add_argument("--master", default="local[2]")
    ap.add_argument("--engines", default="duckdb,spark")
    ap.add_argument(
        "--spark-conf",
        default="{}",
        help='JSON of Spark settings, e.g. {"spark.sql.codegen.wholeStage": "true"}',
    )
    ap.add_argument("--load-only", action="store_true", help="only read and check the tables")
    ap.add_argument("--child", nargs=2, metavar=("FOLDER", "ENGINE"))
    args = ap.parse_args()
    if args.child:
        child(Path(args.child[0]), args.child[1], args.master, json.loads(args.spark_conf), args.load_only)
        return
    from bench_features import ensure_data

    folder = ensure_data(args.reps, args.periods, args.seed)
    results: dict[str, list[float]] = {}
    # Engines alternate within each round, so a noisy spell on the machine hits both alike.
    for i in range(args.runs):
        for engine in args.engines.split(","):
            cmd = [sys.executable, __file__, "--child", str(folder), engine, "--master", args.master]
            cmd += ["--spark-conf", args.spark_conf] + (["--load-only"] if args.load_only else [])
            out = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=ROOT).stdout
            rec = json.loads(out.strip().splitlines()[-1])
            print(f"{engine} run {i + 1}: {json.dumps(rec)}", flush=True)
            results.setdefault(engine, []).append(rec["load_s" if args.load_only else "build_s"])
    what = "load + check" if args.load_only else "build"
    print(f"\nengine         median {what} (s)   runs")
    for engine, times in results.items():
        print(f"{engine:14} {statistics.median(times):16.1f}   {', '.join(f'{t:.1f}' for t in times)}")
    for engine in results:
        if engine != "duckdb" and "duckdb" in results:
            ratio = statistics.median(results[engine]) / statistics.median(results["duckdb"])
            print(f"{engine} / duckdb: {ratio:.1f}x")


if __name__ == "__main__":
    main()
