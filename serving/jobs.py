"""Batch scoring jobs: persisted, deduplicated by (data, as-of, model version), never 'running' forever.

Jobs run in a small thread pool of the service process. Each unfinished job carries the id of the
process that owns it and a heartbeat that process refreshes; a job whose heartbeat stops (the
process died or was restarted) is reported failed, at the latest `job_stale_after_s` later.
"""

from __future__ import annotations

import datetime as dt
import errno
import hashlib
import json
import logging
import os
import shutil
import socket
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import event, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from repradar.errors import UserError
from repradar.files import NOT_A_FOLDER, unwritable
from repradar.settings import Settings
from serving import audit, store
from serving.auth import Principal
from serving.db.engine import begin_write, commit, unwritable_reason
from serving.db.schema import Job, utcnow
from serving.retention import job_file

log = logging.getLogger("repradar.serving.jobs")

# a scores file that cannot be written for the disk's sake: said as such, not as an internal error
_DISK_ERRNOS = {
    errno.ENOSPC: "its disk is full",
    errno.EDQUOT: "the disk quota is exceeded",
    errno.EROFS: "it is on a read-only file system",
}

UNFINISHED = ("queued", "running")


# Why a job request was refused (messages `jobs.refused.<code>`) or a job failed (`jobs.failure.<code>`,
# stored in `jobs.error_code` beside the English text).
REFUSAL_CODES = (
    "as_of_outside",
    "no_data_dir",
    "data_dir_missing",
    "no_newest_day",
    "no_tables",
    "output_unwritable",
    "no_model",
    "no_runner",
    "too_many",
)
FAILURE_CODES = ("stopped", "worker_lost", "data", "internal")


class JobRefused(Exception):
    """A job request the service refuses; `code` and `params` let the dashboard say it in the page's language."""

    def __init__(self, message: str, code: str, **params: Any):
        if code not in REFUSAL_CODES:
            raise ValueError(f"unknown refusal code {code!r}")
        super().__init__(message)
        self.code = code
        self.params = {k: str(v) for k, v in params.items()}


class ServiceUnavailable(JobRefused):
    """The service cannot do this now (no model loaded yet); the caller may retry: HTTP 503."""


class TooManyJobs(JobRefused):
    """Too many unfinished jobs: HTTP 429."""


class Conflict(JobRefused):
    """The request cannot be served in the service's configuration: HTTP 409."""


class OutsideData(JobRefused, UserError):
    """The as-of day lies outside every quota period of the data: HTTP 400, before any work."""


def data_digest(folder: Path) -> str:
    """SHA-256 over the contract files of a folder (names and contents), so 'same data' means same bytes."""
    from features.io import folder_digest

    digest = folder_digest(folder)
    if digest is None:
        raise Conflict(
            f"the data folder {folder} holds no .csv or .parquet tables", "no_tables", folder=folder
        )
    return digest


def job_notes(job: Job) -> list[str]:
    """The notes stored with a job (`Job.notes`, a JSON list); none for jobs run before they were kept."""
    try:
        notes = json.loads(job.notes) if job.notes else []
    except ValueError:
        return []
    return [str(n) for n in notes] if isinstance(notes, list) else []


def newest_as_of(folder: Path) -> dt.date | None:
    """The first day that sees the data's latest event (the day after it), kept within the quota
    periods: the newest picture a batch can give (a later day sees nothing newer, and every risk rises).
    None when the quotas or the events cannot be read."""
    from features.io import latest_event_day, quota_span

    span = quota_span(folder)
    latest = latest_event_day(folder) if span is not None else None
    if span is None or latest is None:
        return None
    return min(max(latest + dt.timedelta(days=1), span[0]), span[1])


def check_as_of(folder: Path, as_of: dt.date) -> None:
    """Refuse, before any work, an as-of day outside every quota period of the data."""
    from features.io import quota_span

    span = quota_span(folder)
    if span is None:  # unreadable quotas: validation names the problem when the job runs
        return
    first, last = span
    if not first <= as_of <= last:
        # a day after the last period is most often the new period's first weeks, before its quotas are
        # loaded: say what to add, not only where the data ends
        hint = (
            "; if it falls in a new period, add that period's quota rows to the quotas table first"
            if as_of > last
            else ""
        )
        raise OutsideData(
            f"as_of {as_of.isoformat()} is outside the data: its quota periods run from "
            f"{first.isoformat()} to {last.isoformat()}; pick a day in that range{hint}",
            "as_of_outside",
            as_of=as_of.isoformat(),
            first=first.isoformat(),
            last=last.isoformat(),
        )


