"""Requests an acceptance review found answered with 500 or stored as given: NUL and other invisible
characters, a promotion with a broken reason, a busy database. Each must be a clear 4xx (or 503 for the
database) with nothing stored."""

from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy import func, select

from serving.db.schema import AuditEvent, InterventionLog, User

from .conftest import stop_writes


def _count(svc, model, **where):
    with svc.session() as s:
        q = select(func.count()).select_from(model)
        for k, v in where.items():
            q = q.where(getattr(model, k) == v)
        return s.scalar(q)


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/reps/R%00x",
        "/api/v1/reps/R1/history?as_of=%00",
        "/api/v1/early-warning?manager_id=M%001",
        "/api/v1/audit?actor=a%00b",
        "/reps/R%00",
    ],
)
def test_a_nul_in_the_path_or_query_is_a_422(service, url):
    r = service.client.get(url, headers=service.h("hr"))
    assert r.status_code == 422, r.text
    assert "NUL" in r.json()["detail"]
    # the connection is still good: the next request on it is answered
    assert service.client.get("/api/v1/me", headers=service.h("hr")).status_code == 200


@pytest.mark.parametrize(
    "method, url, allow",
    [
        ("put", "/api/v1/reps/R1/interventions", "GET, HEAD, POST"),  # three routes on one path
        ("delete", "/api/v1/reps/R1/interventions/1", "PATCH"),
        ("post", "/api/v1/reps/R1", "GET, HEAD"),
    ],
)
def test_a_405_names_every_method_of_the_path(service, method, url, allow):
    """RFC 9110 15.5.6: Allow lists the methods the resource supports (Starlette names one route's)."""
    r = service.client.request(method.upper(), url, headers=service.h("hr"))
    assert r.status_code == 405 and r.json()["code"] == "method_not_allowed"
    assert r.headers["allow"] == allow


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # routing alone: one database is enough
def test_every_405_allows_exactly_the_methods_its_address_answers(service):
    """Walks every route of the app (API, probes, API reference, dashboard, static files) and asks its
    address with every method: each 405's Allow lists exactly the methods that address does not answer
    with 405. `PUT /logout` named GET and HEAD, which the catch-all of mistyped pages answers there with
    a 405 of its own (`/logout` takes only POST)."""
    import re

    from fastapi.routing import iter_route_contexts
    from starlette.routing import Mount

    from serving.http_errors import METHODS
    from serving.routers.docs import _static

    values = {"rep_id": "R1", "job_id": "0" * 32, "version": "1", "entry_id": "1", "entry": "1"}
    values |= {"name": "hr", "prefix": "rr_AbCdEfG", "path": "no-such-page", "dashboard": "x"}
    files = {"/static": "dashboard.css", "/docs/assets": sorted(p.name for p in _static().iterdir())[0]}
    addresses = set()
    for ctx in iter_route_contexts(service.app.router.routes):
        if isinstance(ctx.original_route, Mount):
            addresses.add(f"{ctx.path}/{files[ctx.path]}")
        elif ctx.path and "dashboard_slash_path" not in ctx.path:  # a trailing slash is a 404 for any method
            addresses.add(re.sub(r"\{(\w+)(:\w+)?\}", lambda m: values[m.group(1)], ctx.path))
    assert {"/logout", "/api/v1/reps/R1/interventions", "/static/dashboard.css", "/no-such-page"} <= addresses
    wrong = []
    for address in sorted(addresses):
        answers = {
            m: service.client.request(
                m, address, headers={"accept": "application/json"}, follow_redirects=False
            )
            for m in METHODS
        }
        served = ", ".join(m for m, r in answers.items() if r.status_code != 405)
        wrong += [
            f"{m} {address}: Allow {r.headers.get('allow')!r}, answered: {served}"
            for m, r in answers.items()
            if r.status_code == 405 and r.headers.get("allow") != served
        ]
    assert not wrong, "\n".join(wrong)


