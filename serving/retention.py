"""Retention and erasure of what the service stores about named reps (`repradar purge`, `repradar forget`).

Risk scores about employees should not be kept longer than they are useful, and a person who leaves
may ask to be forgotten. Both act on the service's database and its batch files under
`REPRADAR_HOME/jobs/`; neither touches the input data folder (the company's own export) nor the audit
trail, which is append-only: it keeps rep ids (never names) as the record of who looked at what, and
records each purge and erasure itself.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from repradar.errors import UserError
from serving import audit, store
from serving.auth import Principal
from serving.db.schema import (
    AuditEvent,
    AuthFailure,
    CurrentScore,
    IdempotencyKey,
    InterventionLog,
    Job,
    PeriodOutcome,
    Rep,
    Score,
)


@dataclass
class Erased:
    """What a purge or an erasure removed (or would remove, in a dry run)."""

    scores: int = 0
    current: int = 0
    interventions: int = 0
    directory: int = 0
    job_files: list[Path] = field(default_factory=list)
    refusals: int = 0  # records of refused tokens and sign-ins (client addresses), purge only
    outcomes: int = 0  # how the rep's judged periods ended (period_outcomes)

    @property
    def total(self) -> int:
        return (
            self.scores
            + self.interventions
            + self.directory
            + len(self.job_files)
            + self.refusals
            + self.outcomes
        )

    def as_detail(self) -> dict[str, int]:
        return {
            "scores": self.scores,
            "current": self.current,
            "interventions": self.interventions,
            "directory": self.directory,
            "job_files": len(self.job_files),
            "refusals": self.refusals,
            "outcomes": self.outcomes,
        }


def job_file(jobs_dir: Path, job: Job) -> Path | None:
    """A succeeded job's scores file under `jobs_dir` (the current REPRADAR_HOME's), or None once purged.

    Found by the job's id rather than by the path recorded when it ran: in a home copied or moved since
    (docs/model.md, "Moving or copying a home") that path names the old home's file."""
    if not job.output_path:
        return None
    return Path(jobs_dir) / job.id / Path(job.output_path).name


def _job_files(jobs_dir: Path, job: Job) -> list[Path]:
    """The scores file of a job, the CSV copy the download makes beside it and the reports made of it
    (serving.reports), as far as they exist."""
    from serving.reports import cached_reports

    main = job_file(jobs_dir, job)
    if main is None:
        return []
    return [p for p in (main, main.with_suffix(".csv")) if p.exists()] + cached_reports(main.parent)


def purge_before(
    session: Session, actor: Principal, before: dt.date, jobs_dir: Path, *, dry_run: bool = False
) -> Erased:
    """Delete the scores of every as-of day before `before`, the batch files of those days' jobs,
    intervention entries that ended before it (open-ended ones are kept: they are still going on), and
    the records of refused tokens and sign-ins made before it (client addresses, kept for the throttle's
    window and otherwise deleted only when the next refusal comes).

    The job rows stay (the trail names them) with no file; their download answers 410. Files are
    listed here and deleted by `delete_files` once the caller has committed.
    """
    old = select(Score.id).where(Score.as_of < before)
    cut = dt.datetime.combine(before, dt.time(), tzinfo=dt.UTC).timestamp()  # AuthFailure.at: Unix seconds
    out = Erased(
        refusals=session.scalar(select(func.count()).select_from(AuthFailure).where(AuthFailure.at < cut))
        or 0,
        scores=session.scalar(select(func.count()).select_from(Score).where(Score.as_of < before)) or 0,
        current=session.scalar(
            select(func.count()).select_from(CurrentScore).where(CurrentScore.score_id.in_(old))
        )
        or 0,
        interventions=session.scalar(
            select(func.count()).select_from(InterventionLog).where(InterventionLog.ended_on < before)
        )
        or 0,
        outcomes=session.scalar(
            select(func.count()).select_from(PeriodOutcome).where(PeriodOutcome.period_end < before)
        )
        or 0,
    )
    jobs = session.scalars(select(Job).where(Job.as_of < before, Job.output_path.is_not(None))).all()
    for job in jobs:
        out.job_files.extend(_job_files(jobs_dir, job))
    if dry_run:
        return out
    session.execute(delete(CurrentScore).where(CurrentScore.score_id.in_(old)))
    session.execute(delete(Score).where(Score.as_of < before))
    # an idempotency key keeps its entry's answer (note, risk at record): it goes with the entry
    ended = select(InterventionLog.id).where(InterventionLog.ended_on < before)
    session.execute(delete(IdempotencyKey).where(IdempotencyKey.entry_id.in_(ended)))
    session.execute(delete(InterventionLog).where(InterventionLog.ended_on < before))
    session.execute(delete(AuthFailure).where(AuthFailure.at < cut))
    session.execute(delete(PeriodOutcome).where(PeriodOutcome.period_end < before))
    if jobs:
        session.execute(update(Job).where(Job.id.in_([j.id for j in jobs])).values(output_path=None))
    store.bump_directory(session)
    audit.record(
        session,
        actor,
        "data.purge",
        "service",
        None,
        detail={"before": before.isoformat(), **out.as_detail()},
    )
    return out


