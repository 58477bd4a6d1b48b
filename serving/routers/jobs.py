"""Batch scoring jobs (HR): start one for an as-of day over the configured data folder, poll it, download it."""

from __future__ import annotations

from pathlib import Path as PathLib
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import FileResponse
from sqlalchemy import func, select

from serving import audit, exports
from serving.auth import Principal
from serving.db.engine import commit
from serving.db.schema import Job
from serving.deps import ModelDep, RequestIdDep, SessionDep, require
from serving.http_errors import AUTHED, ApiError, responses
from serving.jobs import job_notes
from serving.retention import is_purged, job_file
from serving.schemas import JobIn, JobListOut, JobOut

router = APIRouter(tags=["jobs"])
HR = Annotated[Principal, Depends(require("hr"))]
JobId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$", description="A job id.")]
PARQUET = "application/vnd.apache.parquet"


def job_out(job: Job, jobs_dir: PathLib) -> JobOut:
    """The job as the API shows it; `jobs_dir`, the runner's, holds its reports made so far."""
    from serving.reports import made_languages

    path = job_file(jobs_dir, job) if job.status == "succeeded" else None
    return JobOut(
        id=job.id,
        status=job.status,
        as_of=job.as_of,
        model_version=job.model_version,
        data_digest=job.data_digest,
        created_by=job.created_by,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        error=job.error,
        error_code=job.error_code,
        rows=job.n_rows,
        download=f"/api/v1/jobs/{job.id}/scores" if job.status == "succeeded" and job.output_path else None,
        notes=job_notes(job),
        reports=made_languages(path.parent) if path is not None else [],
    )


@router.post(
    "/jobs",
    response_model=JobOut,
    status_code=201,
    summary="Start a batch job (or get the existing one for the same data, as-of day and model version)",
    responses={
        200: {"model": JobOut, "description": "The same job was asked for before: here it is."},
        **responses(*AUTHED, 400, 409, 413, 415, 422, 429),
    },
)
def create_job(
    request: Request,
    response: Response,
    body: JobIn,
    principal: HR,
    session: SessionDep,
    model: ModelDep,
    rid: RequestIdDep,
) -> JobOut:
    job, created = request.app.state.runner.submit(session, principal, body.as_of, model, rid)
    if not created:
        response.status_code = 200
        audit.record(
            session, principal, "job.reuse", "job", job.id, model_version=job.model_version, request_id=rid
        )
        commit(session)
    return job_out(job, request.app.state.runner.jobs_dir)


@router.get(
    "/jobs",
    response_model=JobListOut,
    summary="Batch jobs, newest first, paged",
    responses=responses(*AUTHED, 422),
)
def list_jobs(
    request: Request,
    principal: HR,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500, description="Jobs per page.")] = 50,
    offset: Annotated[
        int, Query(ge=0, le=10_000_000, description="Jobs to skip (paging; `total` says how many).")
    ] = 0,
    status: Annotated[
        list[Literal["queued", "running", "succeeded", "failed"]] | None,
        Query(description="Only jobs in these states (repeat the parameter), e.g. the newest succeeded one."),
    ] = None,
) -> JobListOut:
    request.app.state.runner.reap(session)
    commit(session)
    wanted = [Job.status.in_(sorted(set(status)))] if status else []
    total = session.scalar(select(func.count()).select_from(Job).where(*wanted)) or 0
    rows = session.scalars(
        select(Job).where(*wanted).order_by(Job.created_at.desc(), Job.id).limit(limit).offset(offset)
    ).all()
    return JobListOut(
        total=total,
        limit=limit,
        offset=offset,
        items=[job_out(j, request.app.state.runner.jobs_dir) for j in rows],
    )


def _get_job(request: Request, session, job_id: str) -> Job:
    request.app.state.runner.reap(session)
    commit(session)
    job = session.get(Job, job_id)
    if job is None:
        raise ApiError(404, f"job {job_id} not found")
    return job


def _finished_file(request: Request, session, job_id: str, what: str):
    """(job, its scores file) of a succeeded job whose file is there: else 404, 409 (not succeeded:
    `what` exists once it has) or 410 (purged, or lost)."""
    job = _get_job(request, session, job_id)
    if is_purged(job):
        raise ApiError(
            410,
            f"the file of job {job_id} was deleted by a retention purge (repradar purge); run the job again",
        )
    if job.status != "succeeded" or not job.output_path:
        raise ApiError(409, f"job {job_id} is {job.status}; {what} once it has succeeded")
    path = job_file(request.app.state.runner.jobs_dir, job)
    if not path.exists():
        # the job exists (a 404 would say it does not): its file was lost, e.g. a restore without it
        raise ApiError(410, f"the file of job {job_id} is gone from the service's disk; run the job again")
    return job, path


