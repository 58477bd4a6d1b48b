"""Benchmark of the HTTP service (not a test): latency (p50, p99) and throughput at 32 concurrent clients
of the rep endpoint and the early-warning list, beside a bare FastAPI endpoint served the same way,
in the same run.

    .venv/bin/python bench/bench_api.py [--reps 1500] [--seconds 10] [--clients 32] [--workers 1]

The service runs as `repradar serve` would (uvicorn, uvloop, httptools) in a subprocess on a fresh
SQLite database under a temporary REPRADAR_HOME, filled with a synthetic org and four weekly batches
of scores (reads serve stored batch scores; no model is needed). Every rep read writes its audit
event, as in production. The load generator is a minimal keep-alive HTTP/1.1 client in this process;
on a 2-core machine it competes with the server for CPU, so the figures are a floor, not a ceiling.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def build_org(n_reps: int, seed: int = 0):
    """Reps under first-line managers (10 each) under directors (5 managers each): a 3-level tree."""
    rng = random.Random(seed)
    reps, managers = [], max(1, n_reps // 10)
    for m in range(managers):
        reps.append(
            {"rep_id": f"M{m:04d}", "manager_id": f"D{m // 5:03d}", "name": f"Manager {m}", "team": f"T{m}"}
        )
    for r in range(n_reps):
        reps.append(
            {
                "rep_id": f"R{r:05d}",
                "manager_id": f"M{r % managers:04d}",
                "name": f"Rep {r}",
                "team": f"T{r % managers}",
                "region": rng.choice(["EU", "US", "APAC"]),
                "segment": rng.choice(["SMB", "MM", "ENT"]),
            }
        )
    return reps


def score_rows(reps, as_of: dt.date, rng: random.Random):
    rows = []
    risks = {r["rep_id"]: rng.random() for r in reps}
    ordered = sorted(risks, key=lambda k: -risks[k])
    rank = {k: i + 1 for i, k in enumerate(ordered)}
    by_id = {r["rep_id"]: r for r in reps}
    for rep_id, risk in risks.items():
        rows.append(
            {
                "rep_id": rep_id,
                "manager_id": by_id[rep_id]["manager_id"],
                "period_start": dt.date(2024, 1, 1),
                "period_end": dt.date(2024, 3, 31),
                "as_of": as_of,
                "risk": risk,
                "risk_band": "high" if risk >= 0.6 else "medium" if risk >= 0.3 else "low",
                "rank": rank[rep_id],
                "attainment_to_date": rng.random(),
                "drivers": [
                    {
                        "feature": f"f{k}",
                        "group": f"g{k}",
                        "value": rng.random(),
                        "contribution": 1.0 / (k + 1),
                    }
                    for k in range(5)
                ],
                "interventions": ["skills_training", "regular_checkins"],
                "model_version": "1",
            }
        )
    return rows


def prepare(home: Path, n_reps: int) -> dict:
    from repradar.settings import Settings
    from serving import store
    from serving.auth import add_user
    from serving.db.engine import make_engine, make_sessionmaker
    from serving.db.migrate import upgrade

    settings = Settings(home=home)
    engine = make_engine(settings)
    upgrade(engine)
    sessions = make_sessionmaker(engine)
    reps = build_org(n_reps)
    rng = random.Random(1)
    with sessions.begin() as s:
        store.upsert_reps(s, reps)
        for week in range(4):
            store.import_scores(s, score_rows(reps, dt.date(2024, 1, 8) + dt.timedelta(weeks=week), rng))
        # a director: 5 managers, ~50 reps; the list and the reads resolve this subtree
        token = add_user(s, "director", ["manager"], "D000")[1]
    engine.dispose()
    subtree = [r["rep_id"] for r in reps if r["manager_id"] in {f"M{m:04d}" for m in range(5)}]
    return {"token": token, "reps": subtree}


BARE_APP = textwrap.dedent(
    """
    import sys, uvicorn
    from fastapi import FastAPI
    app = FastAPI()

    @app.get("/bare")
    def bare():
        return {"status": "ok"}

    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), loop="uvloop", http="httptools",
                access_log=False, log_level="warning")
    """
)


def start(cmd: list[str], env: dict, port: int) -> subprocess.Popen:
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT)
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(proc.stderr.read().decode()) from None
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"server on port {port} did not start")


async def _client(port, paths, auth, stop_at, lat, statuses):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    i = random.randrange(len(paths))
    extra = f"Authorization: Bearer {auth}\r\n" if auth else ""
    while time.perf_counter() < stop_at:
        path = paths[i % len(paths)]
        i += 1
        t = time.perf_counter()
        writer.write(f"GET {path} HTTP/1.1\r\nHost: bench\r\n{extra}\r\n".encode())
        status = int((await reader.readline()).split()[1])
        length = 0
        while True:
            line = await reader.readline()
            if line in (b"\r\n", b""):
                break
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        await reader.readexactly(length)
        lat.append(time.perf_counter() - t)
        statuses[status] = statuses.get(status, 0) + 1
    writer.close()


async def load(port, paths, auth, clients, seconds, warmup=2.0):
    for _phase, dur in (("warmup", warmup), ("measure", seconds)):
        lat, statuses = [], {}
        stop_at = time.perf_counter() + dur
        t0 = time.perf_counter()
        await asyncio.gather(*[_client(port, paths, auth, stop_at, lat, statuses) for _ in range(clients)])
        elapsed = time.perf_counter() - t0
    lat.sort()
    return {
        "requests": len(lat),
        "rps": len(lat) / elapsed,
        "p50_ms": 1000 * statistics.median(lat),
        "p99_ms": 1000 * lat[int(0.99 * (len(lat) - 1))],
        "statuses": statuses,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=1500)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "bench_api.json")
    args = ap.parse_args()

    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    tmp = Path(tempfile.mkdtemp(prefix="repradar-bench-"))
    home = tmp / "home"
    fixture = prepare(home, args.reps)
    env = {**os.environ, "REPRADAR_HOME": str(home), "REPRADAR_API_WORKERS": str(args.workers)}
    # generous limits: the benchmark measures the service, not its overload answer
    env.update({"REPRADAR_MAX_IN_FLIGHT": "256", "REPRADAR_MAX_WAITING": "1024"})
    api_port, bare_port = free_port(), free_port()
    serve = [
        sys.executable,
        "-c",
        f"from serving.server import run; from repradar.settings import Settings; run(Settings(), '127.0.0.1', {api_port})",
    ]
    bare = [sys.executable, "-c", BARE_APP, str(bare_port)]
    procs = [start(serve, env, api_port), start(bare, env, bare_port)]
    results = {}
    try:
        cases = [
            ("bare FastAPI GET /bare", bare_port, ["/bare"], None),
            (
                "GET /api/v1/reps/{rep_id}",
                api_port,
                [f"/api/v1/reps/{r}" for r in fixture["reps"]],
                fixture["token"],
            ),
            ("GET /api/v1/early-warning", api_port, ["/api/v1/early-warning"], fixture["token"]),
        ]
        for name, port, paths, auth in cases:
            results[name] = asyncio.run(load(port, paths, auth, args.clients, args.seconds))
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(30)
    meta = {
        "date": dt.date.today().isoformat(),
        "cpus": os.cpu_count(),
        "reps": args.reps,
        "clients": args.clients,
        "seconds": args.seconds,
        "workers": args.workers,
        "load_average_at_end": os.getloadavg()[0],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"meta": meta, "results": results}, indent=2))
    print(
        f"{args.clients} concurrent keep-alive clients, {args.seconds:.0f} s each, {args.reps} reps, "
        f"{args.workers} server process(es), {meta['cpus']} CPUs"
    )
    print("| endpoint | requests/s | p50 ms | p99 ms | statuses |")
    print("|---|---:|---:|---:|---|")
    for name, r in results.items():
        print(f"| {name} | {r['rps']:.0f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['statuses']} |")


if __name__ == "__main__":
    main()
