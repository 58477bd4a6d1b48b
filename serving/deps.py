"""FastAPI dependencies: settings, database session, the caller, role checks, the request's model."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from repradar.settings import Settings
from serving import audit
from serving.auth import Principal, authenticate, token_lifetime
from serving.http_errors import ApiError

log = logging.getLogger("repradar.serving.auth")

# Dependencies that do no I/O are `async def`: FastAPI runs sync ones in the thread pool, one hop each.
bearer = HTTPBearer(
    auto_error=False,
    description="A token from `repradar users add`; send it as `Authorization: Bearer <token>`.",
)


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_session(request: Request) -> Iterator[Session]:
    with request.app.state.sessions() as session:
        yield session


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def request_id_of(request: Request) -> str:
    return request.scope.get("repradar.request_id", "")


SettingsDep = Annotated[Settings, Depends(get_settings)]
SessionDep = Annotated[Session, Depends(get_session)]


def get_principal(
    request: Request,
    session: SessionDep,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    challenge = {"WWW-Authenticate": "Bearer"}
    if creds is None:
        raise ApiError(401, "send a bearer token: Authorization: Bearer <token>", headers=challenge)
    # guessing tokens: an address with too many bad ones is turned away before the next is looked at
    limit, address = request.app.state.token_limit, client_address(request)
    wait = limit.wait_for(address, "API tokens", request_id_of(request))
    if wait:
        raise ApiError(
            429,
            f"too many unknown, revoked or expired tokens from this address; retry in {wait} s",
            headers={"Retry-After": str(wait)},
        )
    principal = authenticate(session, creds.credentials, token_lifetime(request.app.state.settings))
    if principal is None:
        limit.fail(address)
        # for incident work: who tried, never the token itself
        log.warning("API token refused from %s (request %s)", address, request_id_of(request))
        raise ApiError(
            401, "the token is unknown, revoked or expired; ask an admin for a new one", headers=challenge
        )
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def require(*roles: str) -> Callable[[Principal], Principal]:
    """A dependency that lets callers holding any of `roles` through, and answers 403 to the others."""

    async def check(request: Request, principal: PrincipalDep) -> Principal:
        if not set(roles) & principal.roles:
            # a refused attempt by a known user is in the trail (who, when, which address)
            await run_in_threadpool(
                audit.refusal,
                request.app.state.sessions,
                principal,
                request.url.path,
                roles,
                request_id_of(request),
            )
            raise ApiError(403, roles_needed(roles))
        return principal

    return check


def roles_needed(roles: tuple[str, ...]) -> str:
    """The 403's detail: "this needs the role hr", or "one of the roles manager or hr" for several (a
    list of one read "one of the roles: hr")."""
    if len(roles) == 1:
        return f"this needs the role {roles[0]}"
    return f"this needs one of the roles {', '.join(roles[:-1])} or {roles[-1]}"


async def request_model(request: Request) -> Any:
    """The champion taken when this request started: it serves the whole request, even across a swap."""
    return request.scope.get("repradar.model")


async def request_id(request: Request) -> str | None:
    return request.scope.get("repradar.request_id")


ModelDep = Annotated[Any, Depends(request_model)]
RequestIdDep = Annotated[str | None, Depends(request_id)]


def model_version(model: Any) -> str | None:
    return None if model is None else str(model.version)


_QUERY_NAMES: dict[int, frozenset[str]] = {}


async def reject_nul(request: Request) -> None:
    """A NUL in the path or the query is a 422: no id or filter holds one, and PostgreSQL refuses it in text."""
    where = [("path",)] if "\x00" in request.url.path else []
    where += [("query", k) for k, v in request.query_params.multi_items() if "\x00" in k or "\x00" in v]
    if where:
        from fastapi.exceptions import RequestValidationError

        raise RequestValidationError(
            [
                {"loc": loc, "msg": "holds a NUL character (%00); remove it", "type": "value_error"}
                for loc in where
            ]
        )


async def reject_unknown_query(request: Request) -> None:
    """Strict requests: a query parameter the route does not declare is a 422, not silently ignored."""
    route = request.scope.get("route")
    if route is None or not request.query_params:
        return
    allowed = _QUERY_NAMES.get(id(route))
    if allowed is None:  # the query parameters of the route and of all its dependencies
        names: set[str] = set()
        stack = [route.dependant]
        while stack:
            dependant = stack.pop()
            names.update(p.alias for p in dependant.query_params)
            stack.extend(dependant.dependencies)
        allowed = _QUERY_NAMES[id(route)] = frozenset(names)
    unknown = sorted(set(request.query_params) - allowed)
    if unknown:
        from fastapi.exceptions import RequestValidationError

        raise RequestValidationError(
            [
                {"loc": ("query", name), "msg": "unknown query parameter", "type": "extra_forbidden"}
                for name in unknown
            ]
        )


class _DuplicateKey(ValueError):
    def __init__(self, key: str):
        super().__init__(key)
        self.key = key


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


def _is_json(content_type: str | None) -> bool:
    """Whether FastAPI reads a body of this Content-Type as JSON (application/json or a +json type)."""
    kind = (content_type or "").split(";", 1)[0].strip().lower()
    main, _, sub = kind.partition("/")
    return main == "application" and (sub == "json" or sub.endswith("+json"))


async def reject_duplicate_keys(request: Request) -> None:
    """A JSON body naming a key twice (`{"intervention": "a", "intervention": "b"}`) is a 422 naming the key:
    JSON leaves such an object's meaning open (RFC 8259 4), and Python's parser would keep the last value
    silently. For every route that takes a body, before its schema is checked; a body that is not JSON at all
    is left to the schema check (its own 422) and a body not sent as JSON to the 415."""
    route = request.scope.get("route")
    if getattr(route, "body_field", None) is None or not _is_json(request.headers.get("content-type")):
        return
    body = await request.body()  # read once already by FastAPI; this is its copy
    try:
        json.loads(body, object_pairs_hook=_unique_pairs)
    except _DuplicateKey as dup:
        from fastapi.exceptions import RequestValidationError

        raise RequestValidationError(
            [
                {
                    "loc": ("body", dup.key),
                    "msg": f"the key {dup.key!r} appears more than once in the JSON body; send each key once",
                    "type": "duplicate_key",
                }
            ]
        ) from None
    except (ValueError, RecursionError):  # not JSON (or not UTF-8): the schema check says so
        return