@router.get(
    "/jobs/{job_id}", response_model=JobOut, summary="A job's status", responses=responses(*AUTHED, 404, 422)
)
def get_job(request: Request, job_id: JobId, principal: HR, session: SessionDep) -> JobOut:
    return job_out(_get_job(request, session, job_id), request.app.state.runner.jobs_dir)


@router.get(
    "/jobs/{job_id}/scores",
    summary="Download a finished job's scores file (Parquet, or CSV with format=csv)",
    response_class=Response,
    responses={
        200: {
            "description": "The scores file of the output contract.",
            "content": {
                PARQUET: {"schema": {"type": "string", "format": "binary"}},
                "text/csv": {"schema": {"type": "string"}},
            },
        },
        **responses(*AUTHED, 404, 409, 410, 422),
    },
)
def download(
    request: Request,
    job_id: JobId,
    principal: HR,
    session: SessionDep,
    rid: RequestIdDep,
    format: Annotated[Literal["parquet", "csv"], Query()] = "parquet",
):
    job, path = _finished_file(request, session, job_id, "its file exists")
    name, csv_path = f"scores_{job.as_of.isoformat()}_{job.model_version}", path.with_suffix(".csv")
    if request.method == "HEAD" and format == "csv" and not csv_path.exists():
        return exports.head_only("text/csv", f"{name}.csv")  # the CSV copy is made by a GET, not a HEAD
    if request.method != "HEAD":  # a HEAD sends no file: no download happened, none is recorded
        audit.record(
            session,
            principal,
            "job.download",
            "job",
            job_id,
            model_version=job.model_version,
            detail={"format": format, "rows": job.n_rows},
            request_id=rid,
        )
        commit(session)
    if format == "csv":
        if not csv_path.exists():  # made once, with the CSV conventions of the scores file
            from models.scoring import read_scores, write_scores

            write_scores(read_scores(path), csv_path)
        return FileResponse(csv_path, media_type="text/csv", filename=f"{name}.csv")
    return FileResponse(path, media_type=PARQUET, filename=f"{name}.parquet")


@router.get(
    "/jobs/{job_id}/report",
    summary="HR's quarterly report for a finished job's scores (HTML, PDF or the figures as JSON)",
    response_class=Response,
    responses={
        200: {
            "description": "The report of `repradar report` for the job's scores: made on the first "
            "request (seconds to a minute), then served from the job's folder.",
            "content": {
                "text/html": {"schema": {"type": "string"}},
                "application/pdf": {"schema": {"type": "string", "format": "binary"}},
                "application/json": {"schema": {"type": "object"}},
            },
        },
        **responses(*AUTHED, 404, 409, 410, 422, 503),
    },
)
def report(
    request: Request,
    job_id: JobId,
    principal: HR,
    session: SessionDep,
    rid: RequestIdDep,
    lang: Annotated[Literal["en", "zh-CN"], Query(description="The report's language.")] = "en",
    format: Annotated[Literal["html", "pdf", "json"], Query()] = "html",
    refresh: Annotated[
        bool,
        Query(description="Make it again (e.g. after more interventions were recorded): it is made once."),
    ] = False,
):
    from repradar.errors import UserError
    from serving.reports import FORMATS, job_report

    job, path = _finished_file(request, session, job_id, "its report can be made")
    session.rollback()  # the build takes seconds: hold no transaction (nor SQLite's lock) meanwhile
    try:
        files = job_report(request.app.state.settings, request.app.state.sessions, job, path, lang, refresh)
    except UserError as exc:  # the job's data folder can no longer make it (moved, changed, deleted)
        raise ApiError(409, f"the report of job {job_id} cannot be made: {exc}") from None
    if format not in files:
        raise ApiError(
            503,
            "the PDF could not be printed (Chromium is missing or failed; the service log says why); the HTML is there",
        )
    if request.method != "HEAD":
        audit.record(
            session,
            principal,
            "job.report",
            "job",
            job_id,
            model_version=job.model_version,
            detail={"format": format, "lang": lang, **({"refresh": True} if refresh else {})},
            request_id=rid,
        )
        commit(session)
    name = f"report_{job.as_of.isoformat()}_{job.model_version}_{lang}.{format}"
    inline = "inline" if format != "json" else "attachment"
    return FileResponse(
        files[format], media_type=FORMATS[format], filename=name, content_disposition_type=inline
    )
