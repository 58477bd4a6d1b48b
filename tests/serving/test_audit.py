"""The audit trail: exactly one event per read, append-only, exported as CSV for HR."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from sqlalchemy import func, insert, select, text

from serving import audit
from serving.db.schema import AuditEvent

from .conftest import assert_read_in_chunks, audit_events


def _events(service, **where):
    with service.session() as s:
        q = select(AuditEvent)
        for k, v in where.items():
            q = q.where(getattr(AuditEvent, k) == v)
        return s.scalars(q.order_by(AuditEvent.id)).all()


def test_n_reads_give_exactly_n_events(service):
    c = service.client
    n = 7
    for _ in range(n):
        assert c.get("/api/v1/reps/R1", headers=service.h("mgr1")).status_code == 200
    events = _events(service, action="rep.read", resource_id="R1")
    assert len(events) == n
    assert all(e.actor == "mgr1" and e.outcome == "ok" and e.model_version == "1" for e in events)
    assert all(e.actor_roles == "manager" and e.request_id for e in events)
    # list reads: one event each, naming every rep shown
    for _ in range(3):
        c.get("/api/v1/early-warning", headers=service.h("mgr2"))
    lists = _events(service, action="early_warning.read", actor="mgr2")
    assert len(lists) == 3 and all(set(e.detail["rep_ids"]) == {"R3", "R4"} for e in lists)
    # an attempt outside the scope is recorded too (HR can see it; the manager saw a plain 404)
    c.get("/api/v1/reps/R9", headers=service.h("mgr2"))
    denied = _events(service, action="rep.read", resource_id="R9")
    assert [e.outcome for e in denied] == ["out_of_scope"]


def test_writes_jobs_and_promotions_are_audited(service):
    c = service.client
    c.post(
        "/api/v1/reps/R2/interventions",
        json={"intervention": "recognition", "started_on": "2024-01-20"},
        headers=service.h("hr"),
    )
    (e,) = _events(service, action="intervention.create")
    assert e.actor == "hr" and e.resource_id == "R2" and e.detail["intervention"] == "recognition"
    c.post("/api/v1/models/promote", json={}, headers=service.h("ds"))  # refused: nothing trained
    assert _events(service, action="model.promote") == []  # nothing happened, nothing to record


def test_audit_is_append_only(service):
    c = service.client
    c.get("/api/v1/reps/R1", headers=service.h("hr"))
    with service.app.state.engine.connect() as conn:
        for stmt in ("UPDATE audit_log SET actor = 'nobody'", "DELETE FROM audit_log"):
            with pytest.raises(Exception, match="append-only"):
                conn.execute(text(stmt))
            conn.rollback()
        assert conn.execute(select(func.count()).select_from(AuditEvent)).scalar() >= 1


def test_hr_lists_and_exports_the_trail(service):
    c = service.client
    for rep in ("R1", "R3", "R9"):
        c.get(f"/api/v1/reps/{rep}", headers=service.h("hr"))
    body = c.get("/api/v1/audit", params={"action": "rep.read", "limit": 2}, headers=service.h("hr")).json()
    assert body["total"] == 3 and [i["resource_id"] for i in body["items"]] == ["R1", "R3"]
    body = c.get("/api/v1/audit", params={"resource_id": "R9"}, headers=service.h("hr")).json()
    assert [i["action"] for i in body["items"]] == ["rep.read"]
    r = c.get("/api/v1/audit/export", params={"action": "rep.read"}, headers=service.h("hr"))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [row["resource_id"] for row in rows] == ["R1", "R3", "R9"]
    assert rows[0]["actor"] == "hr" and rows[0]["model_version"] == "1"
    assert _events(service, action="audit.export")  # exporting the trail is itself recorded
    # what a caller typed (here a manager's filter, audited as out of scope) is text in a spreadsheet
    formula = '=HYPERLINK("http://evil.example","x")'
    c.get("/api/v1/early-warning", params={"manager_id": formula}, headers=service.h("mgr1"))
    r = c.get("/api/v1/audit/export", params={"action": "early_warning.read"}, headers=service.h("hr"))
    cells = [cell for row in csv.reader(io.StringIO(r.text)) for cell in row]
    assert not any(cell.startswith(("=", "+", "-", "@")) for cell in cells), cells
    assert "'" + formula in cells
    assert c.get("/api/v1/audit", headers=service.h("mgr1")).status_code == 403
    r = c.get("/api/v1/audit", params={"since": "not-a-time"}, headers=service.h("hr"))
    assert r.status_code == 422


def test_each_event_names_the_token_used(service):
    """An admin may issue a further token for a user; reads with it are told apart in the trail."""
    c = service.client
    issued = c.post("/api/v1/users/hr/tokens", headers=service.h("admin"))
    assert issued.status_code == 201, issued.text
    other = issued.json()["token"]
    c.get("/api/v1/reps/R1", headers=service.h("hr"))
    c.get("/api/v1/reps/R1", headers={"Authorization": f"Bearer {other}"})
    reads = _events(service, action="rep.read", resource_id="R1")
    assert [e.actor for e in reads] == ["hr", "hr"]
    assert [e.detail["token"] for e in reads] == [service.tokens["hr"][:10], other[:10]]


def test_refusals_by_role_are_audited(service):
    """A signed-in caller refused for their role (403) is in the trail: who, which address, which roles."""
    c = service.client
    assert c.get("/api/v1/audit/export", headers=service.h("mgr1")).status_code == 403
    assert c.get("/api/v1/reps/R1", headers=service.h("ds")).status_code == 403
    denied = _events(service, action="access.denied")
    assert [(e.actor, e.resource_id, e.outcome) for e in denied] == [
        ("mgr1", "/api/v1/audit/export", "forbidden"),
        ("ds", "/api/v1/reps/R1", "forbidden"),
    ]
    assert denied[0].detail["needs"] == ["hr"] and denied[0].request_id
    # a bad token is a stranger: the log has it, the trail does not
    assert c.get("/api/v1/audit", headers={"Authorization": "Bearer rr_nope"}).status_code == 401
    assert len(_events(service, action="access.denied")) == 2


def _listed(session, f: audit.AuditFilter) -> list[tuple]:
    """The events of the paged list (one page holding them all), as rows of the export's columns."""
    events, total = audit.list_events(session, f, 100_000, 0)
    assert len(events) == total
    return [tuple(getattr(e, c) for c in audit.CSV_COLUMNS) for e in events]