def _file_kept(jobs_dir: Path, job: Job) -> bool:
    """Whether a succeeded job's scores file is still there (a purge clears the path; a lost disk, the file)."""
    path = job_file(jobs_dir, job)
    return path is not None and path.exists()


def instance_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _pid_dead_here(worker: str | None) -> bool:
    """True when `worker` ran on this host under a pid that no longer exists."""
    if not worker:
        return False
    host, _, rest = worker.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


@dataclass
class Judged:
    """What a job learnt of the earlier batches: {job id: track-record figures} and the listed reps'
    period outcomes (rep_id, period_start, period_end, attainment, missed)."""

    figures: dict[str, dict] = field(default_factory=dict)
    outcomes: list[dict] = field(default_factory=list)


class JobRunner:
    def __init__(self, settings: Settings, sessions: sessionmaker[Session]):
        self.settings = settings
        self.sessions = sessions
        self.instance = instance_id()
        self._pool: ThreadPoolExecutor | None = None
        # jobs of this process that are queued or scoring in its pool: only they get a heartbeat, so that a
        # job whose thread ended without recording its outcome (the database was down then) goes stale
        self._live: set[str] = set()
        self._live_lock = threading.Lock()
        # REPRADAR_JOB_REPORTS: reports are made one at a time, each on a daemon thread of its own: the next
        # batch waits for none, and a stopping service does not wait for one (a report is written whole or
        # not at all, so one cut short leaves nothing to serve)
        self._report_lock = threading.Lock()
        self._stopping = threading.Event()

    # ---- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        self._pool = ThreadPoolExecutor(self.settings.job_workers, thread_name_prefix="repradar-job")
        with begin_write(self.sessions) as s:
            self.reap(s, startup=True)

    def stop(self) -> None:
        """At shutdown: jobs this process still owns will not finish, so say so now."""
        self._stopping.set()
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        with begin_write(self.sessions) as s:
            for job in s.scalars(select(Job).where(Job.worker == self.instance, Job.status.in_(UNFINISHED))):
                self._fail(s, job, "the service stopped before the job finished; start it again", "stopped")

    def _set_live(self, job_id: str, live: bool) -> None:
        with self._live_lock:
            (self._live.add if live else self._live.discard)(job_id)

    def beat(self) -> None:
        with self._live_lock:
            live = list(self._live)
        with begin_write(self.sessions) as s:
            if live:
                s.execute(
                    update(Job)
                    .where(Job.id.in_(live), Job.worker == self.instance, Job.status.in_(UNFINISHED))
                    .values(heartbeat_at=utcnow())
                )
            self.reap(s)

    def reap(self, session: Session, startup: bool = False) -> int:
        """Fail unfinished jobs whose owner is gone (no heartbeat for too long, or a dead pid on this host),
        and this process's own jobs that stopped beating because their thread ended without recording how
        (the database was unavailable when it tried)."""
        limit = utcnow() - dt.timedelta(seconds=self.settings.job_stale_after_s)
        n = 0
        with self._live_lock:
            live = set(self._live)
        for job in session.scalars(select(Job).where(Job.status.in_(UNFINISHED))):
            stale = job.heartbeat_at is None or job.heartbeat_at < limit
            if job.worker == self.instance:
                if stale and job.id not in live:  # a live one only missed beats (the database was down)
                    self._fail(
                        session,
                        job,
                        "the job's outcome could not be recorded (the service's database was unavailable "
                        "when it ended); ask for it again",
                        "internal",
                    )
                    n += 1
            elif stale or _pid_dead_here(job.worker):
                self._fail(
                    session,
                    job,
                    "the worker running this job stopped (service restarted or crashed)",
                    "worker_lost",
                )
                n += 1
        return n

    def _fail(self, session: Session, job: Job, message: str, code: str) -> None:
        # logged once the failure is stored: a log saying "failed" while the job stays running (the
        # database refused the write) would contradict the job list and the ERROR line that follows
        job_id = job.id
        event.listen(
            session,
            "after_commit",
            lambda _s: log.warning("batch job %s failed (%s): %s", job_id, code, message),
            once=True,
        )
        # a file the job wrote before it failed is no job's file: nothing would serve or purge it
        shutil.rmtree(self.output_path(job.id).parent, ignore_errors=True)
        job.status = "failed"
        job.error = message
        job.error_code = code
        job.active_key = None  # a new request for the same work starts a new job
        job.finished_at = utcnow()
        audit.record(
            session,
            audit.SYSTEM,
            "job.failed",
            "job",
            job.id,
            model_version=job.model_version,
            outcome="failed",
            detail={"error": message},
        )

    # ---- requests --------------------------------------------------------------------------
    def submit(
        self, session: Session, who: Principal, as_of: dt.date | None, model: Any, request_id: str | None
    ) -> tuple[Job, bool]:
        """The job for (data, as-of, model version): the existing one if any, else a new queued one.
        `as_of` None: the data's newest day (`newest_as_of`)."""
        if self.settings.data_dir is None:
            raise Conflict(
                "no data folder is configured: set REPRADAR_DATA_DIR and restart the service", "no_data_dir"
            )
        folder = Path(self.settings.data_dir).expanduser().resolve()
        if not folder.is_dir():
            raise Conflict(
                f"the configured data folder {folder} does not exist", "data_dir_missing", folder=folder
            )
        if model is None:
            raise ServiceUnavailable(
                "no champion model is loaded yet: promote one, or wait for the service", "no_model"
            )
        chosen = as_of is None
        if chosen and (as_of := newest_as_of(folder)) is None:
            raise Conflict(
                f"the newest day of the data in {folder} cannot be read (its quotas or its events): give "
                "as_of, the day to score",
                "no_newest_day",
                folder=folder,
            )
        check_as_of(folder, as_of)
        digest = data_digest(folder)
        version = str(model.version)
        key = hashlib.sha256(f"{digest}|{as_of.isoformat()}|{version}".encode()).hexdigest()
        self.reap(session)
        commit(session)
        found = session.scalar(select(Job).where(Job.active_key == key))
        replaces = None
        if found is not None and found.status == "succeeded" and not _file_kept(self.jobs_dir, found):
            # its file was purged (repradar purge) or lost: asking again runs the work again, as the
            # download's 410 says, rather than handing back a job whose file cannot come back
            replaces, found.active_key = found.id, None
            session.flush()
            found = None
        if found is not None:
            return found, False
        unfinished = session.scalar(select(func.count()).select_from(Job).where(Job.status.in_(UNFINISHED)))
        if (unfinished or 0) >= self.settings.max_queued_jobs:
            raise TooManyJobs(
                f"{unfinished} batch jobs are unfinished (the limit is {self.settings.max_queued_jobs}); "
                "retry when one has finished",
                "too_many",
                n=unfinished,
                limit=self.settings.max_queued_jobs,
            )
        self.check_output_folder()
        now = utcnow()
        job = Job(
            id=uuid.uuid4().hex,
            dedupe_key=key,
            active_key=key,
            data_dir=str(folder),
            data_digest=digest,
            as_of=as_of,
            model_version=version,
            status="queued",
            created_by=who.name,
            created_at=now,
            heartbeat_at=now,
            worker=self.instance,
        )
        session.add(job)
        self._set_live(job.id, True)  # before it is visible to the heartbeat's reaper
        audit.record(
            session,
            who,
            "job.create",
            "job",
            job.id,
            model_version=version,
            detail={"as_of": as_of.isoformat(), "data_digest": digest}
            | ({"replaces": replaces} if replaces else {})
            | ({"as_of_chosen": "newest"} if chosen else {}),
            request_id=request_id,
        )
        try:
            commit(session)
        except IntegrityError:  # the same job was created by a concurrent request
            self._set_live(job.id, False)
            session.rollback()
            found = session.scalar(select(Job).where(Job.active_key == key))
            if found is None:
                raise
            return found, False
        if self._pool is None:
            self._set_live(job.id, False)
            raise ServiceUnavailable("the job runner is not started", "no_runner")
        self._pool.submit(self._run, job.id, model)
        return job, True

    @property
    def jobs_dir(self) -> Path:
        return self.settings.resolved_home / "jobs"

    def output_path(self, job_id: str) -> Path:
        return self.jobs_dir / job_id / "scores.parquet"

    def check_output_folder(self) -> None:
        """Refuse a new job, before any scoring, when its scores file could not be written (a read-only
        REPRADAR_HOME, a file where the jobs folder should be): else it failed only after all of its work."""
        if problem := unwritable(self.output_path(uuid.uuid4().hex)):
            folder, why = problem
            why = f"{folder} is {why}" if why == NOT_A_FOLDER else f"cannot write in {folder}: {why}"
            raise Conflict(
                f"the service cannot store batch files ({why}); make {self.settings.resolved_home / 'jobs'} "
                "a folder the service's user may write to (or set REPRADAR_HOME to one) and ask again",
                "output_unwritable",
                folder=folder,
            )

    # ---- the work --------------------------------------------------------------------------
    def _run(self, job_id: str, model: Any) -> None:
        try:
            self._run_job(job_id, model)
        except (
            Exception
        ) as exc:  # its failure could not be recorded either: the reaper fails it once it is stale
            if why := unwritable_reason(exc):  # no bug: one line says it, without a traceback
                log.error(
                    "batch job %s: its outcome could not be recorded: the service's database cannot be "
                    "written (%s); it is failed once the database can be written again",
                    job_id,
                    why,
                )
            else:
                log.exception("batch job %s: its outcome could not be recorded in the database", job_id)
        finally:
            self._set_live(job_id, False)

    def _run_job(self, job_id: str, model: Any) -> None:
        with begin_write(self.sessions) as s:
            started = s.execute(
                update(Job)
                .where(Job.id == job_id, Job.status == "queued")
                .values(status="running", started_at=utcnow(), heartbeat_at=utcnow())
            ).rowcount
            job = s.get(Job, job_id)
            folder, as_of = Path(job.data_dir), job.as_of
        if not started:
            return
        try:
            frame, reps, notes = self._score(folder, as_of, model)
            out = self.output_path(job_id)
            out.parent.mkdir(parents=True, exist_ok=True)
            from models.scoring import write_scores

            try:
                write_scores(frame, out)
            except OSError as exc:
                if exc.errno not in _DISK_ERRNOS:
                    raise
                shutil.rmtree(out.parent, ignore_errors=True)  # the job's folder: nothing half-written stays
                self._finish_failed(
                    job_id,
                    f"the scores file could not be written in {out.parent.parent} ({_DISK_ERRNOS[exc.errno]}); "
                    "nothing of this job was stored: an administrator must free space on that disk or make it "
                    "writable, then ask for the job again",
                    "internal",
                )
                return
            # earlier lists against the outcomes this folder holds: stored with this job's success
            judged = self._judge_earlier(folder, as_of, model)
            with begin_write(self.sessions) as s:
                done = s.execute(
                    update(Job)
                    .where(Job.id == job_id, Job.status == "running")
                    .values(
                        status="succeeded",
                        finished_at=utcnow(),
                        output_path=str(out),
                        n_rows=len(frame),
                        notes=json.dumps(notes) if notes else None,
                    )
                ).rowcount
                if not done:  # failed meanwhile (shutdown, reaper): keep it failed, store nothing
                    s.rollback()
                    shutil.rmtree(out.parent, ignore_errors=True)
                    return
                store.upsert_reps(s, reps)
                store.import_scores(s, frame, job_id=job_id)
                if judged.figures:
                    store.save_track_records(s, judged.figures, judged_by=job_id, judged_as_of=as_of)
                    store.save_outcomes(s, judged.outcomes, judged_by=job_id, known_on=as_of)
                audit.record(
                    s,
                    audit.SYSTEM,
                    "job.succeeded",
                    "job",
                    job_id,
                    model_version=str(model.version),
                    detail={"rows": len(frame)},
                )
            if self.settings.job_alerts:  # after the commit: the scores are stored whatever the channels do
                self._alert(job_id, frame, reps, folder)
            if self.settings.job_report_languages:
                threading.Thread(
                    target=self.prebuild_reports, args=(job_id,), name="repradar-report", daemon=True
                ).start()
        except UserError as exc:
            self._finish_failed(job_id, str(exc), "data")
        except Exception as exc:  # a bug or an environment problem: recorded, never 'running' forever
            if why := unwritable_reason(exc):  # nothing of the job was stored: the transaction rolled back
                self._finish_failed(
                    job_id,
                    f"the service's database cannot be written ({why}); nothing of this job was stored: an "
                    "administrator must free space on its disk or make it writable, then ask for the job again",
                    "internal",
                )
                return
            log.exception("batch job %s failed", job_id)
            self._finish_failed(job_id, f"internal error: {type(exc).__name__}: {exc}", "internal")

    def _judge_earlier(self, folder: Path, as_of: dt.date, model: Any = None) -> Judged:
        """How the earlier batches' lists turned out (reporting.track_record), against the outcomes of their
        periods that `folder` holds as known on `as_of`: {job id: figures}, and the outcomes of the listed
        reps' periods; `in_sample` says whether the version that made a list was fitted on its period.
        Never fails the job: what goes wrong is one log line, and the next job tries again."""
        try:
            with self.sessions() as s:
                lists = {b.id: store.batch_scores(s, b.id) for b in store.batches_to_judge(s, as_of)}
            lists = {k: v for k, v in lists.items() if v}
            if not lists:
                return Judged()
            import pandas as pd

            from features.io import load_folder
            from reporting.track_record import listed_outcomes, outcomes_known_on, track_record

            since = min(r["period_end"] for rows in lists.values() for r in rows)
            outcomes = outcomes_known_on(
                load_folder(folder, validate=False),
                as_of,
                since=since,
                miss_threshold=self.settings.miss_threshold,
            )
            from models.scoring import fitted_note, fitted_period_note, periods_of

            frames = {job_id: pd.DataFrame(rows) for job_id, rows in lists.items()}
            made_by = {k: set(f["model_version"].astype(str)) for k, f in frames.items()}
            serving = str(model.version) if model is not None else None
            others = self._fitted_meta({v for vs in made_by.values() if len(vs) == 1 for v in vs} - {serving})
            judged = {}
            for job_id, frame in frames.items():
                rec = track_record(frame, outcomes)
                notes = [str(n) for n in rec.notes]
                in_sample, fitted = None, None
                version = next(iter(made_by[job_id])) if len(made_by[job_id]) == 1 else None
                if version is not None and version == serving:
                    fitted = fitted_note(frame, model)  # a list rescored after the fact: no forecast
                    in_sample = fitted is not None
                elif version in others:  # another version: what its registry tags say it was fitted on
                    fitted = fitted_period_note(periods_of(frame), others[version], version)
                    in_sample = fitted is not None
                notes += [str(fitted)] if fitted else []
                for row in rec.table.to_dict("records")[:1]:  # one batch: one as-of day, one model
                    judged[job_id] = {**row, "in_sample": in_sample, "notes": notes}
            # the listed reps' outcomes, for the rep page's earlier periods
            return Judged(judged, listed_outcomes(outcomes, frames.values()).to_dict("records"))
        except Exception as exc:  # the scores are what the job is for; the track record can wait
            log.warning(
                "batch scoring as of %s: the earlier lists could not be set against their outcomes "
                "(%s: %s); the next batch job tries again",
                as_of,
                type(exc).__name__,
                exc,
            )
            return Judged()

    def _alert(self, job_id: str, frame, reps, folder: Path) -> None:
        """REPRADAR_JOB_ALERTS: each manager's digest of reps newly in the high band against the batch
        before this one (`repradar alerts`, reporting.alerts), unless a batch of a later day exists (a
        backfill is no news). Never fails the job: what happened is a note on the job and one audit
        event (`alerts.send`)."""
        from reporting.alerts import check_previous, rep_names, reps_file_columns, send_alerts

        detail: dict[str, Any] = {}
        try:
            with self.sessions() as s:
                before, backfill = store.batch_before(s, s.get(Job, job_id))
                rows = store.batch_scores(s, before.id) if before is not None and not backfill else []
            if backfill:
                note = "alerts: not sent, a batch of a later as-of day exists (this one is a backfill)"
            else:
                import pandas as pd

                # the stored rows (a purge or an erasure has taken out what the file may still hold)
                previous = pd.DataFrame(rows) if rows else None
                few = check_previous(frame, previous)  # a note when it shares few of this batch's reps
                names, unnamed = rep_names(reps, frame, columns=reps_file_columns(folder))
                result = send_alerts(frame, previous=previous, names=names, names_note=unnamed)
                detail = {
                    "previous_job": before.id if previous is not None else None,
                    "digests": len(result.digests),
                    "webhook": len(result.sent_webhook),
                    "email": len(result.sent_email),
                    "errors": len(result.errors),
                }
                note = "alerts: " + "; ".join(
                    [*result.lines(), *([few.removeprefix("note: ")] if few else [])]
                )
                for e in result.errors + result.skipped:
                    log.warning("batch job %s: alerts: %s", job_id, e)
        except Exception as exc:  # no channel configured, a channel down, a bad previous batch
            note = f"alerts: not sent: {exc}"
            detail = {"error": str(exc)[:500]}
            log.warning("batch job %s: %s", job_id, note)
        try:
            with begin_write(self.sessions) as s:
                job = s.get(Job, job_id)
                job.notes = json.dumps([*(json.loads(job.notes) if job.notes else []), note])
                audit.record(
                    s,
                    audit.SYSTEM,
                    "alerts.send",
                    "job",
                    job_id,
                    model_version=job.model_version,
                    detail=detail,
                )
        except Exception as exc:  # the job has succeeded: its record stays as it is
            log.warning("batch job %s: what its alerts did could not be recorded (%s): %s", job_id, exc, note)

    def prebuild_reports(self, job_id: str) -> list[str]:
        """REPRADAR_JOB_REPORTS: make a succeeded job's report in each configured language now, as the
        first request would (serving.reports.job_report), so that HR's request is served from the file.
        Never fails the job: a report that cannot be made is a warning in the log, and the request for
        it says why (409). Returns the languages made."""
        made = []
        with self._report_lock:
            for lang in self.settings.job_report_languages:
                if self._stopping.is_set():  # made when first asked for, after the next start
                    break
                if self._prebuild_one(job_id, lang):
                    made.append(lang)
        return made

    def _prebuild_one(self, job_id: str, lang: str) -> bool:
        from serving.reports import job_report

        try:
            with self.sessions() as s:
                job = s.get(Job, job_id)
                path = job_file(self.jobs_dir, job) if job is not None else None
            if path is None:  # purged (or the job is gone) before its turn
                return False
            job_report(self.settings, self.sessions, job, path, lang)
        except UserError as exc:
            log.warning("batch job %s: its report in %s could not be made: %s", job_id, lang, exc)
            return False
        except Exception:
            log.exception("batch job %s: its report in %s could not be made", job_id, lang)
            return False
        log.info("batch job %s: its report in %s is made", job_id, lang)
        return True

    def _fitted_meta(self, versions: set[str]) -> dict[str, dict]:
        """{version: what it was fitted on} for registered versions other than the serving one, read from
        their registry tags (models.scoring.version_fitted_meta); a version without them is left out, and
        so is every one when the registry cannot be read (their lists' in_sample stays unknown)."""
        if not versions:
            return {}
        from models import registry
        from models.scoring import version_fitted_meta

        try:
            client = registry.configure(self.settings)
            found = {v: registry.get_version(client, self.settings.model_name, v) for v in sorted(versions)}
        except Exception as exc:
            log.warning(
                "the model registry could not be read for earlier lists' versions (%s: %s)",
                type(exc).__name__,
                exc,
            )
            return {}
        out = {v: version_fitted_meta(mv.tags or {}) for v, mv in found.items() if mv is not None}
        return {v: meta for v, meta in out.items() if meta}

    def _score(self, folder: Path, as_of: dt.date, model: Any):
        from features.contract import TABLES
        from features.io import read_raw, table_path
        from features.validation import coerce_table
        from models.scoring import score_folder

        frame = score_folder(folder, as_of, self.settings, model=model)
        # what the command line prints with the scores (`models.scoring.score_notes`: the feature build's,
        # e.g. an as-of day after the export's last event, the fitted-period and currency notes); a job
        # keeps them with itself and says them in the log
        notes = list(dict.fromkeys(filter(None, frame.attrs.get("notes") or [])))
        for note in notes:
            log.warning("batch scoring: %s", note)
        reps = coerce_table(TABLES["reps"], read_raw(table_path(folder, "reps")))
        return frame, reps, notes

    def _finish_failed(self, job_id: str, message: str, code: str) -> None:
        with begin_write(self.sessions) as s:
            job = s.get(Job, job_id)
            if job is not None and job.status in UNFINISHED:
                self._fail(s, job, message, code)
