"""The organisation's intervention log (HR): as CSV in the input contract's `interventions` table, the
file `repradar report --interventions` reads to measure what interventions achieved."""

from __future__ import annotations

import csv
import io
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import StreamingResponse
from sqlalchemy import select

from serving import audit
from serving.auth import Principal
from serving.db.engine import commit
from serving.db.schema import InterventionLog
from serving.deps import RequestIdDep, SessionDep, require
from serving.http_errors import AUTHED, responses

router = APIRouter(tags=["interventions"])
HR = Annotated[Principal, Depends(require("hr"))]
COLUMNS = ("rep_id", "intervention", "started_on", "ended_on")  # the contract's `interventions` table


@router.get(
    "/interventions/export",
    summary="Every recorded intervention as CSV in the input contract's `interventions` table",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "CSV: rep_id, intervention, started_on, ended_on; one entry a row, oldest first.",
            "content": {"text/csv": {"schema": {"type": "string"}}},
        },
        **responses(*AUTHED),
    },
)
def export_interventions(principal: HR, session: SessionDep, rid: RequestIdDep):
    rows = session.scalars(
        select(InterventionLog).order_by(InterventionLog.started_on, InterventionLog.id)
    ).all()
    audit.record(
        session,
        principal,
        "interventions.export",
        "intervention_log",
        None,
        detail={"rows": len(rows)},
        request_id=rid,
    )
    commit(session)
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(COLUMNS)
    for r in rows:
        w.writerow(
            [r.rep_id, r.intervention, r.started_on.isoformat(), r.ended_on.isoformat() if r.ended_on else ""]
        )
    return StreamingResponse(
        iter([out.getvalue()]),
        media_type="text/csv",
        headers={"Content-Disposition": 'attachment; filename="repradar_interventions.csv"'},
    )
