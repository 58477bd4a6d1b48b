"""Benchmark: the fairness audit's outcomes (`features.build.period_outcomes`, two SQL relations on four
tables) against the whole feature build on the same snapshots, side by side on a simulated organisation.

    .venv/bin/python bench/bench_outcomes.py [--reps 1500] [--periods 13] [--runs 3] [--as-of 2026-02-15]

The two are run alternately in this process (DuckDB limited to 2 threads), `--runs` times each, after
one warm-up of each; prints each run, the medians and their ratio, and checks that both give the same
labels and quota ratios.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def main() -> None:
    from bench_features import ensure_data, org_arguments

    ap = org_arguments(argparse.ArgumentParser(description=__doc__.splitlines()[0]))
    ap.add_argument("--as-of", default="2026-02-15")
    a = ap.parse_args()

    from repradar.cli import quiet_known_warnings

    quiet_known_warnings()
    from features.build import compute_features, period_outcomes
    from features.engine import DuckDBEngine
    from features.io import load_folder

    tables = load_folder(ensure_data(a.reps, a.periods, a.seed), validate=False)
    day = dt.date.fromisoformat(a.as_of)
    since = day - dt.timedelta(days=365)

    def lean():
        return period_outcomes(tables, day, since=since, engine=DuckDBEngine(threads=2))

    out = lean()
    end = tables.reps.set_index(tables.reps["rep_id"].astype(str))["end_date"]
    last = out["rep_id"].astype(str).map(end)
    snaps = out[["rep_id", "period_start", "period_end"]].assign(
        as_of=out["period_end"].where(last.isna() | (last >= out["period_end"]), last)
    )

    def full():
        return compute_features(tables, snaps, reference_day=day, engine=DuckDBEngine(threads=2)).frame

    f = full()
    same = (out["missed"].tolist() == f["missed"].tolist()) and bool(
        ((out["quota_vs_segment"] - f["quota_vs_segment"]).abs().fillna(0) < 1e-12).all()
    )
    print(f"{len(out)} rep-periods ending in the year before {day}; same labels and quota ratios: {same}")
    times: dict[str, list[float]] = {"period_outcomes": [], "full build": []}
    for i in range(a.runs):
        for name, fn in (("period_outcomes", lean), ("full build", full)):
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
            print(f"  run {i + 1} {name:16s} {times[name][-1]:7.2f} s", flush=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(
        f"median: period_outcomes {med['period_outcomes']:.2f} s, full build {med['full build']:.2f} s, "
        f"ratio {med['full build'] / med['period_outcomes']:.1f}x"
    )
    if not same:
        sys.exit(1)


if __name__ == "__main__":
    main()
