"""The audit trail (HR): list with filters, export as CSV."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from serving import audit, exports
from serving.auth import Principal
from serving.db.engine import commit
from serving.deps import RequestIdDep, SessionDep, require
from serving.http_errors import AUTHED, responses
from serving.schemas import AuditEventOut, AuditListOut, IsoDateTime

router = APIRouter(tags=["audit"])
HR = Annotated[Principal, Depends(require("hr"))]
FILENAME = "repradar_audit.csv"


def _filter(actor, action, resource_id, since, until) -> audit.AuditFilter:
    return audit.AuditFilter(actor=actor, action=action, resource_id=resource_id, since=since, until=until)


Actor = Annotated[str | None, Query(min_length=1, max_length=100)]
Action = Annotated[str | None, Query(min_length=1, max_length=64, description="e.g. rep.read, job.create")]
Resource = Annotated[
    str | None, Query(min_length=1, max_length=200, description="A rep id, job id or version.")
]
Since = Annotated[
    IsoDateTime | None, Query(description="From this time (ISO 8601, inclusive; without an offset: UTC).")
]
Until = Annotated[
    IsoDateTime | None, Query(description="Up to this time (exclusive; without an offset: UTC).")
]


@router.get(
    "/audit",
    response_model=AuditListOut,
    summary="Audit events, oldest first",
    responses=responses(*AUTHED, 422),
)
def list_audit(
    principal: HR,
    session: SessionDep,
    actor: Actor = None,
    action: Action = None,
    resource_id: Resource = None,
    since: Since = None,
    until: Until = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> AuditListOut:
    rows, total = audit.list_events(session, _filter(actor, action, resource_id, since, until), limit, offset)
    items = [
        AuditEventOut(
            id=e.id,
            at=e.at,
            actor=e.actor,
            actor_roles=e.actor_roles,
            action=e.action,
            resource_type=e.resource_type,
            resource_id=e.resource_id,
            model_version=e.model_version,
            outcome=e.outcome,
            detail=e.detail,
            request_id=e.request_id,
        )
        for e in rows
    ]
    return AuditListOut(total=total, limit=limit, offset=offset, items=items)


@router.get(
    "/audit/export",
    summary="The audit trail as CSV (same filters)",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "CSV, one event a row.",
            "content": {"text/csv": {"schema": {"type": "string"}}},
        },
        **responses(*AUTHED, 422),
    },
)
def export_audit(
    request: Request,
    principal: HR,
    session: SessionDep,
    rid: RequestIdDep,
    actor: Actor = None,
    action: Action = None,
    resource_id: Resource = None,
    since: Since = None,
    until: Until = None,
):
    if request.method == "HEAD":  # checked and refused as a GET, but nothing to send: nothing to record
        return exports.csv_head(FILENAME)
    f = _filter(actor, action, resource_id, since, until)
    event = audit.record(
        session, principal, "audit.export", "audit", None, detail={"filter": _describe(f)}, request_id=rid
    )
    commit(session)
    # read as it is sent, from one snapshot taken now, up to the newest event in it: the export's own event
    # is in it when the filters match, those written while it is being sent are not
    with exports.snapshot(
        request.app.state.sessions, request.app.state.settings.export_idle_timeout_s
    ) as snapshot:
        upto = audit.newest_event_id(snapshot)
        return exports.csv_download(
            snapshot,
            FILENAME,
            audit.CSV_COLUMNS,
            lambda s: audit.iter_event_rows(s, f, upto),
            audit.csv_cells,
            done=audit.export_end(request.app.state.sessions, principal, "audit.export_end", event, rid),
        )


def _describe(f: audit.AuditFilter) -> dict:
    return {
        k: (v.isoformat() if isinstance(v, dt.datetime) else v) for k, v in vars(f).items() if v is not None
    }
