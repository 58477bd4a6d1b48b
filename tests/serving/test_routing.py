"""serving.routing.with_head: a HEAD twin for each GET route, once, out of the OpenAPI document."""

from __future__ import annotations

from fastapi import APIRouter, Depends, FastAPI
from fastapi.testclient import TestClient


def test_each_get_route_gets_one_head_twin_with_its_dependencies():
    from serving.routing import with_head

    calls = []

    def counted() -> None:
        calls.append(1)

    router = APIRouter(prefix="/p", dependencies=[Depends(counted)])

    @router.get("/a")
    def a() -> dict:
        return {"a": 1}

    @router.post("/a")
    def post_a() -> dict:
        return {}

    @router.get("/b")
    @router.head("/b", include_in_schema=False)
    def b() -> dict:
        return {"b": 2}

    with_head(with_head(router))  # idempotent: the routers are module-level, apps are built many times
    methods = sorted((r.path, sorted(r.methods)) for r in router.routes)
    assert methods == [
        ("/p/a", ["GET"]),
        ("/p/a", ["HEAD"]),
        ("/p/a", ["POST"]),
        ("/p/b", ["GET"]),
        ("/p/b", ["HEAD"]),  # its own HEAD route is kept, no second one
    ]
    app = FastAPI()
    app.include_router(router)
    c = TestClient(app)
    head = c.head("/p/a")
    assert (
        head.status_code == 200 and head.headers["content-length"] == c.get("/p/a").headers["content-length"]
    )
    assert len(calls) == 2  # the router's dependency ran for the HEAD as for the GET, once each
    assert "head" not in app.openapi()["paths"]["/p/a"]


def test_an_address_with_a_trailing_slash_is_a_404_naming_the_address_never_a_redirect(service):
    """Each route of the API and the probes, asked with a trailing slash (`/api/v1/jobs/`): a 404 whose
    detail names the address to use, not a 307 (which some clients do not follow for a POST, and whose
    Location behind a TLS proxy said http://); nothing is done or recorded. An address no route serves
    keeps the plain 404."""
    import re

    from sqlalchemy import func, select

    from serving.db.schema import AuditEvent, InterventionLog, Job

    from .conftest import AS_OF_2

    def counts():
        with service.session() as s:
            return [s.scalar(select(func.count()).select_from(m)) for m in (AuditEvent, InterventionLog, Job)]

    before = counts()
    bodies = {"post": {"as_of": AS_OF_2.isoformat(), "intervention": "mentoring", "started_on": "2024-01-16"}}
    paths = service.app.openapi()["paths"]
    asked = 0
    for template, ops in {**paths, "/health/live": {"get": {}}, "/health/ready": {"get": {}}}.items():
        address = re.sub(r"\{rep_id\}", "R1", re.sub(r"\{[a-z_]+\}", "1", template))
        for method in ops:
            if method not in ("get", "post", "patch"):
                continue
            r = service.client.request(
                method.upper(),
                address + "/",
                headers=service.h("hr"),
                json=bodies.get(method, {"ended_on": "2024-02-01"}) if method != "get" else None,
                follow_redirects=False,
            )
            assert r.status_code == 404 and "location" not in r.headers, (method, address, r.status_code)
            assert r.json() == {
                "detail": f"no such address: the service's addresses end without a slash; use {address}",
                "code": "not_found",
            }
            asked += 1
    assert asked > 20 and counts() == before
    plain = service.client.get("/api/v1/reps/", headers=service.h("hr"))  # /api/v1/reps is no address
    assert plain.status_code == 404 and plain.json()["detail"] == "Not Found"
