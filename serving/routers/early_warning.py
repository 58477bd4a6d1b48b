"""The early-warning list: the riskiest reps of the caller's scope, within the alert budget."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request

from serving import audit, store
from serving.auth import Principal
from serving.db.engine import commit
from serving.deps import ModelDep, RequestIdDep, SessionDep, SettingsDep, model_version, require
from serving.http_errors import AUTHED, responses
from serving.rules import may_narrow_to, may_see_names, resolve_scope, select_alerts
from serving.schemas import AlertOut, Band, DriverOut, EarlyWarningOut

router = APIRouter(tags=["early-warning"])
Reader = Annotated[Principal, Depends(require("manager", "hr"))]


@router.get(
    "/early-warning",
    response_model=EarlyWarningOut,
    summary="The riskiest reps of the caller's team, at most the alert budget",
    responses=responses(*AUTHED, 422),
)
def early_warning(
    request: Request,
    principal: Reader,
    session: SessionDep,
    settings: SettingsDep,
    model: ModelDep,
    rid: RequestIdDep,
    band: Annotated[list[Band] | None, Query(description="Only these bands (repeat the parameter).")] = None,
    sort: Annotated[
        Literal["risk", "attainment_to_date", "risk_change", "rep_id", "name"],
        Query(description="Display order of the selected reps (the budget always keeps the riskiest)."),
    ] = "risk",
    order: Annotated[Literal["asc", "desc"], Query()] = "desc",
    limit: Annotated[
        int | None,
        Query(ge=1, le=1000, description="Fewer than the alert budget; more is cut to the budget."),
    ] = None,
    manager_id: Annotated[
        str | None, Query(min_length=1, max_length=100, description="Narrow to this manager's subtree.")
    ] = None,
) -> EarlyWarningOut:
    chart = request.app.state.charts.get(session)
    scope = resolve_scope(principal.roles, principal.manager_id, chart, manager_id)
    rows = store.current_rows(session, scope)
    sel = select_alerts(
        rows, budget=settings.alert_budget, bands=band, limit=limit, sort=sort, descending=order == "desc"
    )
    names = may_see_names(principal.roles)
    shown = store.explanations(session, [r.score_id for r in sel.rows])
    items = [
        AlertOut(
            rep_id=r.rep_id,
            name=r.name if names else None,
            manager_id=r.manager_id,
            team=r.team,
            region=r.region,
            segment=r.segment,
            period_start=r.period_start,
            period_end=r.period_end,
            as_of=r.as_of,
            risk=r.risk,
            risk_band=r.risk_band,
            rank=r.rank,
            attainment_to_date=r.attainment_to_date,
            risk_change=r.risk_change,
            top_driver=DriverOut.model_validate(shown[r.score_id][0][0]) if shown[r.score_id][0] else None,
            interventions=list(shown[r.score_id][1]),
            model_version=r.model_version,
        )
        for r in sel.rows
    ]
    # Reading the list is reading named reps' risk: one event naming every rep shown.
    # a manager asking for a manager outside their subtree sees an empty list (nothing leaks), and HR
    # sees the attempt for what it is
    outside = manager_id is not None and not may_narrow_to(
        principal.roles, principal.manager_id, chart, manager_id
    )
    audit.record(
        session,
        principal,
        "early_warning.read",
        "rep_list",
        manager_id,
        outcome="out_of_scope" if outside else "ok",
        model_version=items[0].model_version if items else model_version(model),
        detail={"rep_ids": [i.rep_id for i in items], "bands": band or [], "sort": sort},
        request_id=rid,
    )
    commit(session)
    return EarlyWarningOut(
        as_of=rows[0].as_of if rows else None,
        budget=sel.budget,
        in_scope=sel.in_scope,
        matching=sel.matching,
        truncated=sel.truncated,
        model_version=model_version(model),
        items=items,
    )
