"""Benchmark: the full training-set build on a simulated 1,500 reps x 13 quarters (~250k weekly snapshots).

    .venv/bin/python bench/bench_features.py [--reps 1500] [--periods 13] [--runs 3]

The organisation is simulated once and cached under bench/data/ (git-ignored). Each run is a fresh
child process (DuckDB limited to 2 threads) that loads the folder, builds the training set and
reports wall times and its peak resident memory (getrusage maxrss, which covers DuckDB's native
allocations that tracemalloc cannot see). Prints each run and the medians. Target: <= 30 s and
<= 6 GiB on two cores.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "bench" / "data"


def org_arguments(ap: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The simulated organisation (`ensure_data`) and the timed runs: the options every feature bench takes."""
    ap.add_argument("--reps", type=int, default=1500)
    ap.add_argument("--periods", type=int, default=13)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--runs", type=int, default=3)
    return ap


def _simulated_alike(folder: Path, config) -> bool:
    """Whether `folder` holds a finished simulation of `config`'s organisation (its truth/summary.json, which
    the simulator writes last, names the same settings but for the oracle's, which changes no table)."""
    from dataclasses import asdict

    try:
        written = json.loads((folder / "truth" / "summary.json").read_text())["config"]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    wanted = {k: v for k, v in asdict(config).items() if k != "oracle_sims"}
    return {k: written.get(k) for k in wanted} == json.loads(json.dumps(wanted, default=str))


def ensure_data(reps: int, periods: int, seed: int) -> Path:
    """Simulate the organisation once; later runs reuse the folder."""
    DATA.mkdir(parents=True, exist_ok=True)
    ignore = DATA / ".gitignore"
    if not ignore.exists():
        ignore.write_text("# generated benchmark data: never committed\n*\n")
    folder = DATA / f"sim-{reps}x{periods}-s{seed}"
    done = folder / ".complete"
    if done.exists():
        return folder
    sys.path.insert(0, str(ROOT))
    from simulator.simulate import SimConfig, simulate

    config = SimConfig(n_reps=reps, n_periods=periods, seed=seed, fmt="parquet", oracle_sims=0)
    if _simulated_alike(folder, config):
        # docs/playbook.md has `repradar simulate` write this very folder for the cause-match figures
        # (with the oracle, which draws from a stream of its own): the same data, kept as it is
        done.write_text((folder / "truth" / "summary.json").read_text())
        return folder
    print(f"simulating {reps} reps x {periods} periods into {folder} (once) ...", flush=True)
    t = time.perf_counter()
    summary = simulate(config, folder)
    print(f"  simulated in {time.perf_counter() - t:.0f} s: {json.dumps(summary)}", flush=True)
    done.write_text(json.dumps(summary))
    return folder


def child(folder: Path, validate: bool) -> None:
    """One measured run; prints a JSON line."""
    import resource

    sys.path.insert(0, str(ROOT))
    t0 = time.perf_counter()
    from features.build import build_training_set
    from features.engine import DuckDBEngine
    from features.io import load_folder

    t1 = time.perf_counter()
    tables = load_folder(folder, validate=validate)
    t2 = time.perf_counter()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    rss_loaded, cpu_loaded = usage.ru_maxrss, usage.ru_utime + usage.ru_stime
    engine = DuckDBEngine(threads=2)
    fs = build_training_set(tables, engine=engine)
    t3 = time.perf_counter()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    rss = usage.ru_maxrss  # KiB on Linux
    build_cpu = usage.ru_utime + usage.ru_stime - cpu_loaded
    with open("/proc/loadavg") as f:
        load = float(f.read().split()[0])
    sizes = {name: (0 if df is None else len(df)) for name, df in tables.items()}
    print(
        json.dumps(
            {
                "import_s": t1 - t0,
                "load_s": t2 - t1,
                "build_s": t3 - t2,
                "build_cpu_s": build_cpu,
                "loadavg_after": load,
                "rows": len(fs.frame),
                "features": len(fs.feature_names),
                "maxrss_loaded_gib": rss_loaded / 2**20,
                "maxrss_gib": rss / 2**20,
                "sizes": sizes,
                "steps": engine.timings_,
                "summary": fs.summary_lines()[:6],
            }
        )
    )


def main() -> None:
    ap = org_arguments(argparse.ArgumentParser(description=__doc__.splitlines()[0]))
    ap.add_argument("--validate", action="store_true", help="include contract validation in load time")
    ap.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.validate)
        return

    folder = ensure_data(args.reps, args.periods, args.seed)
    results = []
    for i in range(args.runs):
        cmd = [sys.executable, __file__, "--child", str(folder)] + (["--validate"] if args.validate else [])
        env = dict(os.environ, PYTHONHASHSEED="0")
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
        if proc.returncode != 0:
            sys.stderr.write(proc.stderr)
            raise SystemExit(f"run {i + 1} failed")
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        results.append(r)
        print(
            f"run {i + 1}: build {r['build_s']:.1f} s (CPU {r['build_cpu_s']:.1f} s, load average after "
            f"{r['loadavg_after']:.1f}), folder load {r['load_s']:.1f} s, "
            f"peak RSS {r['maxrss_gib']:.2f} GiB (after load {r['maxrss_loaded_gib']:.2f} GiB), "
            f"{r['rows']} rows x {r['features']} features",
            flush=True,
        )
    med = {
        k: statistics.median(r[k] for r in results)
        for k in ("build_s", "build_cpu_s", "load_s", "maxrss_gib")
    }
    print(f"input rows: {json.dumps(results[0]['sizes'])}")
    steps = {
        name: statistics.median(dict(r["steps"])[name] for r in results) for name, _ in results[0]["steps"]
    }
    print("SQL steps (median wall s): " + ", ".join(f"{k} {v:.1f}" for k, v in steps.items()))
    print(
        f"median of {len(results)}: build {med['build_s']:.1f} s (target <= 30 s; CPU {med['build_cpu_s']:.1f} s), "
        f"folder load {med['load_s']:.1f} s, peak RSS {med['maxrss_gib']:.2f} GiB (target <= 6 GiB)"
    )
    for line in results[0]["summary"]:
        print("  " + line)


if __name__ == "__main__":
    main()