def forget_rep(
    session: Session, actor: Principal, rep_id: str, jobs_dir: Path, *, dry_run: bool = False
) -> Erased:
    """Delete everything stored about one rep: scores, the current pointer, intervention entries, the
    directory row; their rows in batch files are listed for `rewrite_files`, run after the commit (a
    second run finds any file a failed rewrite left).

    Raises UserError when the service holds nothing about the rep.
    """
    out = Erased(
        scores=session.scalar(select(func.count()).select_from(Score).where(Score.rep_id == rep_id)) or 0,
        current=session.scalar(
            select(func.count()).select_from(CurrentScore).where(CurrentScore.rep_id == rep_id)
        )
        or 0,
        interventions=session.scalar(
            select(func.count()).select_from(InterventionLog).where(InterventionLog.rep_id == rep_id)
        )
        or 0,
        directory=session.scalar(select(func.count()).select_from(Rep).where(Rep.rep_id == rep_id)) or 0,
        job_files=files_naming(jobs_dir, rep_id),
        outcomes=session.scalar(
            select(func.count()).select_from(PeriodOutcome).where(PeriodOutcome.rep_id == rep_id)
        )
        or 0,
    )
    if out.total == 0:
        raise UserError(_nothing_stored(session, rep_id))
    if dry_run:
        return out
    session.execute(delete(CurrentScore).where(CurrentScore.rep_id == rep_id))
    session.execute(delete(Score).where(Score.rep_id == rep_id))
    session.execute(delete(IdempotencyKey).where(IdempotencyKey.rep_id == rep_id))
    session.execute(delete(InterventionLog).where(InterventionLog.rep_id == rep_id))
    session.execute(delete(Rep).where(Rep.rep_id == rep_id))
    session.execute(delete(PeriodOutcome).where(PeriodOutcome.rep_id == rep_id))
    store.bump_directory(session)
    audit.record(session, actor, "rep.forget", "rep", rep_id, detail=out.as_detail())
    return out


def _nothing_stored(session: Session, rep_id: str) -> str:
    """Why there is nothing to forget: the rep was forgotten already (the trail's newest `rep.forget`
    says when and by whom; "check the id" would read as if the erasure had not happened), or the id
    is unknown."""
    done = session.scalars(
        select(AuditEvent)
        .where(AuditEvent.action == "rep.forget", AuditEvent.resource_id == rep_id)
        .order_by(AuditEvent.id.desc())
        .limit(1)
    ).first()
    nothing = (
        f"the service stores nothing about rep {rep_id!r} (no score, intervention entry, directory row or "
        "batch file names them)"
    )
    if done is not None:
        when = done.at.astimezone(dt.UTC) if done.at.tzinfo else done.at
        return (
            f"{nothing}: they were already forgotten on {when:%Y-%m-%d %H:%M} UTC by {done.actor} "
            "(audit event rep.forget); there is nothing more to delete"
        )
    return f"{nothing}; check the id"


