"""The append-only audit trail: who did what, when, with which model version.

Events are written in the same transaction as the action they record, so an action whose event
cannot be written does not happen (a read is not answered, a write is rolled back).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from models.scoring import FORMULA_START
from serving import store
from serving.auth import Principal
from serving.db.schema import AuditEvent, utcnow

SYSTEM = Principal(0, "system", frozenset({"system"}), None)
CSV_COLUMNS = (
    "id",
    "at",
    "actor",
    "actor_roles",
    "action",
    "resource_type",
    "resource_id",
    "model_version",
    "outcome",
    "request_id",
    "detail",
)


def record(
    session: Session,
    actor: Principal,
    action: str,
    resource_type: str,
    resource_id: str | None = None,
    *,
    model_version: str | None = None,
    outcome: str = "ok",
    detail: dict[str, Any] | None = None,
    request_id: str | None = None,
) -> AuditEvent:
    # Added to the session, written by the caller's commit (under the write lock), with the action.
    if actor.token_prefix:
        detail = {**(detail or {}), "token": actor.token_prefix}
    event = AuditEvent(
        at=utcnow(),
        actor=actor.name,
        actor_roles=actor.roles_text,
        action=action,
        resource_type=resource_type,
        resource_id=resource_id,
        model_version=model_version,
        outcome=outcome,
        detail=detail or {},
        request_id=request_id,
    )
    session.add(event)
    return event


def refusal(sessions, actor: Principal, path: str, needs: tuple[str, ...], request_id: str | None) -> None:
    """A signed-in caller refused for their role (403): who tried which address, in its own transaction
    (the refused request writes nothing else). Anonymous refusals (no or bad token) go to the log only,
    since strangers could otherwise fill the trail."""
    from serving.db.engine import commit

    with sessions() as session:
        record(
            session,
            actor,
            "access.denied",
            "route",
            path[:200],
            outcome="forbidden",
            detail={"needs": sorted(needs)},
            request_id=request_id,
        )
        commit(session)


def export_end(sessions, actor: Principal, action: str, export: AuditEvent, request_id: str | None):
    """`serving.exports.csv_download`'s `done` for the CSV export recorded as `export`: an event `action`
    saying how many rows were sent and whether the whole file was (outcome `interrupted` when not). The
    export's own event is written before the first row goes out (no export without its event) and the trail
    is append-only, so how far the sending got is an event of its own, written when it ends."""
    from serving.db.engine import commit

    def done(rows: int, complete: bool) -> None:
        with sessions() as session:
            record(
                session,
                actor,
                action,
                export.resource_type,
                export.resource_id,
                outcome="ok" if complete else "interrupted",
                detail={"rows": rows, "complete": complete, "export_event": export.id},
                request_id=request_id,
            )
            commit(session)

    return done


@dataclass(frozen=True)
class AuditFilter:
    actor: str | None = None
    action: str | None = None
    resource_id: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None


def _conditions(f: AuditFilter) -> list[Any]:
    wanted = []
    if f.actor:
        wanted.append(AuditEvent.actor == f.actor)
    if f.action:
        wanted.append(AuditEvent.action == f.action)
    if f.resource_id:
        wanted.append(AuditEvent.resource_id == f.resource_id)
    if f.since:
        wanted.append(AuditEvent.at >= f.since)
    if f.until:
        wanted.append(AuditEvent.at < f.until)
    return wanted


def _query(f: AuditFilter) -> Select:
    return select(AuditEvent).where(*_conditions(f))


def list_events(session: Session, f: AuditFilter, limit: int, offset: int) -> tuple[list[AuditEvent], int]:
    total = session.scalar(select(func.count()).select_from(_query(f).subquery()))
    rows = session.scalars(_query(f).order_by(AuditEvent.id).limit(limit).offset(offset)).all()
    return list(rows), int(total or 0)


def promotion_requested(
    session: Session, actor: Principal, version, force: bool, reason, request_id=None
) -> None:
    """A promotion asked for: written (and committed by the caller) before the gate runs, since MLflow's
    registry and this trail share no transaction and no promotion may happen without an event."""
    record(
        session,
        actor,
        "model.promote_request",
        "model",
        version,
        outcome="requested",
        detail={"forced": force, "reason": reason},
        request_id=request_id,
    )


def promotion_outcome(
    session: Session, actor: Principal, result, force: bool, reason, request_id=None
) -> None:
    """What the gate decided (`models.gate.GateResult`)."""
    record(
        session,
        actor,
        "model.promote",
        "model",
        result.challenger_version,
        model_version=result.challenger_version,
        outcome="ok" if result.promoted or result.decision == "already" else "refused",
        detail={"decision": result.decision, "forced": force, "reason": reason},
        request_id=request_id,
    )


def csv_safe(text: str) -> str:
    """A cell a spreadsheet shows as text: one starting like a formula gets a leading apostrophe.

    The trail holds what callers typed (a filter value, a request id), so an export opened in a
    spreadsheet must not run `=HYPERLINK(...)`.
    """
    return "'" + text if text.startswith(FORMULA_START) else text


def newest_event_id(session: Session) -> int | None:
    """The id of the newest event in the trail (None: the trail is empty). An export holds the events up to
    it: those written while the export is being sent are not in it."""
    return session.scalar(select(func.max(AuditEvent.id)))


def iter_event_rows(
    session: Session, f: AuditFilter, upto_id: int | None, chunk: int = 1000
) -> Iterator[list[Any]]:
    """The events matching `f` with an id up to `upto_id`, oldest first, as rows of the CSV_COLUMNS, in
    lists of at most `chunk` read from the database cursor as they are asked for
    (`serving.store.read_in_chunks`): an export of any size holds one list at a time."""
    q = select(*(getattr(AuditEvent, c) for c in CSV_COLUMNS)).where(*_conditions(f)).order_by(AuditEvent.id)
    yield from store.read_in_chunks(session, q, AuditEvent.id, upto_id, chunk)


def csv_cells(row: Any) -> list[Any]:
    """One row of `iter_event_rows` as the export writes it: what a caller may have typed is `csv_safe`,
    the detail is JSON."""
    event_id, at, actor, roles, action, resource_type, resource_id, version, outcome, request_id, detail = row
    return [
        event_id,
        at.isoformat(),
        csv_safe(actor),
        roles,
        action,
        resource_type,
        csv_safe(resource_id or ""),
        csv_safe(version or ""),
        outcome,
        csv_safe(request_id or ""),
        json.dumps(detail, sort_keys=True),
    ]
