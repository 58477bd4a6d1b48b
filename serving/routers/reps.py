"""One rep: latest (or replayed) risk with its explanation, trend, score history, and the intervention log.

A rep outside the caller's scope is answered exactly as a rep that does not exist; the audit trail
still records the attempt (visible to HR only).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from serving import audit, store
from serving.auth import Principal
from serving.db.engine import commit, hold_lock, write_lock
from serving.db.schema import IdempotencyKey, InterventionLog, Rep, Score, utcnow
from serving.deps import ModelDep, RequestIdDep, SessionDep, model_version, require
from serving.http_errors import AUTHED, ApiError, responses
from serving.rules import (
    DUPLICATE_WINDOW_S,
    IDEMPOTENCY_KEY_HOURS,
    IDEMPOTENCY_KEY_MAX,
    idempotency_key,
    intervention_date_problem,
    may_see_names,
    request_fingerprint,
    resolve_scope,
)
from serving.schemas import (
    HistoryItemOut,
    HistoryOut,
    InterventionEndIn,
    InterventionIn,
    InterventionListOut,
    InterventionOut,
    IsoDate,
    PeriodOutcomeOut,
    RepInfoOut,
    RepOut,
    ScoreOut,
    TrendPointOut,
)

router = APIRouter(tags=["reps"])
Reader = Annotated[Principal, Depends(require("manager", "hr"))]
RepId = Annotated[str, Path(min_length=1, max_length=100, description="A rep id from `reps.rep_id`.")]
KEY_HEADER = "Idempotency-Key"
IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias=KEY_HEADER,
        max_length=IDEMPOTENCY_KEY_MAX + 2,
        description="draft-ietf-httpapi-idempotency-key-header: a value unique to this request (a UUID), "
        'quoted as the draft writes it (`"8e03978e-..."`) or bare; visible ASCII, at most '
        f"{IDEMPOTENCY_KEY_MAX} characters. Sent again with the same request (rep and body) within "
        f"{IDEMPOTENCY_KEY_HOURS} h, it gets the first answer again and nothing new is stored; with another "
        "request it is a 422.",
    ),
]


def _not_found(rep_id: str) -> ApiError:
    # One message for "does not exist" and "not yours": nothing about other teams leaks.
    return ApiError(404, f"rep {rep_id!r} not found")


def _refused(field: str, why: str) -> RequestValidationError:
    """A 422 naming one body field, as the schema's own refusals do."""
    return RequestValidationError([{"loc": ("body", field), "msg": why, "type": "value_error"}])


def _check_visible(
    request: Request, session: Session, principal: Principal, rep_id: str, action: str, rid: str | None
) -> None:
    chart = request.app.state.charts.get(session)
    scope = resolve_scope(principal.roles, principal.manager_id, chart)
    known = store.rep_known(session, rep_id)
    if rep_id in scope and known:
        return
    outcome = "out_of_scope" if known else "not_found"
    audit.record(session, principal, action, "rep", rep_id, outcome=outcome, request_id=rid)
    commit(session)
    raise _not_found(rep_id)


def _score_out(s: Score) -> ScoreOut:
    return ScoreOut(
        rep_id=s.rep_id,
        manager_id=s.manager_id,
        period_start=s.period_start,
        period_end=s.period_end,
        as_of=s.as_of,
        risk=s.risk,
        risk_band=s.risk_band,
        rank=s.rank,
        attainment_to_date=s.attainment_to_date,
        drivers=s.drivers,
        interventions=s.interventions,
        model_version=s.model_version,
    )


