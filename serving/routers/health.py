"""Probes and metrics: the only routes without a token."""

from __future__ import annotations

import logging
import re
import threading

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from serving.schemas import HealthOut

router = APIRouter(tags=["health"])
log = logging.getLogger("repradar.serving.health")

# guards the database's state as the readiness probe last saw it (`app.state.db_failure`: None when it
# answered, else the kind of failure): a monitor probes every few seconds, so only a change is logged
_db_state_lock = threading.Lock()


def _masked(text: str, url) -> str:
    """`text` without the database URL's password, in case a driver's message quotes the URL."""
    if url.password:
        text = text.replace(str(url.password), "***")
    return re.sub(r"(://[^:/@\s]*:)[^@\s]*@", r"\1***@", text)


def _note_database(app, failure: Exception | None, url) -> None:
    """Log the database's readiness when it changes: the failure's message (the probe answers only its kind,
    to callers without a token) when it starts or changes kind, and once when the database answers again."""
    kind = None if failure is None else type(getattr(failure, "orig", None) or failure).__name__
    with _db_state_lock:
        before = getattr(app.state, "db_failure", None)
        app.state.db_failure = kind
    if kind == before:
        return
    where = url.render_as_string(hide_password=True)
    if failure is None:
        log.warning("readiness: the database %s answers again", where)
        return
    reason = " ".join(str(getattr(failure, "orig", None) or failure).split())
    log.error("readiness: the database %s does not answer (%s): %s", where, kind, _masked(reason, url))


# The probes answer HEAD too, as every GET route does (serving.routing.with_head): uptime monitors often
# probe with HEAD, and a 405 reads as "down".
@router.get("/health/live", response_model=HealthOut, summary="The process answers")
def live(request: Request) -> HealthOut:
    # the champion in use, as the X-Model-Version header says (None before one is loaded)
    return HealthOut(status="ok", model_version=request.app.state.holder.version)


@router.get(
    "/health/ready",
    response_model=HealthOut,
    summary="Ready once the champion is loaded and the database answers",
    responses={503: {"model": HealthOut, "description": "Not ready: no champion loaded, or no database."}},
)
def ready(request: Request):
    holder = request.app.state.holder
    if holder.current is None:
        detail = holder.last_error or "the champion model is not loaded yet"
        return JSONResponse(HealthOut(status="not_ready", detail=detail).model_dump(), 503)
    sessions = request.app.state.sessions
    try:
        with sessions() as s:
            s.execute(text("SELECT 1"))
    except Exception as exc:
        _note_database(request.app, exc, sessions.kw["bind"].url)
        body = HealthOut(
            status="not_ready", model_version=holder.version, detail=f"database: {type(exc).__name__}"
        )
        return JSONResponse(body.model_dump(), 503)
    _note_database(request.app, None, sessions.kw["bind"].url)
    # still ready (the loaded champion serves), but a monitor should see that the registry disagrees: its
    # alias removed, or moved to a version that cannot be loaded
    return HealthOut(status="ready", model_version=holder.version, detail=holder.last_error)


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}, "description": "Metrics."}},
)
def metrics(request: Request) -> Response:
    m = request.app.state.metrics
    m.model_info.clear()
    if request.app.state.holder.version:
        m.model_info.labels(request.app.state.holder.version).set(1)
    return Response(generate_latest(m.registry), media_type=CONTENT_TYPE_LATEST)
