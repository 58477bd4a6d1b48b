"""The append-only audit trail: who did what, when, with which model version.

Events are written in the same transaction as the action they record, so an action whose event
cannot be written does not happen (a read is not answered, a write is rolled back).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from models.scoring import FORMULA_START
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
) -> None:
    # Added to the session, written by the caller's commit (under the write lock), with the action.
    if actor.token_prefix:
        detail = {**(detail or {}), "token": actor.token_prefix}
    session.add(
        AuditEvent(
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
    )


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


@dataclass(frozen=True)
class AuditFilter:
    actor: str | None = None
    action: str | None = None
    resource_id: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None


def _query(f: AuditFilter) -> Select:
    q = select(AuditEvent)
    if f.actor:
        q = q.where(AuditEvent.actor == f.actor)
    if f.action:
        q = q.where(AuditEvent.action == f.action)
    if f.resource_id:
        q = q.where(AuditEvent.resource_id == f.resource_id)
    if f.since:
        q = q.where(AuditEvent.at >= f.since)
    if f.until:
        q = q.where(AuditEvent.at < f.until)
    return q


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


def export_csv(session: Session, f: AuditFilter, batch: int = 1000) -> Iterator[str]:
    """The filtered trail as CSV text, oldest first, read in batches (keyset paging on id)."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(CSV_COLUMNS)
    last = 0
    while True:
        rows = session.scalars(
            _query(f).where(AuditEvent.id > last).order_by(AuditEvent.id).limit(batch)
        ).all()
        for e in rows:
            writer.writerow(
                [
                    e.id,
                    e.at.isoformat(),
                    csv_safe(e.actor),
                    e.actor_roles,
                    e.action,
                    e.resource_type,
                    csv_safe(e.resource_id or ""),
                    csv_safe(e.model_version or ""),
                    e.outcome,
                    csv_safe(e.request_id or ""),
                    json.dumps(e.detail, sort_keys=True),
                ]
            )
        yield buf.getvalue()
        buf.seek(0)
        buf.truncate()
        if len(rows) < batch:
            return
        last = rows[-1].id
