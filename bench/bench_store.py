"""Benchmark: storing a batch of scores (`serving.store.import_scores`) week by week through a quarter.

    .venv/bin/python bench/bench_store.py [--reps 1500] [--weeks 13] [--runs 3] [--postgresql]

Each run stores one quarter's weekly batches of `--reps` rows in a fresh database (SQLite; with
`--postgresql`, also a throw-away PostgreSQL server, started as the tests start it), then re-scores
the last day (a newly promoted model) and backfills a day between two stored ones. The rows are
shaped like a real scores file's (five drivers and three driver groups with both languages' texts,
three interventions with reasons, a recourse plan): about 7 kB each. Prints each import, the medians
per week over the runs, and the ratio of the last weeks' imports to the first's: import_scores reads
the period's stored days to compute `risk_change`, so its cost grows with the days already stored.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PERIOD = (dt.date(2026, 1, 1), dt.date(2026, 3, 31))
_TEXT = "Win rate over the last 180 days is 18%, against 31% for Mid-Market peers and 27% overall"
_ZH = "过去180天的赢单率为18%，中端市场同类销售为31%，全公司为27%"


def batch(reps: int, as_of: dt.date, rng: np.random.Generator, version: str = "1") -> list[dict]:
    """One day's scores of `reps` reps, ranked, with payloads the size of a real scores file's."""
    risk = rng.uniform(0.01, 0.99, reps)
    order = np.argsort(-risk)
    rank = np.empty(reps, dtype=int)
    rank[order] = np.arange(1, reps + 1)
    rows = []
    for i in range(reps):
        r = float(risk[i])
        drivers = [
            {
                "feature": f"feature_{k}",
                "group": f"group_{k}",
                "value": 0.18 + k,
                "contribution": 0.7 - 0.1 * k,
                "peer_value": 0.31,
                "text_en": _TEXT,
                "text_zh": _ZH,
            }
            for k in range(5)
        ]
        rows.append(
            {
                "rep_id": f"R{i:05d}",
                "manager_id": f"M{i // 10:04d}",
                "period_start": PERIOD[0],
                "period_end": PERIOD[1],
                "as_of": as_of,
                "risk": r,
                "risk_band": "high" if r >= 0.5 else "medium" if r >= 0.25 else "low",
                "rank": int(rank[i]),
                "attainment_to_date": 0.2,
                "drivers": drivers,
                "interventions": ["skills_training", "regular_checkins", "mentoring"],
                "model_version": version,
                "driver_groups": [dict(d, contribution=0.5) for d in drivers[:3]],
                "intervention_reasons": [
                    {"id": iid, "reason_en": _TEXT, "reason_zh": _ZH}
                    for iid in ("skills_training", "regular_checkins", "mentoring")
                ],
                "recourse": {
                    "feasible": True,
                    "changes": [{"feature": "meetings_per_week_28d", "from": 2.0, "to": 5.0}],
                    "risk_before": r,
                    "risk_after": 0.45,
                    "text_en": "+3 meetings a week and +$40k of new pipeline this month",
                    "text_zh": "本月每周多3次会议，新增4万美元商机",
                },
                "segment": "Mid-Market",
                "team": f"Team {i // 10}",
            }
        )
    return rows


def quarter(url: str, reps: int, weeks: int, seed: int) -> dict[str, float]:
    """Seconds per import (`week N`, then `rescore last day`, `backfill`) into a fresh database."""
    from repradar.settings import Settings
    from serving import store
    from serving.db.engine import make_engine, make_sessionmaker
    from serving.db.migrate import upgrade

    engine = make_engine(Settings(database_url=url))
    upgrade(engine)
    sessions = make_sessionmaker(engine)
    rng = np.random.default_rng(seed)
    days = [PERIOD[0] + dt.timedelta(days=7 * w + 6) for w in range(weeks)]
    plan = [(f"week {w + 1}", d, "1") for w, d in enumerate(days)]
    plan += [
        ("rescore last day", days[-1], "2"),
        ("backfill", days[len(days) // 2] - dt.timedelta(days=3), "2"),
    ]
    out = {}
    for label, day, version in plan:
        rows = batch(reps, day, rng, version)
        t = time.perf_counter()
        with sessions.begin() as s:
            store.import_scores(s, rows)
        out[label] = time.perf_counter() - t
        print(f"    {label:17s} {out[label]:6.2f} s", flush=True)
    engine.dispose()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=1500)
    ap.add_argument("--weeks", type=int, default=13)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--postgresql", action="store_true", help="also time a throw-away PostgreSQL server")
    a = ap.parse_args()

    from repradar.cli import quiet_known_warnings

    quiet_known_warnings()
    kinds = ["sqlite"] + (["postgresql"] if a.postgresql else [])
    server = None
    if a.postgresql:
        from tests.serving import pg

        server = pg.start_server()
    times: dict[str, dict[str, list[float]]] = {k: {} for k in kinds}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            # the kinds alternate within each run, so both see the same machine load
            for run in range(a.runs):
                for kind in kinds:
                    if kind == "sqlite":
                        url = f"sqlite:///{Path(tmp) / f'run{run}.db'}"
                    else:
                        url = server.url(server.create_db())
                    print(f"run {run + 1}, {kind}: {a.reps} reps, {a.weeks} weekly batches", flush=True)
                    for label, sec in quarter(url, a.reps, a.weeks, a.seed + run).items():
                        times[kind].setdefault(label, []).append(sec)
    finally:
        if server is not None:
            server.stop()
    for kind, by_label in times.items():
        med = {k: statistics.median(v) for k, v in by_label.items()}
        first = statistics.median([med["week 1"], med["week 2"]])
        last = statistics.median([med[f"week {a.weeks - 1}"], med[f"week {a.weeks}"]])
        print(f"{kind} medians of {a.runs}: " + ", ".join(f"{k} {v:.2f} s" for k, v in med.items()))
        print(
            f"{kind}: weeks 1-2 {first:.2f} s, weeks {a.weeks - 1}-{a.weeks} {last:.2f} s "
            f"(ratio {last / first:.2f}x); re-scoring the last day {med['rescore last day']:.2f} s, "
            f"a backfill {med['backfill']:.2f} s"
        )


if __name__ == "__main__":
    main()