def test_the_trail_is_read_from_the_cursor_a_chunk_at_a_time(service, db_url):
    """An export's events come in lists of at most `chunk`, read as they are asked for (on PostgreSQL from a
    server-side cursor, which pg_cursors lists while the chunks are read), the same events in the same
    order as the paged list; events written after the export was asked for are not among them."""
    with service.session() as s:
        assert list(audit.iter_event_rows(s, audit.AuditFilter(), audit.newest_event_id(s))) == []
    with service.app.state.sessions.begin() as s:
        s.execute(insert(AuditEvent), audit_events(2500))
    everything = audit.AuditFilter()
    some = audit.AuditFilter(
        action="rep.read",
        since=dt.datetime(2024, 1, 1, 3, tzinfo=dt.UTC),
        until=dt.datetime(2024, 1, 1, 15, tzinfo=dt.UTC),
    )
    with service.session() as s:
        upto = audit.newest_event_id(s)
        expected = _listed(s, everything)
        assert len(expected) == 2500 and expected[-1][0] == upto
        with service.app.state.sessions.begin() as other:  # written after the export was asked for
            other.execute(insert(AuditEvent), audit_events(3))
        assert_read_in_chunks(
            s, audit.iter_event_rows(s, everything, upto, chunk=1000), expected, db_url, [1000, 1000, 500]
        )
        rows = [tuple(r) for c in audit.iter_event_rows(s, some, upto, chunk=100) for r in c]
        assert 100 < len(rows) < 2500 and rows == _listed(s, some)
        # the export writes each row as the list holds it: what a caller typed is text in a spreadsheet
        cells = [str(c) for r in rows for c in audit.csv_cells(r)]
        assert not any(c.startswith(("=", "+", "-", "@")) for c in cells)


