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
