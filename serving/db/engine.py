"""Engine and sessions: SQLite under REPRADAR_HOME by default, PostgreSQL (psycopg 3) by `database_url`."""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from repradar.errors import UserError
from repradar.settings import Settings


def normalise_url(url: str) -> str:
    """`postgresql://` and `postgres://` mean psycopg 3 here (SQLAlchemy would pick psycopg2)."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def make_engine(settings: Settings) -> Engine:
    """An engine with sensible timeouts; creating it connects to nothing."""
    try:
        url = make_url(normalise_url(settings.db_url))
    except (ArgumentError, ValueError):  # the URL itself is not repeated: it may hold a password
        raise UserError(
            "REPRADAR_DATABASE_URL is not a database URL: write it as "
            "postgresql://user:password@host:5432/repradar, or leave it unset for SQLite under REPRADAR_HOME"
        ) from None
    timeout = settings.db_timeout_s
    if url.get_backend_name() == "sqlite":
        in_memory = not url.database or url.database == ":memory:"
        if not in_memory:
            try:
                Path(url.database).parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise UserError(
                    f"cannot create the folder of the service's database {url.database}: {exc.strerror}; "
                    "set REPRADAR_HOME to a folder the service may write to"
                ) from None
        pool = {} if in_memory else {"pool_size": 20, "max_overflow": 20, "pool_timeout": timeout}
        engine = create_engine(url, connect_args={"timeout": timeout, "check_same_thread": False}, **pool)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # WAL: readers do not wait for the one writer
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    if url.get_backend_name() == "postgresql":
        return create_engine(
            url,
            connect_args={
                "connect_timeout": max(1, int(timeout)),
                "options": f"-c statement_timeout={int(timeout * 1000)}",
            },
            pool_size=10,
            max_overflow=20,
            pool_timeout=timeout,
            pool_pre_ping=True,
        )
    raise UserError(
        f"unsupported database URL {url.render_as_string(hide_password=True)!r}: use sqlite or postgresql"
    )


def check_connection(engine: Engine) -> None:
    """Connect once, so that a database that is down, unknown or refusing the credentials is a UserError
    naming it (password hidden) and saying what to check, not a driver's traceback at the first query."""
    try:
        with engine.connect():
            pass
    except DBAPIError as exc:
        reason = " ".join(str(exc.orig or exc).split())
        where = engine.url.render_as_string(hide_password=True)
        raise UserError(
            f"cannot open the service's database {where}: {reason}; check REPRADAR_DATABASE_URL "
            "(or REPRADAR_HOME for SQLite) and that the database server is running"
        ) from None


# PostgreSQL's SQLSTATEs for a database that cannot take writes: disk_full (class 53, "insufficient
# resources", as out_of_memory and too_many_connections, which pass), read_only_sql_transaction (a hot
# standby after a fail-over, default_transaction_read_only)
_UNWRITABLE_SQLSTATES = {"53100": "its disk is full", "25006": "it is read-only"}
# SQLite's texts for SQLITE_FULL and SQLITE_READONLY (both sqlite3.OperationalError)
_UNWRITABLE_SQLITE = {"database or disk is full": "its disk is full", "readonly database": "it is read-only"}


def unwritable_reason(exc: BaseException) -> str | None:
    """Why a database error means the database cannot be written now ("its disk is full", "it is
    read-only"), or None for any other error: no retry in a moment helps then, an administrator must act."""
    orig = getattr(exc, "orig", None) or exc
    if (state := getattr(orig, "sqlstate", None)) in _UNWRITABLE_SQLSTATES:
        return _UNWRITABLE_SQLSTATES[state]
    if type(orig).__module__.startswith("sqlite3"):
        text = str(orig).lower()
        return next((why for key, why in _UNWRITABLE_SQLITE.items() if key in text), None)
    return None


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    # No autoflush: a write reaches the database only in an explicit flush or commit, which code
    # that writes does under `write_lock` (a hidden flush outside it could deadlock with a writer
    # waiting on SQLite while holding the lock).
    return sessionmaker(engine, expire_on_commit=False, autoflush=False)


_WRITE_LOCKS: dict[int, threading.RLock] = {}


def write_lock(engine: Engine):
    """SQLite allows one writer: writers of this process queue on a lock instead of colliding in
    SQLite's busy handler (which sleeps 1-100 ms per retry). Other databases need no lock."""
    if engine.dialect.name != "sqlite":
        return contextlib.nullcontext()
    return _WRITE_LOCKS.setdefault(id(engine), threading.RLock())


def hold_lock(session: Session, name: str) -> None:
    """Hold a lock named `name` until the session's transaction ends, across every process using the
    database: for check-then-write sequences that no unique constraint can express.

    PostgreSQL: a transaction-level advisory lock per name. SQLite: a write to one `service_meta` row,
    which takes the database's single write lock (so one lock serves every name; other processes wait
    for it in the busy handler); the caller holds `write_lock` too, as for any write.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:name, 0))"), {"name": name})
    else:
        session.execute(
            text(
                "INSERT INTO service_meta (key, value) VALUES (:key, '') "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value"
            ),
            {"key": "write_lock"},
        )


def commit(session: Session) -> None:
    """Flush and commit the session's pending writes, under the engine's write lock."""
    with write_lock(session.get_bind()):
        session.flush()
        session.commit()


@contextlib.contextmanager
def begin_write(sessions: sessionmaker[Session]):
    """`sessions.begin()` under the write lock: for transactions that write."""
    with write_lock(sessions.kw["bind"]), sessions.begin() as session:
        yield session