def test_a_large_export_streams_what_the_json_pages_hold(service):
    """A few thousand events: the CSV, sent in pieces as the rows are read, holds exactly the events of the
    JSON pages joined, in the same order, with or without a filter, its own event included when the
    filters match; each export is audited with its filters."""
    with service.app.state.sessions.begin() as s:
        s.execute(insert(AuditEvent), audit_events(3200))
    c, hr = service.client, service.h("hr")
    since = "2024-01-01T04:00:00+00:00"
    for params in ({}, {"since": since, "until": "2024-01-02T00:00:00Z"}):
        with c.stream("GET", "/api/v1/audit/export", params=params, headers=hr) as r:
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
            assert r.headers["content-disposition"] == 'attachment; filename="repradar_audit.csv"'
            pieces = list(r.iter_bytes())
        table = list(csv.reader(io.StringIO(b"".join(pieces).decode(), newline="")))
        assert table[0] == list(audit.CSV_COLUMNS) and len(pieces) > 2
        joined, offset = [], 0
        while True:
            page = c.get("/api/v1/audit", params=params | {"limit": 1000, "offset": offset}, headers=hr)
            items = page.json()["items"]
            if not items:
                break
            for item in items:  # the event as the export writes it
                item["at"] = dt.datetime.fromisoformat(item["at"])
                joined.append([str(cell) for cell in audit.csv_cells([item[k] for k in audit.CSV_COLUMNS])])
            offset += len(items)
        # the events up to the export's own are in it; after them, the event of its end when the filters match
        sent, later = joined[: len(table) - 1], joined[len(table) - 1 :]
        assert table[1:] == sent and len(sent) > 1000 and len(joined) == page.json()["total"]
        assert (table[-1][4] == "audit.export") is (params == {})  # its own event, when the filters match
        assert [e[4] for e in later] == (["audit.export_end"] if params == {} else [])
    with service.session() as s:
        exports = s.scalars(select(AuditEvent).where(AuditEvent.action == "audit.export")).all()
    assert [e.detail["filter"] for e in exports] == [
        {},
        {"since": since, "until": "2024-01-02T00:00:00+00:00"},
    ]


def test_each_csv_export_records_the_rows_it_sent_and_whether_it_finished(service):
    """A CSV export's event is written before the first row goes out, so it could not say how many rows
    went (the interventions' claimed every matched one): an event written when the sending ends now says
    how many rows were sent and whether the whole file was, linked to the export's event. A client gone
    after the first chunk (1,000 rows of 1,200) gets an `interrupted` event that never claims the rest."""
    from serving.db.schema import InterventionLog

    from .conftest import log_entries

    with service.app.state.sessions.begin() as s:
        s.execute(insert(AuditEvent), audit_events(1200))
        s.execute(insert(InterventionLog), log_entries(1200))
    c, hr = service.client, service.h("hr")
    for url, action in (
        ("/api/v1/audit/export", "audit.export"),
        ("/api/v1/interventions/export", "interventions.export"),
    ):
        whole = list(csv.reader(io.StringIO(c.get(url, headers=hr).text, newline="")))
        with c.stream("GET", url, headers=hr) as r:  # read the header and the first chunk, then go away
            pieces = r.iter_bytes()
            next(pieces)
            received = len(list(csv.reader(io.StringIO(next(pieces).decode(), newline=""))))
        starts, ends = _events(service, action=action), _events(service, action=f"{action}_end")
        assert [(e.outcome, e.detail["complete"]) for e in ends] == [("ok", True), ("interrupted", False)]
        assert ends[0].detail["rows"] == len(whole) - 1 > 1000
        assert received == 1000 and ends[1].detail["rows"] in (0, received)  # 0: gone before it was counted
        assert [e.detail["export_event"] for e in ends] == [e.id for e in starts]
        assert [e.request_id for e in ends] == [e.request_id for e in starts]
        assert all(e.actor == "hr" and "rows" not in e.detail for e in starts)


