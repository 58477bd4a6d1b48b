"""HEAD wherever GET is (RFC 9110 9.3.2: a server that answers GET should answer HEAD the same way, without
the body). FastAPI routes answer only the methods they name, so a GET route gave 405 to HEAD, which uptime
monitors and link checkers read as "down"."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.routing import APIRoute


def with_head(router: APIRouter) -> APIRouter:
    """Give each GET route of `router` a HEAD twin: the same endpoint, dependencies and response class, so
    the same status and headers; kept out of the OpenAPI document. serving.middleware drops the body.

    Idempotent (create_app runs once per app, the routers are module-level) and leaves a path alone that
    has its own HEAD route."""
    heads = {r.path for r in router.routes if isinstance(r, APIRoute) and "HEAD" in r.methods}
    own = len(router.dependencies)  # add_api_route adds the router's own again
    for route in list(router.routes):
        if not isinstance(route, APIRoute) or "GET" not in route.methods or route.path in heads:
            continue
        router.add_api_route(
            route.path[len(router.prefix) :],
            route.endpoint,
            methods=["HEAD"],
            response_model=route.response_model,
            status_code=route.status_code,
            dependencies=route.dependencies[own:],
            response_class=route.response_class,
            response_model_exclude_none=route.response_model_exclude_none,
            include_in_schema=False,
            name=f"{route.name}_head",
        )
    return router