@router.get(
    "/reps/{rep_id}",
    response_model=RepOut,
    summary="A rep's risk, band, drivers, interventions and trend (newest, or as of a past day)",
    responses=responses(*AUTHED, 404, 422),
)
def get_rep(
    request: Request,
    rep_id: RepId,
    principal: Reader,
    session: SessionDep,
    rid: RequestIdDep,
    as_of: Annotated[
        IsoDate | None,
        Query(description="Replay: what the model said on this day (newest score at or before it)."),
    ] = None,
    version: Annotated[
        str | None, Query(min_length=1, max_length=64, description="Only scores of this model version.")
    ] = None,
) -> RepOut:
    _check_visible(request, session, principal, rep_id, "rep.read", rid)
    score = store.rep_score(session, rep_id, as_of=as_of, model_version=version)
    if score is None:
        when = f" on or before {as_of}" if as_of else ""
        which = f" from model version {version}" if version else ""
        # a look that found nothing is still a look at a named rep: audited
        audit.record(
            session,
            principal,
            "rep.read",
            "rep",
            rep_id,
            outcome="no_score",
            detail={"as_of": as_of.isoformat() if as_of else None, "version": version},
            request_id=rid,
        )
        commit(session)
        raise ApiError(404, f"rep {rep_id!r} has no score{which}{when}", "no_score")
    d = store.rep_directory_row(session, rep_id)
    names = may_see_names(principal.roles)
    info = RepInfoOut(
        rep_id=rep_id,
        name=(d.name if d and names else None),
        manager_id=d.manager_id if d else score.manager_id,
        team=d.team if d else None,
        region=d.region if d else None,
        segment=d.segment if d else None,
        hire_date=d.hire_date if d else None,
        end_date=d.end_date if d else None,
    )
    trend = [
        TrendPointOut(as_of=t.as_of, risk=t.risk, risk_band=t.risk_band, model_version=t.model_version)
        for t in store.rep_trend(session, score)
    ]
    audit.record(
        session,
        principal,
        "rep.read",
        "rep",
        rep_id,
        model_version=score.model_version,
        detail={"as_of": score.as_of.isoformat(), "score_id": score.id, "replay": as_of is not None},
        request_id=rid,
    )
    commit(session)
    return RepOut(
        rep=info,
        score=_score_out(score),
        details=score.extra or {},
        trend=trend,
        job_id=score.job_id,
        scored_at=score.created_at,
    )


@router.get(
    "/reps/{rep_id}/history",
    response_model=HistoryOut,
    summary="Every stored score of a rep, newest first (for replays), paged",
    responses=responses(*AUTHED, 404, 422),
)
def rep_history(
    request: Request,
    rep_id: RepId,
    principal: Reader,
    session: SessionDep,
    rid: RequestIdDep,
    limit: Annotated[int, Query(ge=1, le=500, description="Scores per page.")] = 100,
    offset: Annotated[
        int, Query(ge=0, le=10_000_000, description="Scores to skip (paging; `total` says how many).")
    ] = 0,
) -> HistoryOut:
    _check_visible(request, session, principal, rep_id, "rep.history.read", rid)
    rows, total = store.rep_history(session, rep_id, limit, offset)
    outcomes = store.rep_outcomes(session, rep_id) if rows else {}
    audit.record(
        session,
        principal,
        "rep.history.read",
        "rep",
        rep_id,
        model_version=rows[0].model_version if rows else None,
        detail={"rows": len(rows)},
        request_id=rid,
    )
    commit(session)
    return HistoryOut(
        rep_id=rep_id,
        total=total,
        limit=limit,
        offset=offset,
        items=[
            HistoryItemOut(
                as_of=s.as_of,
                period_start=s.period_start,
                period_end=s.period_end,
                risk=s.risk,
                risk_band=s.risk_band,
                model_version=s.model_version,
                job_id=s.job_id,
                scored_at=s.created_at,
                outcome=_outcome_out(outcomes.get(s.period_start)),
            )
            for s in rows
        ],
    )


def _intervention_out(row: InterventionLog) -> InterventionOut:
    return InterventionOut(
        id=row.id,
        rep_id=row.rep_id,
        intervention=row.intervention,
        started_on=row.started_on,
        ended_on=row.ended_on,
        note=row.note,
        recorded_by=row.recorded_by,
        recorded_at=row.recorded_at,
        model_version=row.model_version,
        risk_at_record=row.risk_at_record,
    )


@router.get(
    "/reps/{rep_id}/interventions",
    response_model=InterventionListOut,
    summary="The interventions recorded for a rep, newest first",
    responses=responses(*AUTHED, 404, 422),
)
def list_interventions(
    request: Request, rep_id: RepId, principal: Reader, session: SessionDep, rid: RequestIdDep
) -> InterventionListOut:
    _check_visible(request, session, principal, rep_id, "rep.interventions.read", rid)
    rows = session.scalars(
        select(InterventionLog)
        .where(InterventionLog.rep_id == rep_id)
        .order_by(InterventionLog.started_on.desc(), InterventionLog.id.desc())
    ).all()
    audit.record(
        session,
        principal,
        "rep.interventions.read",
        "rep",
        rep_id,
        detail={"rows": len(rows)},
        request_id=rid,
    )
    commit(session)
    return InterventionListOut(rep_id=rep_id, items=[_intervention_out(r) for r in rows])


