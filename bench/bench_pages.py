"""Benchmark of the dashboard's pages (not a test): render time of each page on a synthetic 500-rep
organisation with four weekly batches of scores; the target is < 300 ms per page.

    .venv/bin/python bench/bench_pages.py [--reps 500] [--rounds 20]

In-process through Starlette's TestClient on a fresh SQLite database (no model needed: pages read
stored batch scores). Every rep page view writes its audit events, as in production.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

GROUPS = ["conversion", "pipeline", "activity", "wellbeing", "crm_hygiene", "coaching"]
IDS = ["skills_training", "pipeline_generation", "regular_checkins", "wellbeing_support", "crm_adoption"]


class Source:
    def current_version(self):
        return "1"

    def load(self):
        return SimpleNamespace(name="repradar-risk", version="1", pyfunc=None)


def org(n: int, rng: random.Random):
    n_mgr = max(1, n // 10)
    reps = [
        {
            "rep_id": f"R{i:04d}",
            "manager_id": f"M{i % n_mgr:03d}",
            "name": f"Rep {i}",
            "team": f"T{i % n_mgr:03d}",
            "region": ["EU", "US", "APAC", "LATAM"][i % 4],
            "segment": ["SMB", "MM", "ENT"][i % 3],
        }
        for i in range(n)
    ]
    batches = []
    base = {r["rep_id"]: rng.random() for r in reps}
    for week in range(4):
        as_of = dt.date(2024, 1, 8) + dt.timedelta(days=7 * week)
        rows = []
        for k, r in enumerate(sorted(reps, key=lambda r: -base[r["rep_id"]])):
            risk = min(0.99, max(0.01, base[r["rep_id"]] + rng.uniform(-0.05, 0.05)))
            rows.append(
                {
                    "rep_id": r["rep_id"],
                    "manager_id": r["manager_id"],
                    "period_start": dt.date(2024, 1, 1),
                    "period_end": dt.date(2024, 3, 31),
                    "as_of": as_of,
                    "risk": risk,
                    "risk_band": "high" if risk >= 0.6 else "medium" if risk >= 0.3 else "low",
                    "rank": k + 1,
                    "attainment_to_date": rng.random() * 0.5,
                    "drivers": [
                        {"feature": f"f_{g}", "group": g, "value": rng.random(), "contribution": rng.random()}
                        for g in rng.sample(GROUPS, 4)
                    ],
                    "interventions": rng.sample(IDS, 2),
                    "model_version": "1",
                }
            )
        batches.append(rows)
    return reps, batches


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=500)
    ap.add_argument("--rounds", type=int, default=20)
    args = ap.parse_args()

    from fastapi.testclient import TestClient

    from repradar.settings import Settings
    from serving import store
    from serving.app import create_app
    from serving.auth import add_user

    rng = random.Random(0)
    reps, batches = org(args.reps, rng)
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(home=Path(tmp), database_url=f"sqlite:///{tmp}/bench.db")
        app = create_app(settings, model_source=Source())
        with TestClient(app) as c:
            with app.state.sessions.begin() as s:
                tokens = {
                    "hr": add_user(s, "hr", ["hr"])[1],
                    "mgr": add_user(s, "mgr", ["manager"], "M001")[1],
                }
                store.upsert_reps(s, reps)
                for rows in batches:
                    store.import_scores(s, rows)
            pages = [
                ("mgr", "/team"),
                ("mgr", "/reps/R0001"),
                ("hr", "/team"),
                ("hr", "/org"),
                ("hr", "/reps/R0002"),
            ]
            print(f"{args.reps} reps, {args.rounds} rounds; ms per page (p50 / max), target < 300 ms")
            for user, path in pages:
                c.cookies.clear()
                c.post("/login", data={"token": tokens[user]})
                c.get(path)  # warm-up (templates compiled, chart cached)
                times = []
                for _ in range(args.rounds):
                    t0 = time.perf_counter()
                    r = c.get(path)
                    times.append((time.perf_counter() - t0) * 1000)
                    assert r.status_code == 200, (path, r.status_code)
                p50 = statistics.median(times)
                flag = "ok" if max(times) < 300 else "SLOW"
                print(f"  {user:4s} {path:14s} {p50:7.1f} / {max(times):7.1f}  {flag}")


if __name__ == "__main__":
    main()
