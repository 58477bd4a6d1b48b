"""Benchmark: the schema of the snapshot datasets a training run logs to MLflow.

    .venv/bin/python bench/bench_dataset_schema.py [--rows 141369] [--runs 3]

A frame shaped like the 1,500-rep x 13-quarter training set (the registry's features, random values
with a seventh of one column missing, plus the key columns), its schema inferred by MLflow
(`mlflow.types.utils._infer_schema`, which tests every value in Python) and by
`training.pipeline.snapshot_schema` (column-wise), alternately in each run. Prints both medians, their
ratio, and whether the schemas are equal.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def frame(rows: int, seed: int = 0) -> pd.DataFrame:
    from features.registry import feature_names

    rng = np.random.default_rng(seed)
    f = pd.DataFrame({name: rng.normal(size=rows) for name in feature_names()})
    f.iloc[::7, 0] = np.nan
    f["rep_id"] = pd.Series([f"R{i % 1500}" for i in range(rows)], dtype=object)
    f["segment"] = pd.Series(["SMB", "Mid-Market", "Enterprise"] * (rows // 3 + 1), dtype="string")[:rows]
    f["as_of"] = pd.Timestamp("2025-01-20")
    f["missed"] = rng.uniform(size=rows) > 0.75
    return f


def main() -> None:
    from mlflow.types.utils import _infer_schema

    from training.pipeline import snapshot_schema

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=141_369)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    f = frame(args.rows)
    times = {"mlflow": [], "column-wise": []}
    for _ in range(args.runs):
        for label, fn in (("mlflow", _infer_schema), ("column-wise", snapshot_schema)):
            t = time.perf_counter()
            schema = fn(f)
            times[label].append(time.perf_counter() - t)
            if label == "mlflow":
                theirs = schema
            else:
                ours = schema
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"{args.rows:,} rows x {f.shape[1]} columns, medians of {args.runs}:")
    for k, v in med.items():
        print(f"  {k:12s} {v:7.2f} s")
    print(f"  ratio {med['mlflow'] / med['column-wise']:.0f}x; schemas equal: {ours == theirs}")


if __name__ == "__main__":
    main()