def test_invisible_characters_in_stored_text_are_refused(service):
    c, before = service.client, _count(service, InterventionLog)
    url = "/api/v1/reps/R1/interventions"
    for note in ("left \u202eright", "next\u0085line", "nul\u0000", "bell\u0007"):
        r = c.post(
            url,
            json={"intervention": "mentoring", "started_on": "2024-01-16", "note": note},
            headers=service.h("hr"),
        )
        assert r.status_code == 422, (note, r.text)
    assert _count(service, InterventionLog) == before
    ok = c.post(
        url,
        json={"intervention": "mentoring", "started_on": "2024-01-16", "note": "two\nlines\tand 中文 é"},
        headers=service.h("hr"),
    )
    assert ok.status_code == 201, ok.text
    r = c.post(
        "/api/v1/users",
        json={"name": "mo", "roles": ["manager"], "manager_id": "M\u0000\n13"},
        headers=service.h("admin"),
    )
    assert r.status_code == 422 and "control character" in r.json()["detail"]
    assert _count(service, User, name="mo") == 0


@pytest.mark.parametrize("path", ["/api/v1/audit", "/api/v1/audit/export"])
def test_a_time_filter_beyond_what_utc_can_show_is_a_422(service, path):
    """0001-01-01T00:00:00+14:00 is a valid ISO 8601 time, but a year before 1 in UTC: it was a 500, and
    the export had already recorded its event."""
    c, before = service.client, _count(service, AuditEvent)
    for bad in ("0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"):
        for param in ("since", "until"):
            r = c.get(path, params={param: bad}, headers=service.h("hr"))
            assert r.status_code == 422, (param, bad, r.text)
            assert r.json()["errors"][0]["loc"] == ["query", param] and "UTC" in r.json()["detail"]
    assert _count(service, AuditEvent) == before
    # an offset is honoured: the same instant written two ways selects the same events
    c.get("/api/v1/reps/R1", headers=service.h("hr"))
    utc = c.get("/api/v1/audit", params={"since": "2000-01-01T00:00:00Z"}, headers=service.h("hr")).json()
    east = c.get("/api/v1/audit", params={"since": "2000-01-01T05:00:00+05:00"}, headers=service.h("hr"))
    assert east.status_code == 200 and east.json()["total"] == utc["total"] >= 1


def test_a_body_not_sent_as_json_is_a_415_that_says_so(service):
    """A JSON body sent as text/plain (or without a Content-Type) was a 422 "Input should be a valid
    dictionary", which sent integrators looking for a mistake in their JSON."""
    c, before = service.client, _count(service, InterventionLog)
    body = b'{"intervention": "mentoring", "started_on": "2024-01-16"}'
    for ctype in ("text/plain", "application/x-www-form-urlencoded", None):
        headers = {**service.h("hr"), **({"content-type": ctype} if ctype else {})}
        r = c.post("/api/v1/reps/R1/interventions", content=body, headers=headers)
        assert r.status_code == 415, (ctype, r.text)
        assert r.json()["code"] == "unsupported_media_type" and "application/json" in r.json()["detail"]
        assert (ctype or "none") in r.json()["detail"]
    assert _count(service, InterventionLog) == before
    # JSON under its own name, or a +json type, is read as before; an empty body is still a 422
    for ctype in ("application/json; charset=utf-8", "application/merge-patch+json"):
        r = c.post(
            "/api/v1/reps/R1/interventions", content=body, headers={**service.h("hr"), "content-type": ctype}
        )
        assert r.status_code in (200, 201), (ctype, r.text)
    assert c.post("/api/v1/jobs", headers=service.h("hr")).status_code == 422


