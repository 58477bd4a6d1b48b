"""Tables of the service's database. Migrations in `migrations/` create them; this is what the code reads."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

JsonType = JSON().with_variant(JSONB(), "postgresql")
# SQLite has no BIGINT autoincrement; INTEGER PRIMARY KEY is its 64-bit rowid.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator):
    """Timestamps stored and returned as UTC-aware datetimes, on SQLite (naive storage) as on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: dt.datetime | None, dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class User(Base):
    """A person or system that calls the service; roles are a comma-separated set."""

    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    roles: Mapped[str] = mapped_column(String(200))
    manager_id: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    disabled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # The dashboard language the user chose last (serving/i18n.py LANGS); None: not chosen yet.
    lang: Mapped[str | None] = mapped_column(String(16))


class Token(Base):
    """A bearer token; only its SHA-256 is stored, so a database leak gives no usable token."""

    __tablename__ = "tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class WebSession(Base):
    """A dashboard sign-in: its cookie holds a random secret of its own (never the API token), stored only as
    a SHA-256; it ends at sign-out, after `session_idle_minutes` unused or `session_max_hours` in all, and
    with its token or its user (serving/auth.py)."""

    __tablename__ = "web_sessions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    # the token signed in with: revoking it ends the sessions it opened
    token_id: Mapped[int] = mapped_column(ForeignKey("tokens.id"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class AuthFailure(Base):
    """A refused token (`kind` "api") or dashboard sign-in ("signin") from a client address, at `at` (Unix
    seconds): kept in the database so that every worker process counts the same failures (serving.auth.FailureLimit)."""

    __tablename__ = "auth_failures"
    __table_args__ = (Index("ix_auth_failures_kind_address_at", "kind", "address", "at"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))
    address: Mapped[str] = mapped_column(String(100))
    at: Mapped[float] = mapped_column(Float, index=True)


class Rep(Base):
    """The rep directory (names, reporting line) as of the latest batch job; scope is resolved from it."""

    __tablename__ = "reps"
    rep_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    manager_id: Mapped[str] = mapped_column(String(100), index=True)
    name: Mapped[str | None] = mapped_column(String(200))
    team: Mapped[str | None] = mapped_column(String(200))
    region: Mapped[str | None] = mapped_column(String(200))
    segment: Mapped[str | None] = mapped_column(String(200))
    hire_date: Mapped[dt.date | None] = mapped_column(Date)
    end_date: Mapped[dt.date | None] = mapped_column(Date)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class ServiceMeta(Base):
    """Small key/value facts, e.g. the directory version that invalidates cached org charts."""

    __tablename__ = "service_meta"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(200))


class Job(Base):
    """A batch scoring job; `active_key` is unique while the job is not failed, so asking twice gives one job."""

    __tablename__ = "jobs"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    dedupe_key: Mapped[str] = mapped_column(String(64), index=True)
    active_key: Mapped[str | None] = mapped_column(String(64), unique=True)
    data_dir: Mapped[str] = mapped_column(Text)
    data_digest: Mapped[str] = mapped_column(String(64))
    as_of: Mapped[dt.date] = mapped_column(Date)
    model_version: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), index=True)
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    worker: Mapped[str | None] = mapped_column(String(200))
    error: Mapped[str | None] = mapped_column(Text)
    # why it failed, as a code pages translate (serving.jobs.FAILURE_CODES); `error` keeps the details
    error_code: Mapped[str | None] = mapped_column(String(32))
    output_path: Mapped[str | None] = mapped_column(Text)
    n_rows: Mapped[int | None] = mapped_column(Integer)
    # what the scoring said with the scores (a JSON list of English lines, as `repradar score` prints them)
    notes: Mapped[str | None] = mapped_column(Text)


