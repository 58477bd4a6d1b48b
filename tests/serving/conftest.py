"""Fixtures of the service tests: a real SQLite file and a real PostgreSQL server, a small org with
scores inserted directly, and a user of every role."""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
from dataclasses import dataclass
from types import SimpleNamespace

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

from repradar.settings import Settings
from serving import store
from serving.app import create_app
from serving.auth import add_user

from . import pg


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(scope="session")
def pg_server():
    try:
        server = pg.start_server()
    except Exception as exc:
        if _in_ci():
            pytest.fail(f"PostgreSQL could not be started in CI: {exc}")
        pytest.skip(f"no PostgreSQL server could be started here: {exc}")
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """A fresh, empty database of each kind."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'service.db'}"
        return
    server = request.getfixturevalue("pg_server")
    name = server.create_db()
    yield server.url(name)
    server.drop_db(name)


class StubSource:
    """A model source without MLflow: the version can be moved by the test."""

    def __init__(self, version: str | None = "1"):
        self.version = version

    def current_version(self):
        return self.version

    def load(self):
        return SimpleNamespace(name="repradar-risk", version=self.version, pyfunc=None)


def make_settings(tmp_path, db_url, **kw) -> Settings:
    base = dict(home=tmp_path / "home", database_url=db_url, model_poll_s=0.2, job_heartbeat_s=0.2)
    base.update(kw)
    return Settings(**base)


# The org: M1 heads R1, R2 and M2 (a rep who manages R3, R4); M9 heads R9 (another subtree).
REPS = [
    {"rep_id": "R1", "manager_id": "M1", "name": "Ada One", "team": "T1", "region": "EU", "segment": "SMB"},
    {"rep_id": "R2", "manager_id": "M1", "name": "Bo Two", "team": "T1", "region": "EU", "segment": "SMB"},
    {"rep_id": "M2", "manager_id": "M1", "name": "Cy Mgr", "team": "T2", "region": "EU", "segment": "MM"},
    {"rep_id": "R3", "manager_id": "M2", "name": "Di Three", "team": "T2", "region": "EU", "segment": "MM"},
    {"rep_id": "R4", "manager_id": "M2", "name": "Ed Four", "team": "T2", "region": "EU", "segment": "MM"},
    {"rep_id": "R9", "manager_id": "M9", "name": "Zed Nine", "team": "T9", "region": "US", "segment": "ENT"},
]
RISK = {"R1": 0.81, "R2": 0.35, "M2": 0.12, "R3": 0.66, "R4": 0.05, "R9": 0.93}
SUBTREE = {"M1": {"R1", "R2", "M2", "R3", "R4"}, "M2": {"R3", "R4"}, "M9": {"R9"}}
NAMES = {r["rep_id"]: r["name"] for r in REPS}


def band(risk: float) -> str:
    return "high" if risk >= 0.6 else "medium" if risk >= 0.3 else "low"


def score_rows(as_of: dt.date, version: str = "1", shift: float = 0.0) -> list[dict]:
    rows = []
    ordered = sorted(RISK, key=lambda r: -RISK[r])
    for rank, rep_id in enumerate(ordered, 1):
        risk = min(0.99, max(0.01, RISK[rep_id] + shift))
        manager = next(r["manager_id"] for r in REPS if r["rep_id"] == rep_id)
        rows.append(
            {
                "rep_id": rep_id,
                "manager_id": manager,
                "period_start": dt.date(2024, 1, 1),
                "period_end": dt.date(2024, 3, 31),
                "as_of": as_of,
                "risk": risk,
                "risk_band": band(risk),
                "rank": rank,
                "attainment_to_date": 0.2,
                "drivers": [
                    {"feature": "win_rate_180d", "group": "win_rate", "value": 0.18, "contribution": 0.7},
                    {"feature": "calls_4w", "group": "activity", "value": 12.0, "contribution": 0.2},
                ],
                "interventions": ["skills_training", "regular_checkins"],
                "model_version": version,
                "recourse": {
                    "feasible": True,
                    "changes": [],
                    "risk_before": risk,
                    "risk_after": 0.5,
                    "text_en": "+3 meetings a week",
                    "text_zh": "每周多3次会议",
                },
            }
        )
    return rows


def log_entries(n: int, reps: list[str] | None = None) -> list[dict]:
    """`n` intervention log rows over `reps` (default: the org's), starts spread over 2024 with ties (so
    that the order by start then id matters), every third ended, some with a comma or quotes in the
    note: rows as the service stores them, for exports of some size without n requests."""
    reps = reps or [r["rep_id"] for r in REPS]
    kinds = ["mentoring", "skills_training", "regular_checkins", "recognition"]
    rows = []
    for i in range(n):
        start = dt.date(2024, 1, 1) + dt.timedelta(days=(i * 7) % 360)
        rows.append(
            {
                "rep_id": reps[i % len(reps)],
                "intervention": kinds[i % len(kinds)],
                "started_on": start,
                "ended_on": start + dt.timedelta(days=30) if i % 3 == 0 else None,
                "note": f'entry {i}, "as agreed"' if i % 5 == 0 else None,
                "recorded_by": "hr",
                "model_version": "1",
                "risk_at_record": RISK.get(reps[i % len(reps)]),
            }
        )
    return rows


def audit_events(n: int) -> list[dict]:
    """`n` audit events as the service writes them, two a minute from 2024-01-01 (ties in time, so that
    the order by id matters), by the users of every role over the org's reps, some holding what a caller
    typed (a formula's start, a comma, quotes, a line break, no resource): rows for exports of some size
    without n requests."""
    actions = ["rep.read", "early_warning.read", "intervention.create", "job.create"]
    users, reps = list(ROLE_USERS), [r["rep_id"] for r in REPS]
    start = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    rows = []
    for i in range(n):
        user, rep = users[i % len(users)], reps[i % len(reps)]
        typed = {"manager_id": '=HYPERLINK("x"), @me', "note": f'entry {i},\n"as typed"'}
        rows.append(
            {
                "at": start + dt.timedelta(minutes=i // 2),
                "actor": user,
                "actor_roles": ",".join(sorted(ROLE_USERS[user][0])),
                "action": actions[i % len(actions)],
                "resource_type": "rep",
                "resource_id": None if i % 7 == 0 else ("-" if i % 11 == 0 else "") + rep,
                "model_version": "1" if i % 3 else None,
                "outcome": "out_of_scope" if i % 5 == 0 else "ok",
                "detail": typed if i % 4 == 1 else {"rep_ids": reps[: 1 + i % len(reps)], "token": "rr_x"},
                "request_id": f"+req{i}" if i % 13 == 0 else f"req{i:06d}",
            }
        )
    return rows


def assert_read_in_chunks(session, chunks, expected: list[tuple], db_url: str, sizes: list[int]) -> None:
    """`chunks` is a lazy iterator of row chunks of `sizes`, read through a server-side cursor on
    PostgreSQL (open while the first chunk is out), and its rows are `expected` in order."""
    from collections.abc import Iterator

    from sqlalchemy import text

    assert isinstance(chunks, Iterator)
    first = next(chunks)
    assert len(first) == sizes[0]
    if db_url.startswith("postgresql"):
        assert session.scalar(text("SELECT count(*) FROM pg_cursors")) == 1
    rest = list(chunks)
    assert [len(c) for c in rest] == sizes[1:]
    assert [tuple(r) for c in [first, *rest] for r in c] == expected


def parameter_limit(service, db_url) -> int:
    """The most bound parameters one statement may hold. PostgreSQL's is its protocol's, 65,535; SQLite's
    is a build option (250,000 in Debian's build, 32,766 by default, 999 before 3.32), set here to 999 on
    the service's connections, as such a build has it, to keep the tree small."""
    if db_url.startswith("postgresql"):
        return 65_535
    engine = service.app.state.engine

    @event.listens_for(engine, "connect")
    def _limit(dbapi_conn, _record):
        dbapi_conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 999)

    engine.dispose()  # the pooled connections are opened again, with the limit
    with engine.connect() as conn:
        assert conn.connection.dbapi_connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) == 999
    return 999


