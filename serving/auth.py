"""Bearer tokens and users: tokens are random, shown once, and stored only as SHA-256 hashes.

The functions here are shared by the HTTP API (`/api/v1/users`) and the `repradar users` commands.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from repradar.errors import UserError
from serving.db.schema import Token, User, utcnow
from serving.rules import ROLES

TOKEN_PREFIX = "rr_"
NAME_RE = re.compile(r"^[A-Za-z0-9._@-]{1,100}$")


def new_token() -> str:
    """256 bits from the OS generator: a plain SHA-256 is then enough to store it (no guessing possible)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Principal:
    """The authenticated caller."""

    user_id: int
    name: str
    roles: frozenset[str]
    manager_id: str | None

    @property
    def roles_text(self) -> str:
        return ",".join(sorted(self.roles))


@dataclass(frozen=True)
class UserInfo:
    id: int
    name: str
    roles: tuple[str, ...]
    manager_id: str | None
    created_at: dt.datetime
    disabled: bool
    active_tokens: int


def parse_roles(roles: Iterable[str]) -> tuple[str, ...]:
    out = sorted({r.strip() for r in roles if r and r.strip()})
    if not out:
        raise UserError(f"give at least one role: {', '.join(ROLES)}")
    unknown = [r for r in out if r not in ROLES]
    if unknown:
        raise UserError(f"unknown role(s) {', '.join(unknown)}; roles are: {', '.join(ROLES)}")
    return tuple(out)


def authenticate(session: Session, token: str) -> Principal | None:
    """The user behind a token, or None when the token is unknown, revoked, or its user disabled."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    row = session.execute(
        select(User.id, User.name, User.roles, User.manager_id)
        .join(Token, Token.user_id == User.id)
        .where(Token.token_hash == hash_token(token), Token.revoked_at.is_(None), User.disabled_at.is_(None))
    ).first()
    if row is None:
        return None
    return Principal(row.id, row.name, frozenset(row.roles.split(",")), row.manager_id)


def _info(session: Session, user: User) -> UserInfo:
    n = session.scalar(
        select(func.count()).select_from(Token).where(Token.user_id == user.id, Token.revoked_at.is_(None))
    )
    return UserInfo(
        user.id,
        user.name,
        tuple(user.roles.split(",")),
        user.manager_id,
        user.created_at,
        user.disabled_at is not None,
        int(n or 0),
    )


def add_user(
    session: Session, name: str, roles: Iterable[str], manager_id: str | None = None
) -> tuple[UserInfo, str]:
    """Create a user and their first token; the token is returned once and never stored."""
    if not NAME_RE.match(name or ""):
        raise UserError("a user name is 1-100 letters, digits, '.', '_', '@' or '-'")
    roles = parse_roles(roles)
    if "manager" in roles and not manager_id:
        raise UserError("a manager needs --manager-id: the id their reps carry in reps.manager_id")
    if manager_id is not None and not (0 < len(manager_id) <= 100):
        raise UserError("manager id must be 1-100 characters")
    if manager_id is not None and "manager" not in roles:
        raise UserError(
            "--manager-id is only for the manager role (it names the reps they see); "
            f"roles {', '.join(sorted(roles))} need none"
        )
    existing = session.scalar(select(User).where(User.name == name))
    if existing is not None and existing.disabled_at is not None:
        raise UserError(
            f"user {name!r} was revoked, and a name stays with its audit trail: "
            "add the person under another name"
        )
    if existing is not None:
        raise UserError(
            f"user {name!r} exists already; give them a new token with `repradar users token {name}`"
        )
    user = User(name=name, roles=",".join(roles), manager_id=manager_id)
    session.add(user)
    session.flush()
    token = _issue(session, user)
    return _info(session, user), token


def _issue(session: Session, user: User) -> str:
    token = new_token()
    session.add(Token(user_id=user.id, token_hash=hash_token(token), prefix=token[:10]))
    session.flush()
    return token


def _get(session: Session, name: str) -> User:
    user = session.scalar(select(User).where(User.name == name))
    if user is None:
        raise UserError(f"no user named {name!r}; `repradar users list` shows them")
    return user


def issue_token(session: Session, name: str) -> str:
    """A further token for an active user (e.g. to rotate: issue, switch, revoke the old ones)."""
    user = _get(session, name)
    if user.disabled_at is not None:
        raise UserError(
            f"user {name!r} is revoked, and a name stays with its audit trail: "
            "add the person under another name with `repradar users add`"
        )
    return _issue(session, user)


def revoke_user(session: Session, name: str) -> UserInfo:
    """Disable a user and revoke every token they hold; takes effect on the next request."""
    user = _get(session, name)
    now = utcnow()
    if user.disabled_at is None:
        user.disabled_at = now
    session.execute(
        update(Token).where(Token.user_id == user.id, Token.revoked_at.is_(None)).values(revoked_at=now)
    )
    session.flush()
    return _info(session, user)


def get_user(session: Session, user_id: int) -> UserInfo | None:
    user = session.get(User, user_id)
    return None if user is None else _info(session, user)


def list_users(session: Session) -> list[UserInfo]:
    return [_info(session, u) for u in session.scalars(select(User).order_by(User.name))]