def files_naming(jobs_dir: Path, rep_id: str) -> list[Path]:
    """Batch scores files (Parquet; their CSV copies are remade on demand) holding rows of `rep_id`."""
    if not jobs_dir.is_dir():
        return []
    return [p for p in sorted(jobs_dir.glob("*/scores.parquet")) if _rows_of(p, rep_id)]


def _rows_of(path: Path, rep_id: str) -> int:
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    ids = pq.read_table(path, columns=["rep_id"]).column("rep_id")
    return int(pc.sum(pc.equal(ids, rep_id)).as_py() or 0)


def rewrite_files(paths: list[Path], rep_id: str) -> dict[str, int]:
    """Each batch file without the rep's rows, replaced whole (beside, then renamed); CSV copies and the
    reports made of it dropped.

    Returns {job id: rows left} for the jobs' row counts.
    """
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from serving.reports import cached_reports

    left = {}
    for path in paths:
        table = pq.read_table(path)
        kept = table.filter(pc.invert(pc.equal(table.column("rep_id"), rep_id)))
        tmp = path.with_name(f".{path.name}.tmp")
        pq.write_table(kept, tmp)
        tmp.replace(path)
        path.with_suffix(".csv").unlink(missing_ok=True)
        for report in cached_reports(path.parent):  # made again without the rep when next asked for
            report.unlink(missing_ok=True)
        left[path.parent.name] = kept.num_rows
    return left


def set_job_rows(session: Session, rows: dict[str, int]) -> None:
    for job_id, n in rows.items():
        session.execute(update(Job).where(Job.id == job_id).values(n_rows=n))


def delete_files(paths: list[Path]) -> None:
    for p in paths:
        p.unlink(missing_ok=True)


def is_purged(job: Job) -> bool:
    """A job that succeeded but whose file a purge removed."""
    return job.status == "succeeded" and not job.output_path


def reps_in(folder: Path | None, rep_id: str) -> bool:
    """True when the configured data folder's `reps` table still lists the rep (the next batch brings them back)."""
    if folder is None:
        return False
    from features.io import read_raw, table_path

    path = table_path(Path(folder), "reps")
    if path is None:
        return False
    try:
        ids = read_raw(path)["rep_id"]
    except (UserError, KeyError):
        return False
    return bool((ids.astype("string") == rep_id).any())


def training_runs_holding(settings, rep_id: str) -> list[str]:
    """The MLflow training runs whose held-out feature set (`heldout/heldout_features.parquet`: the rows the
    promotion gate compares versions on, keyed by rep id) holds the rep. `forget` does not rewrite MLflow's
    artifacts (the gate needs them as trained), so it names these runs instead of claiming a full erasure."""
    import tempfile

    import mlflow.artifacts
    import pandas as pd

    from models import registry
    from models.gate import HELDOUT_ARTIFACT

    if not registry.store_exists(settings):
        return []
    client = registry.configure(settings)
    exp = client.get_experiment_by_name(settings.experiment_name)
    if exp is None:
        return []
    found = []
    for run in client.search_runs([exp.experiment_id], max_results=10_000):
        run_id = run.info.run_id
        with tempfile.TemporaryDirectory(dir=registry.scratch_dir(settings)) as tmp:
            try:
                local = mlflow.artifacts.download_artifacts(
                    run_id=run_id,
                    artifact_path=HELDOUT_ARTIFACT,
                    dst_path=tmp,
                    tracking_uri=settings.tracking_uri,
                )
                ids = pd.read_parquet(local, columns=["rep_id"])["rep_id"]
            except Exception:  # a run without the artifact (or the column) holds no rep rows there
                continue
        if bool((ids.astype("string") == rep_id).any()):
            found.append(run_id)
    return found
