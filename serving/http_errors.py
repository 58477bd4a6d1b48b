"""Errors as JSON: `{"detail": ..., "code": ...}` for every 4xx/5xx, declared in the OpenAPI of each route.

User mistakes (bad input, unknown ids, a refused request) are 4xx with a message that says what to
do; only a bug gives 500, and then without internals.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from sqlalchemy.exc import InternalError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute, Mount

from repradar.errors import Unavailable, UserError
from serving.db.engine import unwritable_reason
from serving.jobs import Conflict, ServiceUnavailable, TooManyJobs
from serving.middleware import plain_page, wants_page
from serving.schemas import ErrorOut, ValidationErrorOut

log = logging.getLogger("repradar.serving")

CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    410: "gone",
    413: "body_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "too_many_requests",
    500: "internal_error",
    503: "unavailable",
}
DESCRIPTIONS = {
    400: "The request cannot be read (e.g. a body that is not JSON) or carried out as asked.",
    401: "No bearer token, or a token that is unknown, revoked or expired.",
    403: "The caller's role may not use this endpoint.",
    404: "Not found; for a rep outside the caller's scope the same answer as for one that does not exist.",
    409: "Conflicts with the service's state or configuration.",
    410: "Deleted by a retention purge, or lost from the service's disk; it will not come back (ask for it again).",
    413: "The request body is larger than the service accepts.",
    415: "The body was not sent as JSON: send it with `Content-Type: application/json`.",
    429: "Too many unfinished batch jobs, or too many bad tokens from this address; retry after Retry-After.",
    503: "Overloaded (retry after the Retry-After header) or not ready.",
}


class ApiError(Exception):
    def __init__(self, status: int, detail: str, code: str | None = None, headers: dict | None = None):
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.code = code or CODES.get(status, "error")
        self.headers = headers


def not_found(what: str) -> ApiError:
    return ApiError(404, f"{what} not found")


def error_body(status: int, detail: str, code: str | None = None) -> dict[str, str]:
    return {"detail": detail, "code": code or CODES.get(status, "error")}


def responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the error statuses a route can answer."""
    out: dict[int | str, dict[str, Any]] = {}
    for c in codes:
        if c == 422:
            out[422] = {"model": ValidationErrorOut, "description": "The request breaks its schema."}
        else:
            out[c] = {"model": ErrorOut, "description": DESCRIPTIONS.get(c, "Error.")}
    return out


# Every authenticated API route: auth, bad tokens from this address (429), overload.
AUTHED = (401, 403, 429, 503)


ALLOW_KEY = "repradar.allow"  # scope key: a route that knows the whole Allow list puts it here
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def catch_all(endpoint):
    """Mark `endpoint` as answering addresses no page has (the dashboard's mistyped pages): its methods are
    none of any address's, so `allowed_methods` leaves it out."""
    endpoint.repradar_catch_all = True
    return endpoint


def allowed_methods(request: Request) -> list[str]:
    """Every method some route offers for this request's path.

    Each method is tried against every route of the app, those of included routers too (FastAPI >= 0.165
    keeps them as opaque route groups, whose `matches` would answer for the whole group). The catch-all of
    mistyped dashboard pages matches every dashboard path with GET, and answers a path some form takes
    with its own 405: counting it named GET and HEAD for `PUT /logout`, which only a POST serves. Where
    nothing but it matches, its methods are the answer (its GET answers there, with a 404)."""
    from fastapi.routing import iter_route_contexts
    from starlette.routing import Match

    routes = list(iter_route_contexts(request.app.router.routes))
    own = [r for r in routes if not getattr(r.endpoint, "repradar_catch_all", False)]

    def offered(candidates) -> list[str]:
        return [
            m
            for m in METHODS
            if any(r.matches({**request.scope, "method": m})[0] is Match.FULL for r in candidates)
        ]

    return offered(own) or offered(routes)


SLASHLESS_KEY = "repradar.slashless"  # scope key: the dashboard's catch-all puts what its path meant here


def without_trailing_slash(request: Request) -> str | None:
    """The address a request with a trailing slash meant (`/api/v1/me/` -> `/api/v1/me`, `/team/` -> `/team`)
    when some route serves it, for any method; else None. The service has one address per resource and
    does not redirect to it: some clients do not follow a 307 for a POST, and behind a TLS proxy its
    Location could say http://. A mount (static files) is no address. A dashboard path would match the
    catch-all of mistyped pages here, so that route judges it against the dashboard's pages and puts the
    answer under SLASHLESS_KEY."""
    if SLASHLESS_KEY in request.scope:
        return request.scope[SLASHLESS_KEY]
    root = request.scope.get("root_path", "")
    if root != request.scope.get("app_root_path", root):  # a mount's own 404: its paths are not the app's
        return None
    routes = [r for r in request.app.router.routes if not isinstance(r, Mount)]
    return slashless_address(request, routes, METHODS)


def slashless_address(request: Request, routes: Iterable[BaseRoute], methods: Iterable[str]) -> str | None:
    """The request's path without its trailing slash(es) when one of `routes` serves that address for one
    of `methods`, else None (no trailing slash, or nothing there). Only the routes decide, never what is
    stored: `/reps/R1/` means `/reps/R1` whether or not R1 exists."""
    from starlette.routing import Match

    path = request.scope.get("path", "")
    meant = path.rstrip("/")
    if meant == path or not meant:
        return None
    routes = list(routes)
    for m in methods:
        probe = {**request.scope, "path": meant, "method": m}
        if any(r.matches(probe)[0] is Match.FULL for r in routes):
            return meant
    return None