def _recent_same_entry(
    session: Session, rep_id: str, body: InterventionIn, user: str
) -> InterventionLog | None:
    """The same entry recorded by the same user within DUPLICATE_WINDOW_S (a double click), or None."""
    since = utcnow() - dt.timedelta(seconds=DUPLICATE_WINDOW_S)
    rows = session.scalars(
        select(InterventionLog).where(
            InterventionLog.rep_id == rep_id,
            InterventionLog.intervention == body.intervention,
            InterventionLog.started_on == body.started_on,
            InterventionLog.recorded_by == user,
            InterventionLog.recorded_at >= since,
        )
    ).all()
    return next(
        (r for r in rows if r.ended_on == body.ended_on and (r.note or None) == (body.note or None)), None
    )


def _key_refused(why: str) -> RequestValidationError:
    """A 422 naming the Idempotency-Key header, as the schema's own refusals name a field."""
    return RequestValidationError([{"loc": ("header", KEY_HEADER), "msg": why, "type": "idempotency_key"}])


@router.post(
    "/reps/{rep_id}/interventions",
    response_model=InterventionOut,
    status_code=201,
    summary="Record an intervention given to a rep (catalog id, dates, note)",
    description="The start may not be before the rep was hired nor more than a year ahead (422). The same "
    f"entry from the same user again within {DUPLICATE_WINDOW_S} s is taken for a double submit: the answer "
    "is the entry already stored, with status 200, and nothing new is stored. With an `Idempotency-Key` "
    f"header the key decides instead: the same key and request from the same user within "
    f"{IDEMPOTENCY_KEY_HOURS} h get the first answer again (its status and body), the same key with another "
    "rep or body is a 422 (draft-ietf-httpapi-idempotency-key-header-06, section 2.7).",
    responses={
        **responses(*AUTHED, 400, 404, 413, 415, 422),
        200: {"model": InterventionOut, "description": "A double submit: the entry already stored."},
    },
)
def add_intervention(
    request: Request,
    rep_id: RepId,
    body: InterventionIn,
    principal: Reader,
    session: SessionDep,
    model: ModelDep,
    rid: RequestIdDep,
    response: Response,
    key_header: IdempotencyKeyHeader = None,
) -> InterventionOut:
    key = None
    if key_header is not None:
        try:
            key = idempotency_key(key_header)
        except ValueError as exc:
            raise _key_refused(str(exc)) from None
    _check_visible(request, session, principal, rep_id, "intervention.create", rid)
    fingerprint = request_fingerprint(rep_id, body.model_dump(mode="json"))
    rep = session.get(Rep, rep_id)
    problem = intervention_date_problem(
        body.started_on,
        rep.hire_date if rep else None,
        dt.date.today(),
        ended_on=body.ended_on,
        end_date=rep.end_date if rep else None,
    )
    with write_lock(session.get_bind()):  # the flush for the row's id writes: under the lock
        if key is not None:
            # the same key arriving twice at once, on one process or several: the second waits, then replays
            hold_lock(session, f"idempotency:{principal.user_id}:{key}")
            kept = store.remembered_answer(session, principal.user_id, key, utcnow())
            if kept is not None:
                if kept.fingerprint != fingerprint:
                    session.rollback()  # ends the transaction's locks before the refusal
                    raise _key_refused(
                        f"this Idempotency-Key was sent within {IDEMPOTENCY_KEY_HOURS} h with another request "
                        "(another rep or another body); send a new key for a new entry"
                    )
                _audit_create(
                    session, principal, rep_id, body, kept.entry_id, kept.model_version, "duplicate", rid, key
                )
                commit(session)
                return Response(kept.response, kept.status, media_type="application/json")
        if problem:  # after the key: a replay answers as the first time, whatever day it is now
            session.rollback()
            raise _refused(*problem)
        current = store.rep_score(session, rep_id)
        version = current.model_version if current else model_version(model)
        row = InterventionLog(
            rep_id=rep_id,
            intervention=body.intervention,
            started_on=body.started_on,
            ended_on=body.ended_on,
            note=body.note,
            recorded_by=principal.name,
            model_version=version,
            risk_at_record=current.risk if current else None,
        )
        # two clicks arriving together, on one process or several, cannot both pass the check
        hold_lock(session, f"intervention:{principal.name}:{rep_id}")
        # a key says which requests are the same: the 60 s guess is only for callers that send none
        same = None if key is not None else _recent_same_entry(session, rep_id, body, principal.name)
        if same is None:
            session.add(row)
            session.flush()
        stored = row if same is None else same
        out = _intervention_out(stored)
        # a double submit is answered with the stored entry, risk at record included: audited as
        # well (outcome `duplicate`), since every answer naming a rep's risk is in the trail
        _audit_create(
            session,
            principal,
            rep_id,
            body,
            stored.id,
            stored.model_version,
            "ok" if same is None else "duplicate",
            rid,
            key,
        )
        if key is not None:
            session.add(
                IdempotencyKey(
                    user_id=principal.user_id,
                    key=key,
                    fingerprint=fingerprint,
                    rep_id=rep_id,
                    entry_id=stored.id,
                    status=201,
                    response=out.model_dump_json(),
                    model_version=stored.model_version,
                    created_at=utcnow(),
                )
            )
        commit(session)  # ends the transaction, and with it the lock
    if same is not None:
        response.status_code = 200
    return out