def test_a_json_body_naming_a_key_twice_is_a_422_naming_the_key_on_every_route(service):
    """`{"intervention": "a", "intervention": "b"}` was taken with the last value winning; every operation
    that takes a JSON body now refuses it, naming the key, and nothing is stored or audited."""
    from serving.db.schema import Job

    c, hr = service.client, service.h("hr")
    entry = c.post(
        "/api/v1/reps/R1/interventions",
        json={"intervention": "mentoring", "started_on": "2024-01-16"},
        headers=hr,
    ).json()["id"]
    bodies = {  # each valid but for the key named twice (raw text: a dict cannot hold it)
        ("post", "/api/v1/reps/{rep_id}/interventions"): (
            "hr",
            '{"intervention": "mentoring", "started_on": "2024-01-17", "intervention": "recognition"}',
            "intervention",
        ),
        ("patch", "/api/v1/reps/{rep_id}/interventions/{entry_id}"): (
            "hr",
            '{"ended_on": "2024-02-01", "ended_on": "2024-03-01"}',
            "ended_on",
        ),
        ("post", "/api/v1/jobs"): ("hr", '{"as_of": "2024-01-08", "as_of": "2024-01-15"}', "as_of"),
        ("post", "/api/v1/models/promote"): (
            "ds",
            '{"version": "1", "force": false, "version": "2"}',
            "version",
        ),
        ("post", "/api/v1/users"): ("admin", '{"name": "eve", "roles": ["hr"], "name": "mallory"}', "name"),
    }
    taking_bodies = {
        (method, path)
        for path, ops in service.app.openapi()["paths"].items()
        for method, op in ops.items()
        if "requestBody" in op
    }
    assert taking_bodies == set(bodies)  # a new route with a body: add it here
    stored = [(m, _count(service, m)) for m in (InterventionLog, AuditEvent, User, Job)]
    for (method, path), (user, body, key) in bodies.items():
        url = path.format(rep_id="R1", entry_id=entry)
        for ctype in ("application/json", "application/merge-patch+json"):
            headers = {**service.h(user), "content-type": ctype}
            r = c.request(method.upper(), url, content=body.encode(), headers=headers)
            assert r.status_code == 422, (method, path, r.text)
            assert r.json()["errors"] == [
                {
                    "loc": ["body", key],
                    "msg": f"the key '{key}' appears more than once in the JSON body; send each key once",
                    "type": "duplicate_key",
                }
            ]
            assert f"'{key}' appears more than once" in r.json()["detail"]
        # not sent as JSON: still the 415 that says so
        r = c.request(
            method.upper(),
            url,
            content=body.encode(),
            headers={**service.h(user), "content-type": "text/plain"},
        )
        assert r.status_code == 415, r.text
    assert [(m, _count(service, m)) for m, _ in stored] == stored
    # a key's name inside a string value is no duplicate
    ok = '{"intervention": "mentoring", "started_on": "2024-01-18", "note": "\\"intervention\\": x, intervention"}'
    r = c.post(
        "/api/v1/reps/R2/interventions",
        content=ok.encode(),
        headers={**hr, "content-type": "application/json"},
    )
    assert r.status_code == 201, r.text


def test_a_promotion_with_a_broken_reason_is_refused_before_anything_happens(service):
    c = service.client
    before = _count(service, AuditEvent)
    r = c.post(
        "/api/v1/models/promote",
        json={"version": "2", "force": True, "reason": "urgent\u0000fix"},
        headers=service.h("ds"),
    )
    assert r.status_code == 422 and "control character" in r.json()["detail"]
    assert _count(service, AuditEvent) == before  # refused by validation: no request, no promotion


def test_every_promotion_request_is_in_the_trail_before_the_gate_runs(service):
    r = service.client.post("/api/v1/models/promote", json={"version": "7"}, headers=service.h("ds"))
    assert r.status_code in (404, 409)  # nothing registered in this stub service
    r = service.client.post("/api/v1/models/promote", json={}, headers=service.h("ds"))
    assert r.status_code == 409
    with service.session() as s:
        asked = s.scalars(select(AuditEvent).where(AuditEvent.action == "model.promote_request")).all()
    assert [(e.actor, e.outcome) for e in asked] == [("ds", "requested")]  # the 404 checks before asking