def _summary(errors: list[dict]) -> str:
    parts = []
    for e in errors[:5]:
        if e.get("type") == "json_invalid":  # loc is ("body", offset): say what it means
            at = next((x for x in e.get("loc", ()) if isinstance(x, int)), None)
            where = f" at character {at}" if at is not None else ""
            parts.append(f"the body is not valid JSON (error{where}); send a JSON object")
            continue
        loc = ".".join(str(x) for x in e.get("loc", ()) if x not in ("body",)) or "request"
        parts.append(f"{loc}: {e.get('msg', 'invalid')}")
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    return "; ".join(parts) + more


def _path(request: Request) -> str:
    """The path for a log line, with control characters escaped (a NUL must not reach the log raw)."""
    return request.url.path.encode("unicode_escape").decode("ascii")


def unavailable(request: Request, detail: str, retry_after: str) -> Response:
    """A 503 (something the service needs is down; nothing the caller sent was wrong): JSON for the API,
    a small page for a browser's dashboard page or form rather than JSON on screen."""
    headers = {"Retry-After": retry_after}
    if wants_page(request.url.path, request.headers.get("accept", "")):
        return HTMLResponse(plain_page(503, detail), 503, headers=headers)
    return JSONResponse(error_body(503, detail), 503, headers=headers)


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError):
        return JSONResponse(error_body(exc.status, exc.detail, exc.code), exc.status, headers=exc.headers)

    @app.exception_handler(UserError)
    async def _user_error(request: Request, exc: UserError):
        if isinstance(exc, Unavailable):  # nothing the caller sent was wrong: retry when it is back
            return unavailable(request, str(exc), "30")
        return JSONResponse(error_body(400, str(exc)), 400)

    @app.exception_handler(Conflict)
    async def _conflict(request: Request, exc: Conflict):
        return JSONResponse(error_body(409, str(exc)), 409)

    @app.exception_handler(TooManyJobs)
    async def _too_many(request: Request, exc: TooManyJobs):
        return JSONResponse(error_body(429, str(exc)), 429, headers={"Retry-After": "30"})

    @app.exception_handler(ServiceUnavailable)
    async def _unavailable(request: Request, exc: ServiceUnavailable):
        return unavailable(request, str(exc), "5")

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        if isinstance(exc.body, (bytes, bytearray)) and exc.body:
            # FastAPI reads a body as JSON only when its Content-Type says so; otherwise the model is
            # handed raw bytes and pydantic's complaint ("a valid dictionary") hides the real mistake
            got = request.headers.get("content-type") or "none"
            return JSONResponse(
                error_body(
                    415,
                    f"the body must be JSON, sent with Content-Type: application/json (this request's "
                    f"Content-Type: {got[:100]})",
                ),
                415,
            )
        errors = [
            {
                "loc": [x if isinstance(x, (int, str)) else str(x) for x in e.get("loc", ())],
                "msg": str(e.get("msg", "")),
                "type": str(e.get("type", "")),
            }
            for e in exc.errors()
        ]
        body = {"detail": _summary(errors), "code": "invalid_request", "errors": errors}
        return JSONResponse(body, 422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        headers = dict(exc.headers or {})
        if exc.status_code == 404 and (meant := without_trailing_slash(request)):
            detail = f"no such address: the service's addresses end without a slash; use {meant}"[:300]
        if exc.status_code == 405:  # Starlette names only the first route's methods; a path may have several
            headers["Allow"] = request.scope.get(ALLOW_KEY) or ", ".join(allowed_methods(request))
        return JSONResponse(error_body(exc.status_code, detail), exc.status_code, headers=headers or None)

    @app.exception_handler(OperationalError)
    @app.exception_handler(InternalError)
    @app.exception_handler(PoolTimeout)
    async def _database_down(request: Request, exc: Exception):
        rid = request.scope.get("repradar.request_id", "")
        if why := unwritable_reason(exc):
            # a full disk or a read-only database (PostgreSQL says the latter as an InternalError): the
            # transaction was rolled back whole, and only an administrator can make it writable again
            log.error(
                "database cannot be written (%s) on %s %s (request %s): %s",
                why,
                request.method,
                _path(request),
                rid,
                " ".join(str(getattr(exc, "orig", None) or exc).split()),
            )
            return unavailable(
                request,
                f"the database cannot be written ({why}); nothing was saved (request {rid}). An administrator "
                "must free space on its disk or make it writable; retry once they have",
                "60",
            )
        if isinstance(exc, InternalError):  # any other is a bug
            return await _bug(request, exc)
        # the database cannot be reached or is busy: the caller may retry (/health/ready says the same)
        log.error(
            "database unavailable on %s %s (request %s): %s",
            request.method,
            _path(request),
            rid,
            getattr(exc, "orig", exc),
        )
        return unavailable(request, f"the database is unavailable (request {rid}); retry in a moment", "5")

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception):
        rid = request.scope.get("repradar.request_id", "")
        log.exception("unhandled error on %s %s (request %s)", request.method, _path(request), rid)
        return JSONResponse(
            error_body(500, f"internal error (request {rid}); the service log has details"), 500
        )