def _audit_create(
    session: Session,
    principal: Principal,
    rep_id: str,
    body: InterventionIn,
    entry_id: int,
    version: str | None,
    outcome: str,
    rid: str | None,
    key: str | None,
) -> None:
    detail = {"intervention": body.intervention, "started_on": body.started_on.isoformat(), "id": entry_id}
    if key is not None:
        detail["idempotency_key"] = key
    audit.record(
        session,
        principal,
        "intervention.create",
        "rep",
        rep_id,
        model_version=version,
        outcome=outcome,
        detail=detail,
        request_id=rid,
    )


@router.patch(
    "/reps/{rep_id}/interventions/{entry_id}",
    response_model=InterventionOut,
    summary="End a recorded intervention (or correct its end day)",
    description="Sets `ended_on` of one entry of the rep's log: not before the entry's start, and not more "
    "than two years ahead (422). The entry's other fields stay as recorded; the change and the end day it "
    "replaced go into the audit trail. Setting the day it already has changes nothing and records nothing.",
    responses=responses(*AUTHED, 400, 404, 413, 415, 422),
)
def end_intervention(
    request: Request,
    rep_id: RepId,
    entry_id: Annotated[int, Path(ge=1, le=2**62, description="The entry's `id`.")],
    body: InterventionEndIn,
    principal: Reader,
    session: SessionDep,
    rid: RequestIdDep,
) -> InterventionOut:
    _check_visible(request, session, principal, rep_id, "intervention.end", rid)
    row = session.get(InterventionLog, entry_id)
    if row is None or row.rep_id != rep_id:
        raise ApiError(404, f"no intervention entry {entry_id} in the log of rep {rep_id!r}")
    if body.ended_on < row.started_on:
        raise _refused(
            "ended_on",
            f"ended_on {body.ended_on.isoformat()} is before the intervention started "
            f"({row.started_on.isoformat()})",
        )
    rep = session.get(Rep, rep_id)
    problem = intervention_date_problem(
        row.started_on, rep.hire_date if rep else None, dt.date.today(), ended_on=body.ended_on
    )
    if problem and problem[0] == "ended_on":  # the start was accepted when it was recorded
        raise _refused(*problem)
    previous = row.ended_on
    row.ended_on = body.ended_on
    # the same day again changes nothing, but its answer names the risk at record: audited too
    audit.record(
        session,
        principal,
        "intervention.end",
        "rep",
        rep_id,
        model_version=row.model_version,
        outcome="ok" if previous != body.ended_on else "unchanged",
        detail={
            "id": row.id,
            "intervention": row.intervention,
            "ended_on": body.ended_on.isoformat(),
            "previous_ended_on": previous.isoformat() if previous else None,
        },
        request_id=rid,
    )
    commit(session)
    return _intervention_out(row)


def _outcome_out(o) -> PeriodOutcomeOut | None:
    if o is None:
        return None
    return PeriodOutcomeOut(attainment=o.attainment, missed=o.missed, known_on=o.known_on)
