"""Authorization matrix: every role x every endpoint x a rep inside / outside the caller's scope / unknown.

Exact statuses, and no name or score of a rep leaks to a caller outside its scope.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json

import pytest
from fastapi.testclient import TestClient

from .conftest import NAMES, RISK, ROLE_USERS

IN, OUT, NONE = "R3", "R9", "NOPE"  # R3 reports to M2 who reports to M1: in mgr1's scope via a manager
JOB = "0" * 32
BODY = {
    "intervention": {"intervention": "mentoring", "started_on": "2024-01-16", "note": "pairing with R1"},
    "job": {"as_of": "2024-01-15"},
    "promote": {},
    "end": {"ended_on": "2024-02-01"},
}
# (method, path, body, kind)
ENDPOINTS = [
    ("GET", "/health/live", None, "probe"),
    ("GET", "/health/ready", None, "probe"),
    ("GET", "/metrics", None, "probe"),
    ("GET", "/api/v1/me", None, "me"),
    ("GET", "/api/v1/early-warning", None, "list"),
    ("GET", "/api/v1/reps/{rep}", None, "rep"),
    ("GET", "/api/v1/reps/{rep}/history", None, "rep"),
    ("GET", "/api/v1/reps/{rep}/interventions", None, "rep"),
    ("POST", "/api/v1/reps/{rep}/interventions", "intervention", "rep_write"),
    ("PATCH", "/api/v1/reps/{rep}/interventions/999999", "end", "rep_end"),
    ("GET", "/api/v1/jobs", None, "jobs"),
    ("POST", "/api/v1/jobs", "job", "job_create"),
    ("GET", f"/api/v1/jobs/{JOB}", None, "job_item"),
    ("GET", f"/api/v1/jobs/{JOB}/scores", None, "job_item"),
    ("GET", "/api/v1/models/current", None, "me"),
    ("GET", "/api/v1/models", None, "models"),
    ("POST", "/api/v1/models/promote", "promote", "promote"),
    ("GET", "/api/v1/audit", None, "audit"),
    ("GET", "/api/v1/audit/export", None, "audit"),
    ("GET", "/api/v1/interventions/export", None, "audit"),
    ("GET", "/api/v1/users", None, "users"),
    ("POST", "/api/v1/users", "user", "user_create"),
    ("POST", "/api/v1/users/{user}/revoke", None, "user_item"),
    ("POST", "/api/v1/users/{user}/tokens", None, "user_token"),
]
CALLERS = ["anon", "badtoken", "mgr1", "mgr2", "hr", "ds", "admin", "dshr"]
ROLES = {
    "mgr1": {"manager"},
    "mgr2": {"manager"},
    "hr": {"hr"},
    "ds": {"data_scientist"},
    "admin": {"admin"},
    "dshr": {"data_scientist", "hr"},
}
SCOPE = {"mgr1": {"R1", "R2", "M2", "R3", "R4"}, "mgr2": {"R3", "R4"}}


def expected(caller: str, kind: str, rep: str | None) -> int:
    if kind == "probe":  # the only routes without a token
        return 200
    if caller in ("anon", "badtoken"):
        return 401
    roles = ROLES[caller]
    if kind == "me":
        return 200
    if kind in ("list", "rep", "rep_write", "rep_end"):
        if not roles & {"manager", "hr"}:
            return 403
        if kind == "list":
            return 200
        visible = rep != NONE and ("hr" in roles or rep in SCOPE[caller])
        if not visible:
            return 404
        # rep_end: a visible rep, but no entry 999999 in their log
        return {"rep_write": 201, "rep_end": 404}.get(kind, 200)
    if kind in ("jobs", "job_create", "job_item", "audit"):
        if "hr" not in roles:
            return 403
        # no data folder configured: 409; no such job: 404
        return {"jobs": 200, "job_create": 409, "job_item": 404, "audit": 200}[kind]
    if kind == "models":
        return 200 if roles & {"data_scientist", "hr", "admin"} else 403
    if kind == "promote":
        return 409 if "data_scientist" in roles else 403  # 409: nothing trained in this installation
    if kind in ("users", "user_create", "user_item", "user_token"):
        if "admin" not in roles:
            return 403
        return {"users": 200, "user_create": 201, "user_item": 200, "user_token": 201}[kind]
    raise AssertionError(kind)


def test_authorization_matrix(service):
    c = service.client
    failures = []
    n = itertools.count()
    for method, path, body_key, kind in ENDPOINTS:
        reps = [IN, OUT, NONE] if "{rep}" in path else [None]
        for caller, rep in itertools.product(CALLERS, reps):
            headers = {}
            if caller == "badtoken":
                headers = {"Authorization": "Bearer rr_not-a-real-token"}
            elif caller != "anon":
                headers = service.h(caller)
            url = path.replace("{rep}", rep or "")
            if "{user}" in path:  # a fresh user each time, so revoke/token always have a target
                user = f"u{next(n)}"
                with service.app.state.sessions.begin() as s:
                    from serving.auth import add_user

                    add_user(s, user, ["hr"])
                url = url.replace("{user}", user)
            body = None
            if body_key == "user":
                body = {"name": f"new{next(n)}", "roles": ["manager"], "manager_id": "M1"}
            elif body_key:
                body = BODY[body_key]
            r = c.request(method, url, json=body, headers=headers)
            want = expected(caller, kind, rep)
            if r.status_code != want:
                failures.append(f"{caller:9} {method} {url}: {r.status_code} (want {want}) {r.text[:120]}")
            if "X-Model-Version" not in r.headers:
                failures.append(f"{caller} {method} {url}: no X-Model-Version header")
            if r.status_code >= 400 and kind != "probe":
                body_json = r.json()
                if set(body_json) - {"detail", "code", "errors"} or "detail" not in body_json:
                    failures.append(f"{caller} {method} {url}: error body {body_json}")
            # No leak: outside the caller's scope, neither the rep's name nor its risk appears.
            if caller in SCOPE and rep in (OUT,) and kind.startswith("rep"):
                text = r.text
                if NAMES[OUT] in text or json.dumps(RISK[OUT]) in text:
                    failures.append(f"{caller} {method} {url}: leaked {text[:200]}")
    assert not failures, "\n".join(failures)


def test_out_of_scope_is_answered_exactly_as_nonexistent(service):
    c = service.client
    for suffix in ("", "/history", "/interventions"):
        out = c.get(f"/api/v1/reps/{OUT}{suffix}", headers=service.h("mgr1"))
        none = c.get(f"/api/v1/reps/{NONE}{suffix}", headers=service.h("mgr1"))
        assert out.status_code == none.status_code == 404
        assert out.text.replace(OUT, "X") == none.text.replace(NONE, "X")
        strip = {"x-request-id", "content-length"}
        assert {k: v for k, v in out.headers.items() if k not in strip} == {
            k: v for k, v in none.headers.items() if k not in strip
        }
    out = c.post(f"/api/v1/reps/{OUT}/interventions", json=BODY["intervention"], headers=service.h("mgr2"))
    none = c.post(f"/api/v1/reps/{NONE}/interventions", json=BODY["intervention"], headers=service.h("mgr2"))
    assert out.status_code == none.status_code == 404
    assert out.text.replace(OUT, "X") == none.text.replace(NONE, "X")


def test_lists_never_leak_outside_the_subtree(service):
    c = service.client
    for caller in ("mgr1", "mgr2"):
        for params in ({}, {"manager_id": "M9"}, {"manager_id": "M1"}, {"band": "high"}, {"sort": "name"}):
            r = c.get("/api/v1/early-warning", params=params, headers=service.h(caller))
            assert r.status_code == 200
            got = {i["rep_id"] for i in r.json()["items"]}
            assert got <= SCOPE[caller], (caller, params, got)
            assert NAMES[OUT] not in r.text and OUT not in got
    # mgr2 asking for their own manager's subtree gets the same as for a manager that does not exist
    a = c.get("/api/v1/early-warning", params={"manager_id": "M1"}, headers=service.h("mgr2")).json()
    b = c.get("/api/v1/early-warning", params={"manager_id": "NOPE"}, headers=service.h("mgr2")).json()
    assert a == b and a["items"] == [] and a["in_scope"] == 0
    # ... and HR sees those two attempts in the audit trail for what they are
    from serving.db.schema import AuditEvent

    with service.session() as s:
        seen = [
            (e.resource_id, e.outcome)
            for e in s.query(AuditEvent).filter_by(actor="mgr2", action="early_warning.read")
        ]
    assert ("M1", "out_of_scope") in seen and ("NOPE", "out_of_scope") in seen and (None, "ok") in seen


def test_a_look_that_finds_no_score_is_audited_and_says_what_was_asked(service):
    from serving.db.schema import AuditEvent

    c = service.client
    r = c.get("/api/v1/reps/R3", params={"version": "99"}, headers=service.h("mgr2"))
    assert r.status_code == 404 and r.json()["detail"] == "rep 'R3' has no score from model version 99"
    r = c.get("/api/v1/reps/R3", params={"as_of": "2020-01-01"}, headers=service.h("mgr2"))
    assert r.status_code == 404 and "on or before 2020-01-01" in r.json()["detail"]
    with service.session() as s:
        outcomes = [e.outcome for e in s.query(AuditEvent).filter_by(actor="mgr2", resource_id="R3")]
    assert outcomes.count("no_score") == 2


def test_an_admin_cannot_revoke_themselves_over_http(service):
    c = service.client
    admin = next(n for n, (roles, _) in ROLE_USERS.items() if roles == ["admin"])
    r = c.post(f"/api/v1/users/{admin}/revoke", headers=service.h(admin))
    assert r.status_code == 409 and "cannot revoke yourself" in r.json()["detail"]
    assert c.get("/api/v1/me", headers=service.h(admin)).status_code == 200


def test_data_scientist_sees_no_names_anywhere(service):
    c = service.client
    for path in ("/api/v1/models", "/api/v1/models/current", "/api/v1/me"):
        r = c.get(path, headers=service.h("ds"))
        assert r.status_code == 200
        assert not any(name in r.text for name in NAMES.values())


# Query parameters that could widen a read (another manager, team or rep; a format; a day or version; a
# page): each route is asked with those it declares, one at a time.
WIDENING = [
    {"manager_id": "{other}"},
    {"team": "T9"},
    {"team": "T1"},
    {"rep_id": "{out}"},
    {"format": "json"},
    {"format": "csv"},
    {"as_of": "2024-01-08"},
    {"version": "1"},
    {"limit": "1", "offset": "1"},
    {"band": "high"},
    {"sort": "name"},
    {"actor": "mgr9"},
    {"resource_id": "{out}"},
]


def _wall(text: str, secrets: list[str]) -> list[str]:
    """The secrets found in `text`, an id only as a whole word (`R1` is not in `R12`, nor in a random key)."""
    import re

    return [s for s in secrets if re.search(rf"(?<![\w-]){re.escape(s)}(?![\w-])", text)]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # the rules are SQL-free: one database
def test_no_route_shows_a_manager_anything_of_another_team(service):
    """Walks every route of the app (API and dashboard, every method it serves but HEAD) as each manager (mgr1 over
    two levels, mgr2 within mgr1's tree, mgr9 of another tree), signed in on the dashboard too, with each
    widening query parameter the route declares: no answer names a rep outside the caller's subtree, nor
    their name or risk; and a route asked for such a rep answers byte for byte as for a rep that does not
    exist (the ids swapped), status and body, so no message tells whether it exists."""
    import re

    from fastapi.routing import iter_route_contexts
    from starlette.routing import Mount

    from .conftest import REPS, SUBTREE

    forms = {  # a valid body for each method and place, so that only the rep decides the answer
        ("POST", "/api/v1/reps/{rep_id}/interventions"): {"json": {**BODY["intervention"], "note": "n"}},
        ("PATCH", "/api/v1/reps/{rep_id}/interventions/{entry_id}"): {"json": BODY["end"]},
        ("POST", "/reps/{rep_id}/interventions"): {
            "data": {"intervention": "mentoring", "started_on": "2024-01-16", "note": "n"}
        },
        ("POST", "/reps/{rep_id}/interventions/{entry}/end"): {"data": {"ended_on": "2024-02-01"}},
    }
    # sign-in, language, user admin, promotion and the probes, metrics and API reference hold nothing of a team
    skip = {"/login", "/logout", "/lang", "/api/v1/users", "/api/v1/models/promote", "/models/promote"}
    skip |= {"/health/live", "/health/ready", "/metrics", "/openapi.json", "/docs", "/redoc"}
    routes = [
        (m, ctx.path, getattr(ctx, "dependant", None))
        for ctx in iter_route_contexts(service.app.router.routes)
        if not isinstance(ctx.original_route, Mount)
        and ctx.path not in skip
        and not ctx.path.startswith(("/api/v1/users/", "/{path:", "/docs/"))
        for m in sorted(ctx.methods or ())
        if m != "HEAD"  # the GET's own handler, without the body
    ]
    assert len(routes) > 25
    # an entry in each rep's log, so that an entry id of another team's rep can be asked for
    with service.app.state.sessions.begin() as s:
        from serving.db.schema import InterventionLog

        entries = {}
        for rep in NAMES:
            row = InterventionLog(
                rep_id=rep, intervention="mentoring", started_on=dt.date(2024, 1, 9), recorded_by="hr"
            )
            s.add(row)
            s.flush()
            entries[rep] = str(row.id)
    leaks, differ = [], []
    for caller, manager in (("mgr1", "M1"), ("mgr2", "M2"), ("mgr9", "M9")):
        scope = SUBTREE[manager]
        out = sorted(set(NAMES) - scope)
        inside = sorted(scope)[0]
        other = next(r["manager_id"] for r in REPS if r["rep_id"] == out[0])
        # the caller's own manager id may be a rep's id (M2): theirs to see
        secrets = (
            [r for r in out if r != manager] + [NAMES[r] for r in out] + [json.dumps(RISK[r]) for r in out]
        )
        c = TestClient(service.app)
        assert (
            c.post("/login", data={"token": service.tokens[caller]}, follow_redirects=False).status_code
            == 303
        )
        headers = {**service.h(caller), "accept": "application/json"}

        def ask(method, template, rep, params=None, c=c, headers=headers, other_entry=None):
            values = {"rep_id": rep, "job_id": JOB, "version": "1", "entry_id": other_entry or entries[rep]}
            values["entry"] = values["entry_id"]
            url = re.sub(r"\{(\w+)(:\w+)?\}", lambda m: values[m.group(1)], template)
            return c.request(
                method,
                url,
                params=params,
                headers=headers,
                follow_redirects=False,
                **forms.get((method, template), {}),
            )

        for method, template, dependant in routes:
            declared = {p.alias for p in dependant.query_params} if dependant else set()
            variants = [{}] + [v for v in WIDENING if set(v) <= declared]
            for v in variants:
                params = {k: x.format(other=other, out=out[-1]) for k, x in v.items()}
                r = ask(method, template, inside, params)
                if found := _wall(r.text, secrets) + _wall(str(r.headers), secrets):
                    leaks.append(f"{caller} {method} {template} {params}: {r.status_code} names {found}")
                if "{rep_id}" in template:  # asked for another team's rep, and for one that does not exist
                    for o in sorted({out[0], out[-1]}):
                        a, b = (
                            ask(method, template, o, params),
                            ask(method, template, "NOPE", params, other_entry=entries[o]),
                        )
                        if (a.status_code, a.text.replace(o, "X")) != (
                            b.status_code,
                            b.text.replace("NOPE", "X"),
                        ):
                            differ.append(
                                f"{caller} {method} {template} {o} {params}: {a.status_code} "
                                f"{a.text[:80]!r} vs {b.status_code} {b.text[:80]!r}"
                            )
                if "{entry" in template:  # another team's entry through a rep of the caller's own: as none
                    for o in sorted({out[0], out[-1]}):
                        a = ask(method, template, inside, params, other_entry=entries[o])
                        b = ask(method, template, inside, params, other_entry="999999")
                        word = r"(?<![\w-]){}(?![\w-])"
                        if (a.status_code, re.sub(word.format(entries[o]), "X", a.text)) != (
                            b.status_code,
                            re.sub(word.format("999999"), "X", b.text),
                        ):
                            differ.append(
                                f"{caller} {method} {template} entry of {o}: {a.status_code} {a.text[:80]!r}"
                            )
    assert not leaks, "\n".join(leaks)
    assert not differ, "\n".join(differ)