def test_a_locked_database_is_a_503_and_nothing_half_written(service_factory, db_url, tmp_path):
    """Another connection holds the table beyond DB_TIMEOUT_S: SQLite's busy timeout, PostgreSQL's
    statement timeout. The caller gets 503 with Retry-After, not 500, and nothing is stored."""
    svc = service_factory(db_timeout_s=1.0)
    if db_url.startswith("sqlite"):
        other = sqlite3.connect(db_url.removeprefix("sqlite:///"), timeout=0.1)
        other.execute("BEGIN EXCLUSIVE")
    else:
        import psycopg

        other = psycopg.connect(db_url.replace("postgresql+psycopg://", "postgresql://"))
        other.execute("LOCK TABLE intervention_log IN ACCESS EXCLUSIVE MODE")
    try:
        r = svc.client.post(
            "/api/v1/reps/R1/interventions",
            json={"intervention": "mentoring", "started_on": "2024-01-16"},
            headers=svc.h("hr"),
        )
        assert r.status_code == 503, r.text
        assert r.headers["Retry-After"] and "database is unavailable" in r.json()["detail"]
    finally:
        other.rollback()
        other.close()
    assert _count(svc, InterventionLog) == 0


def _refused_as_unwritable(svc, db_url: str, how: str, caplog) -> None:
    before = _count(svc, AuditEvent)
    writable_again = stop_writes(svc, db_url, how)
    caplog.clear()
    why = "its disk is full" if how == "full" else "it is read-only"
    note = "备注" * 1000  # 6,000 bytes: more than a page's free space, so SQLite needs a new page
    r = svc.client.post(
        "/api/v1/reps/R1/interventions",
        json={"intervention": "mentoring", "started_on": "2024-01-16", "note": note},
        headers=svc.h("hr"),
    )
    assert r.status_code == 503, r.text
    rid = r.headers["X-Request-ID"]
    assert r.json()["detail"] == (
        f"the database cannot be written ({why}); nothing was saved (request {rid}). An administrator must "
        "free space on its disk or make it writable; retry once they have"
    )
    assert r.headers["Retry-After"] == "60"
    errors = [rec for rec in caplog.records if rec.levelname == "ERROR"]
    assert len(errors) == 1 and not errors[0].exc_info, [rec.getMessage() for rec in errors]
    assert errors[0].getMessage().startswith(f"database cannot be written ({why}) on POST /api/v1/reps/R1/")
    assert _count(svc, InterventionLog) == 0 and _count(svc, AuditEvent) == before
    writable_again()


def test_a_read_only_database_is_a_503_saying_so_and_nothing_half_written(service_factory, db_url, caplog):
    """A database that refuses writes (SQLite's SQLITE_READONLY; PostgreSQL's read-only transaction, as a
    standby after a fail-over): SQLite's was a 503 saying "retry in a moment", which cannot help, and
    PostgreSQL's (an InternalError) a 500 with a traceback. Now a 503 saying the database cannot be written
    and why, one log line without a traceback, and nothing stored."""
    _refused_as_unwritable(service_factory(), db_url, "read-only", caplog)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # PostgreSQL's disk_full: the test below
def test_a_full_disk_is_a_503_saying_so_and_nothing_half_written(service_factory, db_url, caplog):
    _refused_as_unwritable(service_factory(), db_url, "full", caplog)


def test_postgresql_s_disk_full_is_said_as_a_full_disk():
    """PostgreSQL's disk_full (SQLSTATE 53100) cannot be caused here without filling a disk: the driver's
    error, as SQLAlchemy hands it over, is read as SQLite's SQLITE_FULL is; its other class-53 errors are not."""
    import psycopg.errors
    from sqlalchemy.exc import OperationalError

    from serving.db.engine import unwritable_reason

    full = psycopg.errors.DiskFull('could not extend file "base/16384/16390": No space left on device')
    assert unwritable_reason(OperationalError("INSERT ...", {}, full)) == "its disk is full"
    busy = psycopg.errors.TooManyConnections("sorry, too many clients already")
    assert unwritable_reason(OperationalError("SELECT 1", {}, busy)) is None