class Score(Base):
    """One scored row of the output contract; every batch's rows are kept for trends and replays."""

    __tablename__ = "scores"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    job_id: Mapped[str | None] = mapped_column(ForeignKey("jobs.id"), index=True)
    rep_id: Mapped[str] = mapped_column(String(100))
    manager_id: Mapped[str] = mapped_column(String(100))
    period_start: Mapped[dt.date] = mapped_column(Date)
    period_end: Mapped[dt.date] = mapped_column(Date)
    as_of: Mapped[dt.date] = mapped_column(Date)
    risk: Mapped[float] = mapped_column(Float)
    risk_band: Mapped[str] = mapped_column(String(16))
    rank: Mapped[int] = mapped_column(Integer)
    attainment_to_date: Mapped[float | None] = mapped_column(Float)
    drivers: Mapped[list[Any]] = mapped_column(JsonType)
    interventions: Mapped[list[Any]] = mapped_column(JsonType)
    model_version: Mapped[str] = mapped_column(String(64))
    risk_change: Mapped[float | None] = mapped_column(Float)
    extra: Mapped[dict[str, Any]] = mapped_column(JsonType)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (Index("ix_scores_rep_as_of", "rep_id", "as_of"),)


class CurrentScore(Base):
    """Pointer to each rep's newest score (latest as-of, then latest batch): the early-warning list reads it."""

    __tablename__ = "current_scores"
    rep_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    score_id: Mapped[int] = mapped_column(ForeignKey("scores.id"))
    as_of: Mapped[dt.date] = mapped_column(Date)


class TrackRecord(Base):
    """How one batch's list turned out (reporting.track_record's figures; counts and rates, no rep),
    judged by a later batch job against the outcomes its data folder holds as known on its as-of day.
    Judged again by each later job, as more of the batch's periods finish."""

    __tablename__ = "track_records"
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id"), primary_key=True)  # the batch judged
    judged_by: Mapped[str] = mapped_column(String(32))  # the job whose data judged it
    judged_as_of: Mapped[dt.date] = mapped_column(Date)  # the day the outcomes are known on
    computed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    figures: Mapped[dict[str, Any]] = mapped_column(JsonType)


class PeriodOutcome(Base):
    """How a rep's quota period ended (the training label: attainment and whether it missed target), for
    the periods of the lists the batch jobs judged: the rep page sets each earlier risk beside it. A
    later job's data replace it, an earlier one's never."""

    __tablename__ = "period_outcomes"
    rep_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    period_start: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    period_end: Mapped[dt.date] = mapped_column(Date)
    attainment: Mapped[float | None] = mapped_column(Float)
    missed: Mapped[bool] = mapped_column(Boolean)
    known_on: Mapped[dt.date] = mapped_column(Date)  # the as-of day of the job whose data gave it
    judged_by: Mapped[str] = mapped_column(String(32))


class InterventionLog(Base):
    """What a manager did for a rep; the later effect analysis reads it."""

    __tablename__ = "intervention_log"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    rep_id: Mapped[str] = mapped_column(String(100), index=True)
    intervention: Mapped[str] = mapped_column(String(64))
    started_on: Mapped[dt.date] = mapped_column(Date)
    ended_on: Mapped[dt.date | None] = mapped_column(Date)
    note: Mapped[str | None] = mapped_column(Text)
    recorded_by: Mapped[str] = mapped_column(String(100))
    recorded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    model_version: Mapped[str | None] = mapped_column(String(64))
    risk_at_record: Mapped[float | None] = mapped_column(Float)


class IdempotencyKey(Base):
    """An `Idempotency-Key` a user sent with a recorded intervention, with the answer given (status and
    body), replayed when the same request comes again within `rules.IDEMPOTENCY_KEY_HOURS`. No foreign
    key to the entry: a purge or erasure deletes both, and an expired key is deleted on its own."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("user_id", "key", name="uq_idempotency_keys_user_id_key"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(Integer)
    key: Mapped[str] = mapped_column(String(255))
    fingerprint: Mapped[str] = mapped_column(String(64))
    rep_id: Mapped[str] = mapped_column(String(100), index=True)
    entry_id: Mapped[int] = mapped_column(Integer, index=True)
    status: Mapped[int] = mapped_column(Integer)
    model_version: Mapped[str | None] = mapped_column(String(64))  # the entry's, for the replay's audit event
    # the body as sent, byte for byte (JSONB would reorder its keys)
    response: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class AuditEvent(Base):
    """Append-only trail: who did what, when, with which model version. Triggers refuse UPDATE and DELETE."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(100), index=True)
    actor_roles: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(64), index=True)
    resource_type: Mapped[str] = mapped_column(String(32))
    resource_id: Mapped[str | None] = mapped_column(String(200), index=True)
    model_version: Mapped[str | None] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(16))
    detail: Mapped[dict[str, Any]] = mapped_column(JsonType)
    request_id: Mapped[str | None] = mapped_column(String(64))
