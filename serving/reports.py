"""HR's quarterly report for a finished batch job, made by the service (`repradar report`'s code).

Built on first request into the job's folder (`report-<lang>.html`, `.pdf`, `.json`), or right after the
job in the languages of REPRADAR_JOB_REPORTS (`JobRunner.prebuild_reports`), and served from there; the
inputs are the job's scores file, its data folder as known on its as-of day, the service's intervention
log and the earlier batches' lists (the report's "how earlier scores turned out").
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from repradar.errors import UserError
from repradar.settings import Settings
from serving import store
from serving.db.schema import Job

log = logging.getLogger("repradar.serving.reports")

FORMATS = {"html": "text/html; charset=utf-8", "pdf": "application/pdf", "json": "application/json"}
_LOCKS: dict[tuple[str, str], threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


def report_paths(folder: Path, lang: str) -> dict[str, Path]:
    """Where a job's report in `lang` lives, by format, in the job's folder."""
    html = Path(folder) / f"report-{lang}.html"
    return {"html": html, "pdf": html.with_suffix(".pdf"), "json": html.with_suffix(".json")}


def cached_reports(folder: Path) -> list[Path]:
    """Every report file a job's folder holds (each language and format)."""
    return sorted(p for p in Path(folder).glob("report-*") if p.suffix in (".html", ".pdf", ".json"))


def made_languages(folder: Path) -> list[str]:
    """Languages whose report a job's folder holds (its HTML and JSON are written together, the PDF after)."""
    from models.i18n import LANGUAGES

    return [lang for lang in LANGUAGES if report_paths(folder, lang)["html"].exists()]


def _lock(job_id: str, lang: str) -> threading.Lock:
    with _LOCKS_GUARD:
        return _LOCKS.setdefault((job_id, lang), threading.Lock())


def job_report(
    settings: Settings,
    sessions: sessionmaker[Session],
    job: Job,
    scores_path: Path,
    lang: str,
    refresh: bool = False,
) -> dict[str, Path]:
    """The job's report files in `lang` ({format: path}; no "pdf" when Chromium could not print it),
    built once (again with `refresh`: the intervention log has grown since): two requests at once wait
    for one build. UserError when its data cannot make one."""
    paths = report_paths(scores_path.parent, lang)
    with _lock(job.id, lang):
        if refresh:
            for p in paths.values():
                p.unlink(missing_ok=True)
        for _attempt in range(2):
            if paths["html"].exists():
                break
            before = _stamp(scores_path)
            _build(settings, sessions, job, scores_path, paths["html"], lang)
            if _stamp(scores_path) == before:
                break
            # an erasure (`forget`, possibly by another process) rewrote the scores file, or a purge removed
            # it, while the report was made from the old one: what it wrote may name an erased rep
            for p in paths.values():
                p.unlink(missing_ok=True)
            if not scores_path.exists():
                raise UserError(f"the scores of job {job.id} were purged while its report was made")
        if not paths["html"].exists():
            raise UserError(f"the scores of job {job.id} changed twice while its report was made; ask again")
    return {fmt: p for fmt, p in paths.items() if p.exists()}


def _stamp(path: Path) -> tuple[int, int, int] | None:
    """What changes when a file is replaced or rewritten (None once it is gone)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


def _build(settings, sessions, job: Job, scores_path: Path, out: Path, lang: str) -> None:
    import pandas as pd

    from features.io import load_folder
    from models.scoring import read_scores
    from reporting.report import make_report
    from reporting.settings import ReportSettings

    folder = Path(job.data_dir)
    if not folder.is_dir():
        raise UserError(f"the data folder of job {job.id} ({folder}) is gone: the report reads it")
    tables = load_folder(folder)
    with sessions() as s:
        earlier = _earlier_lists(s, job)
        entries = store.intervention_log_rows(s)
    known = set(tables.reps["rep_id"].astype(str))
    interventions = pd.DataFrame(
        [e for e in entries if e["rep_id"] in known],
        columns=["rep_id", "intervention", "started_on", "ended_on"],
    )
    if len(interventions) < len(entries):  # erased or renamed reps: the report reads the folder's reps
        log.info(
            "report of job %s: %d log entries of reps not in its data folder left out",
            job.id,
            len(entries) - len(interventions),
        )
    rs = ReportSettings()
    res = make_report(
        read_scores(scores_path),
        tables,
        settings,
        out=out,
        report_settings=rs,
        interventions=interventions if len(interventions) else None,
        pdf=Path(rs.chromium).exists(),
        lang=lang,
        earlier=earlier,
    )
    if res.pdf_error:
        log.warning("report of job %s: the PDF was not printed (%s)", job.id, res.pdf_error)


def _earlier_lists(session: Session, job: Job):
    """The lists of earlier succeeded batches (the newest job of each as-of day), for the report's
    section on how earlier scores turned out; None without any."""
    import pandas as pd

    newest: dict = {}
    for j in store.batches_to_judge(session, job.as_of):  # oldest first: a later job of a day wins
        newest[j.as_of] = j.id
    frames = [pd.DataFrame(store.batch_scores(session, job_id)) for job_id in newest.values()]
    frames = [f for f in frames if len(f)]
    return pd.concat(frames, ignore_index=True) if frames else None