def stop_writes(svc, db_url: str, how: str):
    """Make the service's database refuse writes as a full disk or a read-only database does, through the
    database's own settings (no tmpfs, no root): SQLite's max_page_count at the current size gives
    SQLITE_FULL ("database or disk is full") once a write needs a new page, query_only gives SQLITE_READONLY;
    PostgreSQL's default_transaction_read_only gives SQLSTATE 25006, as a standby after a fail-over.
    Returns a function that makes it writable again."""
    from sqlalchemy import text

    engine = svc.app.state.engine
    if db_url.startswith("sqlite"):

        def _pragma(dbapi_conn, _record):
            cur = dbapi_conn.cursor()
            if how == "full":
                pages = cur.execute("PRAGMA page_count").fetchone()[0]
                cur.execute(f"PRAGMA max_page_count = {pages}")
            else:
                cur.execute("PRAGMA query_only = ON")
            cur.close()

        event.listen(engine, "connect", _pragma)

        def undo():
            event.remove(engine, "connect", _pragma)
            engine.dispose()

    else:
        with engine.connect() as conn:
            name = conn.scalar(text("SELECT current_database()"))
            conn.execute(text(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on'))
            conn.commit()

        def undo():
            engine.dispose()
            with engine.connect() as conn:
                conn.execute(text("SET TRANSACTION READ WRITE"))
                conn.execute(text(f'ALTER DATABASE "{name}" RESET default_transaction_read_only'))
                conn.commit()
            engine.dispose()

    engine.dispose()  # the pooled connections are opened again, with the setting
    return undo


AS_OF_1 = dt.date(2024, 1, 8)
AS_OF_2 = dt.date(2024, 1, 15)

ROLE_USERS = {
    "mgr1": (["manager"], "M1"),
    "mgr2": (["manager"], "M2"),
    "mgr9": (["manager"], "M9"),
    "hr": (["hr"], None),
    "ds": (["data_scientist"], None),
    "admin": (["admin"], None),
    "dshr": (["data_scientist", "hr"], None),
}


@dataclass
class Service:
    client: TestClient
    app: object
    settings: Settings
    tokens: dict[str, str]
    source: StubSource

    def h(self, user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[user]}"}

    def session(self):
        return self.app.state.sessions()


def add_finished_job(app, rows: list[dict] | None = None, folder=None) -> str:
    """A batch job that succeeded, as the runner leaves it: its scores file (`rows`, default the fixture
    org's AS_OF_2 rows) written under the service's `REPRADAR_HOME/jobs/<id>/` and its row stored, `folder`
    as its data folder; returns its id."""
    import uuid

    import pandas as pd

    from models.scoring import write_scores
    from serving.db.schema import Job

    rows = score_rows(AS_OF_2) if rows is None else rows
    job_id = uuid.uuid4().hex
    path = write_scores(pd.DataFrame(rows), app.state.runner.output_path(job_id))
    with app.state.sessions.begin() as s:
        s.add(
            Job(
                id=job_id,
                dedupe_key=job_id,
                data_dir=str(folder),
                data_digest="d",
                as_of=pd.Timestamp(rows[0]["as_of"]).date(),
                model_version="1",
                status="succeeded",
                created_by="hr",
                output_path=str(path),
                n_rows=len(rows),
            )
        )
    return job_id


def succeeded_job(app, job_id: str, as_of: dt.date, model_version: str = "1") -> None:
    """A succeeded batch job's row (no file, no scores): what a track record is stored against."""
    from serving.db.schema import Job

    with app.state.sessions.begin() as s:
        s.add(
            Job(
                id=job_id,
                dedupe_key=job_id,
                data_dir="/data",
                data_digest="d",
                as_of=as_of,
                model_version=model_version,
                status="succeeded",
                created_by="hr",
            )
        )


def seed(app, with_scores: bool = True) -> dict[str, str]:
    tokens = {}
    with app.state.sessions.begin() as s:
        for name, (roles, manager_id) in ROLE_USERS.items():
            tokens[name] = add_user(s, name, roles, manager_id)[1]
        store.upsert_reps(s, REPS)
        if with_scores:
            store.import_scores(s, score_rows(AS_OF_1, shift=-0.05))
            store.import_scores(s, score_rows(AS_OF_2))
    return tokens


@pytest.fixture
def service_factory(tmp_path, db_url):
    """Build a running service (lifespan started) with settings overrides; all are stopped at the end."""
    from contextlib import ExitStack

    stack = ExitStack()
    count = [0]

    def make(*, source: StubSource | None = None, scores: bool = True, **overrides) -> Service:
        count[0] += 1
        source = source or StubSource("1")
        settings = make_settings(tmp_path, db_url, **overrides)
        app = create_app(settings, model_source=source)
        client = stack.enter_context(TestClient(app))
        tokens = seed(app, with_scores=scores) if count[0] == 1 else {}
        return Service(client, app, settings, tokens, source)

    with stack:
        yield make


@pytest.fixture
def service(service_factory):
    return service_factory()


class LiveServer:
    """The app under a real uvicorn server in a thread (real sockets, real lifespan)."""

    def __init__(self, app):
        import socket
        import threading

        import uvicorn

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self):
        import time

        self.thread.start()
        deadline = time.time() + 60
        while not self.server.started:
            if not self.thread.is_alive() or time.time() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(30)
