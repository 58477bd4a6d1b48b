"""Reading and writing scores and the rep directory: the data behind the rep and early-warning endpoints."""

from __future__ import annotations

import datetime as dt
import json
import math
import threading
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import Select, String, any_, delete, func, insert, literal, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from models.scoring import SCORE_COLUMNS
from repradar.errors import UserError
from serving.db.schema import (
    CurrentScore,
    IdempotencyKey,
    InterventionLog,
    Job,
    PeriodOutcome,
    Rep,
    Score,
    ServiceMeta,
    TrackRecord,
    User,
    utcnow,
)
from serving.i18n import LANGS
from serving.rules import IDEMPOTENCY_KEY_HOURS, OrgChart, Scope

SPEC_COLUMNS = tuple(SCORE_COLUMNS)  # the scores file's columns (docs/spec/outputs.md)
REP_COLUMNS = ("rep_id", "manager_id", "name", "team", "region", "segment", "hire_date", "end_date")
DIRECTORY_KEY = "directory_version"


def jsonable(value: Any) -> Any:
    """Plain JSON values from what pandas/numpy/pyarrow hand out (NaN and NaT become None)."""
    if value is None or isinstance(value, (str, bool)):
        return value
    if isinstance(value, (np.bool_,)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        f = float(value)
        return None if math.isnan(f) or math.isinf(f) else f
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [jsonable(v) for v in value]
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if hasattr(value, "isoformat"):  # pandas Timestamp
        try:
            return None if value != value else value.isoformat()
        except (TypeError, ValueError):
            return str(value)
    return str(value)


def to_date(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if hasattr(value, "to_pydatetime"):
        return value.to_pydatetime().date()
    if isinstance(value, np.datetime64):
        return dt.date.fromisoformat(str(value)[:10])
    if isinstance(value, str):
        return dt.date.fromisoformat(value[:10])
    raise UserError(f"not a date: {value!r}")


def _opt_date(value: Any) -> dt.date | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    try:
        if value != value:  # NaT
            return None
    except (TypeError, ValueError):
        pass
    return to_date(value)


def _json_list(value: Any) -> list:
    """A list column as stored in Parquet (array), CSV (JSON text) or memory (list)."""
    if value is None:
        return []
    if isinstance(value, str):
        value = json.loads(value) if value.strip() else []
    out = jsonable(value)
    return out if isinstance(out, list) else []


def _records(frame_or_rows: Any) -> list[dict[str, Any]]:
    if hasattr(frame_or_rows, "to_dict"):
        return frame_or_rows.to_dict(orient="records")
    return [dict(r) for r in frame_or_rows]


def normalise_score(row: Mapping[str, Any]) -> dict[str, Any]:
    """One scores-file row as a `scores` table row; unknown columns go to `extra` as JSON."""
    missing = [c for c in SPEC_COLUMNS if c not in row]
    if missing:
        raise UserError(f"scores rows lack column(s) {', '.join(missing)} of the output contract")
    att = jsonable(row["attainment_to_date"])
    return {
        "rep_id": str(row["rep_id"]),
        "manager_id": str(row["manager_id"]),
        "period_start": to_date(row["period_start"]),
        "period_end": to_date(row["period_end"]),
        "as_of": to_date(row["as_of"]),
        "risk": float(row["risk"]),
        "risk_band": str(row["risk_band"]),
        "rank": int(row["rank"]),
        "attainment_to_date": att,
        "drivers": _json_list(row["drivers"]),
        "interventions": [str(i) for i in _json_list(row["interventions"])],
        "model_version": str(row["model_version"]),
        "extra": {str(k): jsonable(v) for k, v in row.items() if k not in SPEC_COLUMNS},
    }


def bump_directory(session: Session) -> None:
    """A new directory version: cached org charts are rebuilt on their next use."""
    value = uuid.uuid4().hex
    meta = session.get(ServiceMeta, DIRECTORY_KEY)
    if meta is None:
        session.add(ServiceMeta(key=DIRECTORY_KEY, value=value))
    else:
        meta.value = value


def import_scores(session: Session, frame_or_rows: Any, job_id: str | None = None) -> int:
    """Store a batch's rows and move each rep's current-score pointer when the batch is at least as new.

    `risk_change` is the change against the rep's latest earlier as-of day in the same period (its
    newest score of that day), when one is stored. A batch re-scoring a day already stored (a newly
    promoted model, corrected data) compares with that same earlier day; a batch for a day between
    two stored ones (a backfill) also re-bases the next stored day's scores on it, so "since last
    batch" always reads against the day just before.
    Flushes but does not commit: the caller's transaction decides.
    """
    rows = sorted((normalise_score(r) for r in _records(frame_or_rows)), key=lambda r: r["as_of"])
    if not rows:
        return 0
    rep_ids = sorted({r["rep_id"] for r in rows})
    periods = sorted({r["period_start"] for r in rows})
    current: dict[str, tuple[int, dt.date]] = {}  # rep -> (score id, as-of) of the current score
    for chunk in _chunks(rep_ids, 1000):
        for rep_id, score_id, as_of in session.execute(
            select(CurrentScore.rep_id, CurrentScore.score_id, CurrentScore.as_of).where(
                CurrentScore.rep_id.in_(chunk)
            )
        ):
            current[rep_id] = (score_id, as_of)
    # (rep, period) -> {as-of: (risk of the day's newest score, [ids of the day's scores])}: the
    # stored days of the batch's periods, to compare with and to re-base after a backfill
    days: dict[tuple[str, dt.date], dict[dt.date, tuple[float, list[tuple[int, float]]]]] = {}
    for chunk in _chunks(rep_ids, 1000):
        for rep_id, period_start, as_of, score_id, risk in session.execute(
            select(Score.rep_id, Score.period_start, Score.as_of, Score.id, Score.risk)
            .where(Score.rep_id.in_(chunk), Score.period_start.in_(periods))
            .order_by(Score.id)
        ):
            day = days.setdefault((rep_id, period_start), {})
            scores = day[as_of][1] if as_of in day else []
            scores.append((score_id, risk))
            day[as_of] = (risk, scores)  # ids ascend: the last one seen is the day's newest
    existing = set(current)
    now = utcnow()
    pointer_updates: dict[str, dict[str, Any]] = {}
    rebase: dict[int, float] = {}  # score id -> its new risk_change
    for chunk in _chunks(rows, 1000):
        for r in chunk:  # in as-of order, so a batch holding several days compares each with the last
            day = days.setdefault((r["rep_id"], r["period_start"]), {})
            earlier = max((d for d in day if d < r["as_of"]), default=None)
            r["risk_change"] = r["risk"] - day[earlier][0] if earlier is not None else None
            later = min((d for d in day if d > r["as_of"]), default=None)
            if later is not None:  # a backfill: the next stored day now compares with this one
                for sid, risk in day[later][1]:
                    rebase[sid] = risk - r["risk"]
            day[r["as_of"]] = (r["risk"], day[r["as_of"]][1] if r["as_of"] in day else [])
            r["job_id"] = job_id
            r["created_at"] = now
        ids = session.scalars(insert(Score).returning(Score.id, sort_by_parameter_order=True), chunk).all()
        for r, score_id in zip(chunk, ids, strict=True):
            days[(r["rep_id"], r["period_start"])][r["as_of"]][1].append((score_id, r["risk"]))
            prev = current.get(r["rep_id"])
            if prev is None or r["as_of"] >= prev[1]:
                current[r["rep_id"]] = (score_id, r["as_of"])
                pointer_updates[r["rep_id"]] = {
                    "rep_id": r["rep_id"],
                    "score_id": score_id,
                    "as_of": r["as_of"],
                }
    new = [v for k, v in pointer_updates.items() if k not in existing]
    changed = [v for k, v in pointer_updates.items() if k in existing]
    if new:
        session.execute(insert(CurrentScore), new)
    if changed:
        session.execute(update(CurrentScore), changed)
    if rebase:
        session.execute(update(Score), [{"id": k, "risk_change": v} for k, v in rebase.items()])
    bump_directory(session)
    session.flush()
    return len(rows)


def upsert_reps(session: Session, frame_or_rows: Any) -> int:
    """Refresh the rep directory (names, reporting lines) from a `reps` table of the input contract."""
    rows = []
    for r in _records(frame_or_rows):
        rows.append(
            {
                "rep_id": str(r["rep_id"]),
                "manager_id": str(r["manager_id"]),
                "name": _opt_str(r.get("name")),
                "team": _opt_str(r.get("team")),
                "region": _opt_str(r.get("region")),
                "segment": _opt_str(r.get("segment")),
                "hire_date": _opt_date(r.get("hire_date")),
                "end_date": _opt_date(r.get("end_date")),
                "updated_at": utcnow(),
            }
        )
    existing = set(session.scalars(select(Rep.rep_id)))
    new = [r for r in rows if r["rep_id"] not in existing]
    changed = [r for r in rows if r["rep_id"] in existing]
    if new:
        session.execute(insert(Rep), new)
    if changed:
        session.execute(update(Rep), changed)
    bump_directory(session)
    session.flush()
    return len(rows)


def _opt_str(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    try:
        if value != value:
            return None
    except (TypeError, ValueError):
        pass
    return str(value)


def _chunks(seq: Sequence, n: int) -> Iterable[Sequence]:
    for i in range(0, len(seq), n):
        yield seq[i : i + n]


def rep_in(session: Session, column: Any, rep_ids: Iterable[str]) -> Any:
    """`column` is one of `rep_ids`, sent as ONE bound parameter whatever their number: an IN list binds
    a parameter per id, and a large manager's subtree would pass the database's limit (SQLite: 32,766 by
    default since 3.32, 999 before, 250,000 in Debian's build; PostgreSQL: 65,535 a statement). SQLite
    reads the ids from a JSON array (json_each), PostgreSQL from a text array (= ANY)."""
    ids = sorted(set(rep_ids))
    if session.get_bind().dialect.name == "postgresql":
        return column == any_(literal(ids, ARRAY(String)))
    listed = func.json_each(literal(json.dumps(ids))).table_valued("value")
    return column.in_(select(listed.c.value))


class ChartCache:
    """The org chart, rebuilt only when the directory version changes (one tiny query per request)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._version: str | None = None
        self._chart = OrgChart({})

    def get(self, session: Session) -> OrgChart:
        version = session.scalar(select(ServiceMeta.value).where(ServiceMeta.key == DIRECTORY_KEY))
        if version is not None and version == self._version:
            return self._chart
        # Reps known only from scores (no directory row yet) still have a reporting line.
        edges = dict(
            session.execute(
                select(Score.rep_id, Score.manager_id).join(CurrentScore, CurrentScore.score_id == Score.id)
            ).all()
        )
        edges.update(session.execute(select(Rep.rep_id, Rep.manager_id)).all())
        chart = OrgChart(edges)
        with self._lock:
            self._version, self._chart = version, chart
        return chart


@dataclass(frozen=True)
class ListRow:
    rep_id: str
    manager_id: str
    name: str | None
    team: str | None
    region: str | None
    segment: str | None
    period_start: dt.date
    period_end: dt.date
    as_of: dt.date
    risk: float
    risk_band: str
    rank: int
    attainment_to_date: float | None
    risk_change: float | None
    model_version: str
    score_id: int


def current_rows(session: Session, scope: Scope) -> list[ListRow]:
    """Each in-scope rep's newest score, restricted to the newest as-of among them (the latest batch)."""
    if not scope.everyone and not scope.reps:
        return []
    q = (
        select(
            Score.rep_id,
            Score.manager_id,
            Rep.name,
            Rep.team,
            Rep.region,
            Rep.segment,
            Score.period_start,
            Score.period_end,
            Score.as_of,
            Score.risk,
            Score.risk_band,
            Score.rank,
            Score.attainment_to_date,
            Score.risk_change,
            Score.model_version,
            Score.id,
        )
        .select_from(CurrentScore)
        .join(Score, Score.id == CurrentScore.score_id)
        .outerjoin(Rep, Rep.rep_id == CurrentScore.rep_id)
    )
    if not scope.everyone:
        q = q.where(rep_in(session, CurrentScore.rep_id, scope.reps))
    rows = [ListRow(*r) for r in session.execute(q)]
    if not rows:
        return []
    newest = max(r.as_of for r in rows)
    return [r for r in rows if r.as_of == newest]


def explanations(session: Session, score_ids: Sequence[int]) -> dict[int, tuple[list, list]]:
    """{score id: (drivers, interventions)} for the rows a list shows (JSON is decoded only for those)."""
    if not score_ids:
        return {}
    rows = session.execute(
        select(Score.id, Score.drivers, Score.interventions).where(Score.id.in_(list(score_ids)))
    )
    return {r.id: (r.drivers, r.interventions) for r in rows}


def driver_groups(session: Session, score_ids: Sequence[int]) -> dict[int, list]:
    """{score id: the scores' `driver_groups`} for the scores that carry them (kept in `extra`): the
    ranking of reasons by group that the report's manager-level suggestions use too."""
    if not score_ids:
        return {}
    rows = session.execute(select(Score.id, Score.extra).where(Score.id.in_(list(score_ids))))
    out = {}
    for sid, extra in rows:
        g = extra.get("driver_groups") if isinstance(extra, dict) else None
        if isinstance(g, list) and g:
            out[sid] = g
    return out


def rep_known(session: Session, rep_id: str) -> bool:
    if session.get(Rep, rep_id) is not None:
        return True
    return session.scalar(select(Score.id).where(Score.rep_id == rep_id).limit(1)) is not None


def rep_directory_row(session: Session, rep_id: str) -> Rep | None:
    return session.get(Rep, rep_id)


def rep_score(
    session: Session, rep_id: str, as_of: dt.date | None = None, model_version: str | None = None
) -> Score | None:
    """The score to show: the newest, or what the model said on `as_of` (newest score at or before it)."""
    if as_of is None and model_version is None:
        return session.scalars(
            select(Score)
            .join(CurrentScore, CurrentScore.score_id == Score.id)
            .where(CurrentScore.rep_id == rep_id)
        ).first()
    q = select(Score).where(Score.rep_id == rep_id)
    if as_of is not None:
        q = q.where(Score.as_of <= as_of)
    if model_version is not None:
        q = q.where(Score.model_version == model_version)
    return session.scalars(q.order_by(Score.as_of.desc(), Score.id.desc()).limit(1)).first()


def rep_trend(session: Session, score: Score) -> list[Any]:
    """The risk through the score's period up to its as-of: one point per as-of (the newest batch's)."""
    rows = session.execute(
        select(Score.as_of, Score.risk, Score.risk_band, Score.model_version)
        .where(
            Score.rep_id == score.rep_id,
            Score.period_start == score.period_start,
            Score.as_of <= score.as_of,
        )
        .order_by(Score.as_of, Score.id)
    ).all()
    by_day = {r.as_of: r for r in rows}  # later rows (newer batches) win
    return [by_day[d] for d in sorted(by_day)]


def rep_history(session: Session, rep_id: str, limit: int = 500, offset: int = 0) -> tuple[list[Score], int]:
    """One page of the rep's stored scores, newest first, and how many there are in all."""
    total = session.scalar(select(func.count()).select_from(Score).where(Score.rep_id == rep_id)) or 0
    rows = session.scalars(
        select(Score)
        .where(Score.rep_id == rep_id)
        .order_by(Score.as_of.desc(), Score.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return list(rows), total


def intervention_log_rows(session: Session) -> list[dict[str, Any]]:
    """Every entry of the intervention log in the contract's `interventions` columns (rep_id,
    intervention, started_on, ended_on), oldest start first: what the report's effects section reads."""
    cols = (
        InterventionLog.rep_id,
        InterventionLog.intervention,
        InterventionLog.started_on,
        InterventionLog.ended_on,
    )
    q = select(*cols).order_by(InterventionLog.started_on, InterventionLog.id)
    return [dict(r._mapping) for r in session.execute(q)]


def manager_reports(session: Session, manager_id: str) -> tuple[int, int]:
    """(reps in the directory, reps in it reporting to `manager_id` directly)."""
    everyone = session.scalar(select(func.count()).select_from(Rep)) or 0
    direct = session.scalar(select(func.count()).select_from(Rep).where(Rep.manager_id == manager_id)) or 0
    return everyone, direct


# -- the intervention log -----------------------------------------------------------------------
@dataclass(frozen=True)
class EntryFilter:
    """Which intervention entries an export holds; None: no condition. `scope` is the reps the caller
    asked for (a manager's subtree), already resolved."""

    started_from: dt.date | None = None
    started_to: dt.date | None = None
    scope: Scope | None = None
    team: str | None = None
    rep_ids: frozenset[str] | None = None


def _entry_conditions(session: Session, f: EntryFilter) -> list[Any] | None:
    """The WHERE conditions of `f`, or None when no entry can match (an empty scope)."""
    wanted = []
    if f.started_from is not None:
        wanted.append(InterventionLog.started_on >= f.started_from)
    if f.started_to is not None:
        wanted.append(InterventionLog.started_on <= f.started_to)
    if f.rep_ids is not None:
        wanted.append(rep_in(session, InterventionLog.rep_id, f.rep_ids))
    if f.scope is not None and not f.scope.everyone:
        if not f.scope.reps:
            return None
        wanted.append(rep_in(session, InterventionLog.rep_id, f.scope.reps))
    if f.team is not None:  # the team in the rep directory now, as the dashboard shows it
        wanted.append(InterventionLog.rep_id.in_(select(Rep.rep_id).where(Rep.team == f.team)))
    return wanted


def intervention_entries(
    session: Session, f: EntryFilter, limit: int | None = None, offset: int = 0
) -> tuple[list[InterventionLog], int]:
    """The entries matching `f`, oldest start first (then as recorded), one page of them when `limit` is
    given, and how many match in all."""
    wanted = _entry_conditions(session, f)
    if wanted is None:
        return [], 0
    total = session.scalar(select(func.count()).select_from(InterventionLog).where(*wanted)) or 0
    q = select(InterventionLog).where(*wanted).order_by(InterventionLog.started_on, InterventionLog.id)
    if limit is not None:
        q = q.limit(limit).offset(offset)
    return list(session.scalars(q)), total


def count_intervention_entries(session: Session, f: EntryFilter) -> tuple[int, int | None]:
    """(how many entries match `f`, the id of the newest of them or None): an export counts first, then
    reads the entries up to that id, so that its count holds for what it sends."""
    wanted = _entry_conditions(session, f)
    if wanted is None:
        return 0, None
    count, last = session.execute(
        select(func.count(), func.max(InterventionLog.id)).select_from(InterventionLog).where(*wanted)
    ).one()
    return count or 0, last


def iter_intervention_table(
    session: Session, f: EntryFilter, upto_id: int | None, chunk: int = 1000
) -> Iterator[list[Any]]:
    """The input contract's `interventions` table of the entries matching `f` with an id up to `upto_id`
    (rows of rep_id, intervention, started_on, ended_on), oldest start first (then as recorded), in lists
    of at most `chunk` rows read from the database cursor as they are asked for: an export of any size
    holds one list at a time (on PostgreSQL a server-side cursor, in the session's transaction: the
    export's snapshot, `serving.exports.snapshot`)."""
    wanted = _entry_conditions(session, f)
    if wanted is None:
        return
    q = (
        select(
            InterventionLog.rep_id,
            InterventionLog.intervention,
            InterventionLog.started_on,
            InterventionLog.ended_on,
        )
        .where(*wanted)
        .order_by(InterventionLog.started_on, InterventionLog.id)
    )
    yield from read_in_chunks(session, q, InterventionLog.id, upto_id, chunk)


def read_in_chunks(
    session: Session, query: Select, id_column: Any, upto_id: int | None, chunk: int = 1000
) -> Iterator[list[Any]]:
    """The rows of `query` whose `id_column` is at most `upto_id` (none when it is None: nothing matched
    when the export was asked for), in lists of at most `chunk` rows read from the database cursor as they
    are asked for: an export of any size holds one list at a time (on PostgreSQL a server-side cursor, in
    the session's transaction). Bounding by the newest id at the time of asking keeps rows written while
    the export is being sent out of it on SQLite; on PostgreSQL, where a row may commit after others with
    higher ids, the session's snapshot does (`serving.exports.snapshot`). The exports of the intervention
    log and of the audit trail."""
    if upto_id is None:
        return
    q = query.where(id_column <= upto_id).execution_options(yield_per=chunk)
    for part in session.execute(q).partitions():
        yield list(part)


# -- idempotency keys ----------------------------------------------------------------------------
def remembered_answer(session: Session, user_id: int, key: str, now: dt.datetime) -> IdempotencyKey | None:
    """The answer kept for the user's `Idempotency-Key`, or None. Keys older than IDEMPOTENCY_KEY_HOURS
    (anyone's) are deleted first: they are forgotten, and nothing else would delete them. The caller holds
    the write lock and the key's lock."""
    session.execute(
        delete(IdempotencyKey).where(
            IdempotencyKey.created_at <= now - dt.timedelta(hours=IDEMPOTENCY_KEY_HOURS)
        )
    )
    return session.scalars(
        select(IdempotencyKey).where(IdempotencyKey.user_id == user_id, IdempotencyKey.key == key)
    ).first()


# -- users' preferences --------------------------------------------------------------------------
def user_lang(session: Session, user_id: int) -> str | None:
    """The dashboard language the user chose last, or None when they never chose."""
    return session.scalar(select(User.lang).where(User.id == user_id))


def set_user_lang(session: Session, user_id: int, lang: str) -> None:
    """Remember the user's language (the caller commits); `lang` must be a supported one."""
    if lang not in LANGS:
        raise UserError(f"unknown language {lang!r}; choose one of {', '.join(LANGS)}")
    session.execute(update(User).where(User.id == user_id).values(lang=lang))


# -- track record: how each batch's list turned out -------------------------------------------------
TRACK_LOOKBACK_DAYS = 731  # batches of the last two years are judged again by each job


def batches_to_judge(session: Session, as_of: dt.date) -> list[Job]:
    """Succeeded batch jobs of an earlier as-of day (within TRACK_LOOKBACK_DAYS) that still have scores of a
    period ending before `as_of`: the lists whose outcomes a job as of `as_of` can know."""
    since = as_of - dt.timedelta(days=TRACK_LOOKBACK_DAYS)
    finished = select(Score.job_id).where(Score.job_id == Job.id, Score.period_end < as_of).limit(1).exists()
    q = (
        select(Job)
        .where(Job.status == "succeeded", Job.as_of < as_of, Job.as_of >= since, finished)
        .order_by(Job.as_of, Job.created_at)
    )
    return list(session.scalars(q))


def batch_before(session: Session, job: Job) -> tuple[Job | None, bool]:
    """(the succeeded batch just before `job`: the newest of an earlier as-of day, or of the same day
    made earlier (a re-score); whether a succeeded batch of a later as-of day exists, which makes
    `job` a backfill). What the job's alerts compare with, and whether they are news."""
    others = select(Job).where(Job.status == "succeeded", Job.id != job.id)
    later = session.scalar(select(func.count()).select_from(others.where(Job.as_of > job.as_of).subquery()))
    before = session.scalars(
        others.where(
            (Job.as_of < job.as_of) | ((Job.as_of == job.as_of) & (Job.created_at < job.created_at))
        ).order_by(Job.as_of.desc(), Job.created_at.desc())
    ).first()
    return before, bool(later)


def batch_scores(session: Session, job_id: str) -> list[dict[str, Any]]:
    """A batch's stored scores, the columns the track record reads."""
    cols = (
        Score.rep_id,
        Score.period_start,
        Score.period_end,
        Score.as_of,
        Score.risk,
        Score.risk_band,
        Score.attainment_to_date,
        Score.model_version,
    )
    return [dict(r._mapping) for r in session.execute(select(*cols).where(Score.job_id == job_id))]


def _upsert(session: Session):
    """The dialect's INSERT with ON CONFLICT (the service runs on SQLite and PostgreSQL)."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert


def save_track_records(
    session: Session, figures: Mapping[str, dict[str, Any]], *, judged_by: str, judged_as_of: dt.date
) -> None:
    """Store each judged batch's figures ({job id: figures}), replacing a record judged on the same day
    or an earlier one, never a later one (a job run again for an old day knows fewer outcomes). One
    statement a batch, an upsert: two jobs judging the same batch at once cannot collide."""
    upsert = _upsert(session)
    now = utcnow()
    for job_id, row in figures.items():
        values = {
            "job_id": job_id,
            "judged_by": judged_by,
            "judged_as_of": judged_as_of,
            "computed_at": now,
            "figures": jsonable(dict(row)),
        }
        stmt = upsert(TrackRecord).values(**values)
        session.execute(
            stmt.on_conflict_do_update(
                index_elements=[TrackRecord.job_id],
                set_={k: stmt.excluded[k] for k in values if k != "job_id"},
                where=TrackRecord.judged_as_of <= stmt.excluded.judged_as_of,
            )
        )


def save_outcomes(session: Session, rows: list[dict[str, Any]], *, judged_by: str, known_on: dt.date) -> int:
    """Store how reps' periods ended (rep_id, period_start, period_end, attainment, missed), replacing an
    outcome known on the same day or an earlier one, never a later one (as `save_track_records`)."""
    if not rows:
        return 0
    upsert = _upsert(session)
    values = [
        {
            "rep_id": str(r["rep_id"]),
            "period_start": to_date(r["period_start"]),
            "period_end": to_date(r["period_end"]),
            "attainment": jsonable(r.get("attainment")),
            "missed": bool(r["missed"]),
            "known_on": known_on,
            "judged_by": judged_by,
        }
        for r in rows
    ]
    for chunk in _chunks(values, 100):  # 7 parameters a row: within SQLite's oldest limit, 999
        stmt = upsert(PeriodOutcome).values(chunk)
        session.execute(
            stmt.on_conflict_do_update(
                index_elements=[PeriodOutcome.rep_id, PeriodOutcome.period_start],
                set_={k: stmt.excluded[k] for k in chunk[0] if k not in ("rep_id", "period_start")},
                where=PeriodOutcome.known_on <= stmt.excluded.known_on,
            )
        )
    return len(values)


def rep_outcomes(session: Session, rep_id: str) -> dict[dt.date, PeriodOutcome]:
    """The rep's stored period outcomes by period start."""
    rows = session.scalars(select(PeriodOutcome).where(PeriodOutcome.rep_id == rep_id))
    return {o.period_start: o for o in rows}


def track_records(session: Session, limit: int = 100) -> list[tuple[TrackRecord, Job]]:
    """The judged batches, newest as-of day first (then newest job)."""
    q = (
        select(TrackRecord, Job)
        .join(Job, Job.id == TrackRecord.job_id)
        .order_by(Job.as_of.desc(), Job.created_at.desc())
        .limit(limit)
    )
    return [(r, j) for r, j in session.execute(q)]
