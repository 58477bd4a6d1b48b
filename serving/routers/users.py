"""Users and tokens (admin). The same functions back the `repradar users` commands."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, Path

from repradar.errors import UserError
from serving import audit, store
from serving.auth import (
    Principal,
    UserInfo,
    add_user,
    issue_token,
    list_users,
    live_prefixes,
    revoke_token,
    revoke_user,
    token_lifetime,
)
from serving.db.engine import commit, write_lock
from serving.deps import RequestIdDep, SessionDep, SettingsDep, require
from serving.http_errors import AUTHED, ApiError, responses
from serving.rules import unknown_manager_warning
from serving.schemas import UserCreatedOut, UserIn, UserListOut, UserOut

router = APIRouter(tags=["users"])
Admin = Annotated[Principal, Depends(require("admin"))]
UserName = Annotated[str, Path(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._@-]+$")]
# A token's stored prefix (its first 10 characters), never the whole token: URLs end up in logs.
TokenPrefix = Annotated[
    str,
    Path(
        min_length=10,
        max_length=10,
        pattern=r"^rr_[A-Za-z0-9_-]{7}$",
        description="The token's first 10 characters (`rr_` and 7 more), as `repradar users token` printed it.",
    ),
]


def user_out(u: UserInfo, settings) -> UserOut:
    lifetime = token_lifetime(settings)
    return UserOut(
        id=u.id,
        name=u.name,
        roles=list(u.roles),
        manager_id=u.manager_id,
        created_at=u.created_at,
        disabled=u.disabled,
        active_tokens=u.active_tokens,
        token_prefixes=list(u.token_prefixes),
        token_expires_at=[None if lifetime is None else _aware(t) + lifetime for t in u.token_issued],
    )


def _aware(t: dt.datetime) -> dt.datetime:
    return t if t.tzinfo is not None else t.replace(tzinfo=dt.UTC)


@router.get("/users", response_model=UserListOut, summary="Every user", responses=responses(*AUTHED))
def get_users(principal: Admin, session: SessionDep, settings: SettingsDep) -> UserListOut:
    return UserListOut(items=[user_out(u, settings) for u in list_users(session)])


@router.post(
    "/users",
    response_model=UserCreatedOut,
    status_code=201,
    summary="Create a user and their first token (shown once)",
    description="A manager whose `manager_id` no rep in the service's rep directory reports to is created, "
    "with a warning in `warnings` (as `repradar users add` notes it): a typo would see nobody. Nothing is "
    "said before the first batch has filled the directory.",
    responses=responses(*AUTHED, 400, 409, 413, 415, 422),
)
def create_user(
    body: UserIn, principal: Admin, session: SessionDep, rid: RequestIdDep, settings: SettingsDep
) -> UserCreatedOut:
    with write_lock(session.get_bind()):  # add_user flushes: the whole write under the lock
        try:
            info, token = add_user(session, body.name, body.roles, body.manager_id)
        except UserError as exc:
            session.rollback()
            raise ApiError(409, str(exc)) from None
        warning = info.manager_id and unknown_manager_warning(
            info.manager_id, *store.manager_reports(session, info.manager_id)
        )
        warnings = [warning] if warning else []
        audit.record(
            session,
            principal,
            "user.create",
            "user",
            info.name,
            detail={"roles": list(info.roles), "manager_id": info.manager_id}
            | ({"warnings": warnings} if warnings else {}),
            request_id=rid,
        )
        commit(session)
    return UserCreatedOut(user=user_out(info, settings), token=token, warnings=warnings)


def _known(session, name: str) -> None:
    from sqlalchemy import select

    from serving.db.schema import User

    if session.scalar(select(User.id).where(User.name == name)) is None:
        raise ApiError(404, f"user {name!r} not found")


@router.post(
    "/users/{name}/revoke",
    response_model=UserOut,
    summary="Disable a user and revoke all their tokens",
    description="An admin cannot revoke themselves here (409): that would lock the service's last admin "
    "out as easily as anyone; another admin, or `repradar users revoke` on the server, can.",
    responses=responses(*AUTHED, 404, 409, 422),
)
def revoke(
    name: UserName, principal: Admin, session: SessionDep, rid: RequestIdDep, settings: SettingsDep
) -> UserOut:
    _known(session, name)
    if name == principal.name:
        raise ApiError(
            409, "you cannot revoke yourself; ask another admin, or run `repradar users revoke` on the server"
        )
    with write_lock(session.get_bind()):
        info = revoke_user(session, name)
        audit.record(session, principal, "user.revoke", "user", name, request_id=rid)
        commit(session)
    return user_out(info, settings)


@router.post(
    "/users/{name}/tokens",
    response_model=UserCreatedOut,
    status_code=201,
    summary="Issue a further token for a user (to rotate)",
    responses=responses(*AUTHED, 404, 409, 422),
)
def new_token(
    name: UserName, principal: Admin, session: SessionDep, rid: RequestIdDep, settings: SettingsDep
) -> UserCreatedOut:
    _known(session, name)
    with write_lock(session.get_bind()):
        try:
            token = issue_token(session, name)
        except UserError as exc:
            session.rollback()
            raise ApiError(409, str(exc)) from None
        audit.record(session, principal, "user.token", "user", name, request_id=rid)
        commit(session)
    info = next(u for u in list_users(session) if u.name == name)
    return UserCreatedOut(user=user_out(info, settings), token=token)


@router.post(
    "/users/{name}/tokens/{prefix}/revoke",
    response_model=UserOut,
    summary="Revoke one token of a user (the user and their other tokens stay)",
    description="The token is named by its first 10 characters. Dashboard sessions signed in with it end "
    "too. 404 names the user's live tokens when none starts so; an admin cannot revoke their own last live "
    "token here (409).",
    responses=responses(*AUTHED, 404, 409, 422),
)
def revoke_one_token(
    name: UserName,
    prefix: TokenPrefix,
    principal: Admin,
    session: SessionDep,
    rid: RequestIdDep,
    settings: SettingsDep,
) -> UserOut:
    _known(session, name)
    with write_lock(session.get_bind()):
        if name == principal.name and live_prefixes(session, principal.user_id) == [prefix]:
            raise ApiError(
                409,
                "that is your last live token: you would lock yourself out; issue yourself a new one first "
                f"(POST /api/v1/users/{name}/tokens)",
            )
        try:
            info, revoked = revoke_token(session, name, prefix)
        except UserError as exc:
            session.rollback()
            raise ApiError(404, str(exc)) from None
        audit.record(
            session, principal, "user.token_revoke", "user", name, detail={"prefix": revoked}, request_id=rid
        )
        commit(session)
    return user_out(info, settings)
