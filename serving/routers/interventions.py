"""The organisation's intervention log (HR): as CSV in the input contract's `interventions` table, the
file `repradar report --interventions` reads to measure what interventions achieved, or as JSON pages;
both narrowed by start day, manager, team and rep."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import StringConstraints

from serving import audit, exports, store
from serving.auth import Principal
from serving.db.engine import commit
from serving.db.schema import AuditEvent
from serving.deps import RequestIdDep, SessionDep, require
from serving.http_errors import AUTHED, responses
from serving.routers.reps import _intervention_out
from serving.rules import EXPORT_PAGE, export_query_problem, resolve_scope
from serving.schemas import InterventionExportOut, IsoDate

router = APIRouter(tags=["interventions"])
HR = Annotated[Principal, Depends(require("hr"))]
COLUMNS = ("rep_id", "intervention", "started_on", "ended_on")  # the contract's `interventions` table
FILENAME = "repradar_interventions.csv"
IdText = Annotated[str, StringConstraints(min_length=1, max_length=100)]


@router.get(
    "/interventions/export",
    response_model=InterventionExportOut,
    summary="Recorded interventions: CSV in the input contract's `interventions` table, or JSON pages",
    description="Filters combine (all must hold). `manager_id` keeps the reps whose chain of managers "
    "reaches that manager now, `team` those of that team in the rep directory now, `rep_id` (repeatable) "
    "those reps; `started_from` and `started_to` (both inclusive) bound the start day. The CSV holds every "
    "matching entry; the JSON form is paged (`limit`, `offset`, `total`).",
    responses={
        200: {
            "description": "CSV: rep_id, intervention, started_on, ended_on; one entry a row, oldest first. "
            "JSON (format=json): one page of the entries, oldest first.",
            "content": {"text/csv": {"schema": {"type": "string"}}},
        },
        **responses(*AUTHED, 422),
    },
)
def export_interventions(
    request: Request,
    principal: HR,
    session: SessionDep,
    rid: RequestIdDep,
    format: Annotated[
        Literal["csv", "json"], Query(description="csv (default): every match; json: paged.")
    ] = "csv",
    started_from: Annotated[
        IsoDate | None, Query(description="Entries starting on or after this day.")
    ] = None,
    started_to: Annotated[
        IsoDate | None, Query(description="Entries starting on or before this day.")
    ] = None,
    manager_id: Annotated[
        str | None, Query(min_length=1, max_length=100, description="Reps in this manager's subtree.")
    ] = None,
    team: Annotated[str | None, Query(min_length=1, max_length=200, description="Reps of this team.")] = None,
    rep_id: Annotated[
        list[IdText] | None, Query(max_length=100, description="Only these reps (repeat the parameter).")
    ] = None,
    limit: Annotated[
        int | None, Query(ge=1, le=500, description=f"JSON only: entries per page (default {EXPORT_PAGE}).")
    ] = None,
    offset: Annotated[
        int | None,
        Query(ge=0, le=10_000_000, description="JSON only: entries to skip (`total` says how many)."),
    ] = None,
):
    problem = export_query_problem(started_from, started_to, format, limit, offset)
    if problem:
        field, why = problem
        raise RequestValidationError([{"loc": ("query", field), "msg": why, "type": "value_error"}])
    scope = None
    if manager_id is not None:
        scope = resolve_scope(
            principal.roles, principal.manager_id, request.app.state.charts.get(session), manager_id
        )
    f = store.EntryFilter(
        started_from=started_from,
        started_to=started_to,
        scope=scope,
        team=team,
        rep_ids=frozenset(rep_id) if rep_id else None,
    )
    asked = {
        "started_from": started_from.isoformat() if started_from else None,
        "started_to": started_to.isoformat() if started_to else None,
        "manager_id": manager_id,
        "team": team,
        "rep_id": sorted(set(rep_id)) if rep_id else None,
    }

    def recorded(counts: dict) -> AuditEvent:
        event = audit.record(
            session,
            principal,
            "interventions.export",
            "intervention_log",
            None,
            detail={**counts, "format": format, "filter": {k: v for k, v in asked.items() if v is not None}},
            request_id=rid,
        )
        commit(session)
        return event

    # a HEAD of either form is checked as the GET (token, role, filters) but sends no entry: no export
    # happened, so nothing is read or recorded (its JSON answer then has no Content-Length)
    if request.method == "HEAD":
        return exports.csv_head(FILENAME) if format == "csv" else exports.head_only("application/json")
    if format == "json":
        page = (limit or EXPORT_PAGE, offset or 0)
        rows, total = store.intervention_entries(session, f, *page)
        recorded({"rows": len(rows), "total": total})
        return InterventionExportOut(
            total=total, limit=page[0], offset=page[1], items=[_intervention_out(r) for r in rows]
        )
    # counted in the export's snapshot, then read from it as it is sent, up to the newest entry counted;
    # the rows sent are recorded when the sending ends (audit.export_end): a download cut short sends fewer
    with exports.snapshot(
        request.app.state.sessions, request.app.state.settings.export_idle_timeout_s
    ) as snapshot:
        total, last = store.count_intervention_entries(snapshot, f)
        event = recorded({"total": total})
        return exports.csv_download(
            snapshot,
            FILENAME,
            COLUMNS,
            lambda s: store.iter_intervention_table(s, f, last),
            _cells,
            lineterminator="\n",
            done=audit.export_end(
                request.app.state.sessions, principal, "interventions.export_end", event, rid
            ),
        )


def _cells(row) -> tuple[str, str, str, str]:
    """One entry as a row of the contract's `interventions` table (an open entry: no end day)."""
    rep, kind, start, end = row
    return rep, kind, start.isoformat(), end.isoformat() if end else ""