def test_a_head_of_a_csv_export_reads_nothing_and_records_no_export(service):
    """A HEAD of either CSV export answers the GET's status and headers (type, file name) without reading
    a row or recording an export: no body is sent, so no export happened (it used to run the whole export
    and record it as sent whole). A HEAD the GET would refuse is refused alike; the GET is unchanged."""
    from serving.db.schema import InterventionLog

    from .conftest import log_entries

    with service.app.state.sessions.begin() as s:
        s.execute(insert(InterventionLog), log_entries(5))
    c, hr = service.client, service.h("hr")
    for url, action, filename in (
        ("/api/v1/audit/export", "audit.export", "repradar_audit.csv"),
        ("/api/v1/interventions/export", "interventions.export", "repradar_interventions.csv"),
    ):
        head = c.head(url, headers=hr)
        assert head.status_code == 200 and head.content == b""
        assert head.headers["content-type"] == "text/csv; charset=utf-8"
        assert head.headers["content-disposition"] == f'attachment; filename="{filename}"'
        assert _events(service, action=action) == _events(service, action=f"{action}_end") == []
        assert c.head(url, params={"since": "yesterday", "limit": 5}, headers=hr).status_code == 422
        get = c.get(url, headers=hr)
        assert {k: v for k, v in get.headers.items() if k != "x-request-id"} == {
            k: v for k, v in head.headers.items() if k != "x-request-id"
        }
        rows = list(csv.reader(io.StringIO(get.text, newline="")))[1:]
        (end,) = _events(service, action=f"{action}_end")
        assert len(_events(service, action=action)) == 1 and end.detail["rows"] == len(rows) > 0
        assert end.detail["complete"] is True


EXPORTS = {"audit.export", "interventions.export", "job.download"}  # their `*_end` events go with them


def test_a_head_of_any_audited_get_records_the_read_but_never_an_export_or_download(service, tmp_path):
    """Walks every GET route of the app (API and dashboard, each format of the exports and downloads) and
    asks it with HEAD, then GET: a HEAD writes the GET's events except those of an export or a download,
    since it sends no row or file (a HEAD of a rep is still the read it is: its status says whether the rep
    is there). A HEAD of the JSON intervention export wrote `interventions.export`, and of a job's file
    `job.download`, each recording an export that did not happen."""
    import re

    from fastapi.routing import iter_route_contexts

    from serving.auth import add_user
    from serving.db.schema import InterventionLog

    from .conftest import add_finished_job, log_entries

    job_id = add_finished_job(service.app, folder=tmp_path)
    with service.app.state.sessions.begin() as s:
        token = add_user(s, "every-role", ["hr", "data_scientist", "admin"])[1]
        s.execute(insert(InterventionLog), log_entries(3))
    c, headers = service.client, {"Authorization": f"Bearer {token}"}
    assert c.post("/login", data={"token": token}, follow_redirects=False).status_code == 303
    values = {"rep_id": "R1", "job_id": job_id, "version": "1", "path": "no-such-page"}
    formats = {
        "/api/v1/interventions/export": ("csv", "json"),
        "/api/v1/jobs/{job_id}/scores": ("parquet", "csv"),
        "/org/jobs/{job_id}/scores": ("csv", "parquet"),
    }
    routes = {
        ctx.path for ctx in iter_route_contexts(c.app.router.routes) if ctx.methods and "GET" in ctx.methods
    }
    # the probes, metrics and API reference take no token: nobody to audit
    routes -= {"/openapi.json", "/docs", "/redoc", "/docs/assets/redoc.standalone.js", "/metrics"}
    routes -= {"/health/live", "/health/ready"}

    def written(method, url, params):
        """The status of the request, and the actions of the events it wrote."""
        with service.session() as s:
            before = s.scalar(select(func.max(AuditEvent.id)))
        r = c.request(method, url, params=params, headers=headers, follow_redirects=False)
        with service.session() as s:
            return r.status_code, sorted(s.scalars(select(AuditEvent.action).where(AuditEvent.id > before)))

    seen = set()
    for path_ in sorted(routes):
        url = re.sub(r"\{(\w+)(:\w+)?\}", lambda m: values[m.group(1)], path_)
        for fmt in formats.get(path_, (None,)):
            params = {"format": fmt} if fmt else None
            head_status, head = written("HEAD", url, params)
            get_status, get = written("GET", url, params)
            exports = [a for a in get if a.removesuffix("_end") in EXPORTS]
            assert head_status == get_status, (url, fmt)
            assert head == [a for a in get if a not in exports], (url, fmt, head, get)
            seen.update(get)
    # every audited GET was asked: each export and download, and the reads
    assert EXPORTS | {"rep.read", "rep.history.read", "rep.interventions.read", "early_warning.read"} <= seen
