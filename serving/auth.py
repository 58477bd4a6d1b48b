"""Bearer tokens, users and dashboard sessions: tokens and session secrets are random, and stored only as
SHA-256 hashes.

The functions here are shared by the HTTP API (`/api/v1/users`), the dashboard's sign-in and the
`repradar users` commands.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import math
import re
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from repradar.errors import UserError
from serving.db.engine import commit, write_lock
from serving.db.schema import AuthFailure, Token, User, WebSession, utcnow
from serving.rules import ROLES
from serving.schemas import text_problem

log = logging.getLogger("repradar.serving.auth")

TOKEN_PREFIX = "rr_"
SESSION_PREFIX = "rs_"  # a dashboard session's secret: never accepted as an API token, nor a token as one
PREFIX_LEN = 10  # the stored, shown start of a token (`tokens.prefix`): names it without revealing it
NAME_RE = re.compile(r"^[A-Za-z0-9._@-]{1,100}$")
RESERVED_NAMES = frozenset({"system"})  # serving.audit.SYSTEM: a user so named could pass for the service


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
    # the prefix of the token the caller used (directly, or to sign in to the dashboard): the audit
    # trail names it, so a read with a token an admin issued for someone else can be told apart
    token_prefix: str | None = None

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
    token_prefixes: tuple[str, ...] = ()  # the live tokens' prefixes, oldest first
    token_issued: tuple[dt.datetime, ...] = ()  # when each of them was issued (same order)

    def token_states(self, lifetime: dt.timedelta | None, now: dt.datetime) -> list[str]:
        """Each live token as an admin reads it: its prefix, and the (UTC) day it stops or stopped working."""
        out = []
        for prefix, issued in zip(self.token_prefixes, self.token_issued, strict=True):
            if lifetime is None:
                out.append(prefix)
                continue
            ends = _utc(issued) + lifetime
            out.append(f"{prefix} expired {ends.date()}" if ends <= now else f"{prefix} until {ends.date()}")
        return out


def parse_roles(roles: Iterable[str]) -> tuple[str, ...]:
    out = sorted({r.strip() for r in roles if r and r.strip()})
    if not out:
        raise UserError(f"give at least one role: {', '.join(ROLES)}")
    unknown = [r for r in out if r not in ROLES]
    if unknown:
        raise UserError(f"unknown role(s) {', '.join(unknown)}; roles are: {', '.join(ROLES)}")
    return tuple(out)


def _principal(row) -> Principal:
    """The caller from a row holding the user's id, name, roles and manager id and the token's prefix."""
    return Principal(
        row.id, row.name, frozenset(row.roles.split(",")), row.manager_id, token_prefix=row.prefix
    )


def _live_token(session: Session, token: str, max_age: dt.timedelta | None = None):
    """(token id, Principal) for a live token of an active user (issued less than `max_age` ago), else None."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    q = (
        select(Token.id.label("token_id"), Token.prefix, User.id, User.name, User.roles, User.manager_id)
        .join(Token, Token.user_id == User.id)
        .where(Token.token_hash == hash_token(token), Token.revoked_at.is_(None), User.disabled_at.is_(None))
    )
    if max_age is not None:
        q = q.where(Token.created_at > utcnow() - max_age)
    row = session.execute(q).first()
    if row is None:
        return None
    return row.token_id, _principal(row)


def authenticate(session: Session, token: str, max_age: dt.timedelta | None = None) -> Principal | None:
    """The user behind a token, or None when the token is unknown, revoked, expired (older than `max_age`),
    or its user disabled."""
    found = _live_token(session, token, max_age)
    return None if found is None else found[1]


class FailureLimit:
    """Refused tokens or sign-ins (`kind`) per client address in a sliding window, counted in the service's
    database (`auth_failures`), so that every worker process of `serve --workers N`, and every host using the
    database, shares one allowance. Beyond `max_failures` the address is turned away, before any token is
    looked at, until its oldest failure leaves the window; a good sign-in does not clear the count (an
    attacker holding one token could reset it). Times are Unix seconds from `clock` (shared across processes)."""

    LOGGED_ADDRESSES = 10_000  # beyond this, the memory of what was logged starts afresh

    def __init__(self, sessions, kind: str, max_failures: int, window_s: float, clock=time.time):
        self.sessions, self.kind = sessions, kind
        self.max_failures, self.window_s, self.clock = max_failures, window_s, clock
        self._logged: dict[str, float] = {}  # address -> when its last turn-away was logged (this process)

    def wait_for(self, key: str, what: str, request_id: str | None) -> int:
        """`retry_after(key)`; a turn-away (`what`: "API tokens", "dashboard sign-ins") is logged once per
        window and process: a flood of requests from the address would otherwise write a warning each and
        fill the log (the 429s still go to every request)."""
        wait = self.retry_after(key)
        if wait and self._first_turn_away(key):
            log.warning(
                "%s from %s turned away: too many refused (request %s; its further ones in the next %d s "
                "are turned away without a log line)",
                what,
                key,
                request_id,
                self.window_s,
            )
        return wait

    def _first_turn_away(self, key: str) -> bool:
        now = self.clock()
        last = self._logged.get(key)
        if last is not None and now - last < self.window_s:
            return False
        if len(self._logged) >= self.LOGGED_ADDRESSES:
            self._logged.clear()
        self._logged[key] = now
        return True

    def retry_after(self, key: str) -> int:
        """Seconds until `key` may try again; 0 when it may now."""
        now = self.clock()
        with self.sessions() as session:
            # the newest `max_failures` failures in the window: the oldest of them decides the wait
            recent = session.scalars(
                select(AuthFailure.at)
                .where(
                    AuthFailure.kind == self.kind,
                    AuthFailure.address == key[:100],
                    AuthFailure.at > now - self.window_s,
                )
                .order_by(AuthFailure.at.desc())
                .limit(self.max_failures)
            ).all()
        if len(recent) < self.max_failures:
            return 0
        return max(1, math.ceil(recent[-1] + self.window_s - now))

    def fail(self, key: str) -> None:
        """Count a failure of `key`; failures of any address that left the window are deleted on the way."""
        now = self.clock()
        with write_lock(self.sessions.kw["bind"]), self.sessions.begin() as session:
            session.execute(
                delete(AuthFailure).where(
                    AuthFailure.kind == self.kind, AuthFailure.at <= now - self.window_s
                )
            )
            session.add(AuthFailure(kind=self.kind, address=key[:100], at=now))


def token_lifetime(settings) -> dt.timedelta | None:
    """How long an API token works after it was issued (`REPRADAR_TOKEN_MAX_DAYS`; 0: for ever)."""
    days = getattr(settings, "token_max_days", 0)
    return dt.timedelta(days=days) if days else None


# -- dashboard sessions ---------------------------------------------------------------------------
@dataclass(frozen=True)
class SessionLimits:
    """How long a dashboard session lives: `idle` without a request, `lifetime` in all."""

    idle: dt.timedelta
    lifetime: dt.timedelta
    token_lifetime: dt.timedelta | None = None  # the API token signed in with expires: its sessions end

    @classmethod
    def of(cls, settings) -> SessionLimits:
        return cls(
            dt.timedelta(minutes=settings.session_idle_minutes),
            dt.timedelta(hours=settings.session_max_hours),
            token_lifetime(settings),
        )

    @property
    def touch_after(self) -> dt.timedelta:
        """Requests closer together than this leave `last_seen_at` alone: no database write per page view
        (the idle timeout is then exact to within this)."""
        return min(dt.timedelta(minutes=1), self.idle / 10)

    def ended(self, created_at: dt.datetime, last_seen_at: dt.datetime, now: dt.datetime) -> bool:
        return now >= created_at + self.lifetime or now >= last_seen_at + self.idle


def _utc(t: dt.datetime) -> dt.datetime:
    """SQLite gives back naive UTC stamps, PostgreSQL aware ones: both as aware UTC."""
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


def new_session_secret() -> str:
    """256 bits, like a token; only its SHA-256 is stored."""
    return SESSION_PREFIX + secrets.token_urlsafe(32)


def start_session(
    session: Session, token: str, limits: SessionLimits, now: dt.datetime | None = None
) -> tuple[Principal, str] | None:
    """Sign in with an API token: a new session for its user, returned with its secret (for the cookie, never
    stored); None when the token does not authenticate. Ended sessions of anyone are removed on the way.
    Flushes; the caller commits under the write lock."""
    found = _live_token(session, token, limits.token_lifetime)
    if found is None:
        return None
    token_id, principal = found
    now = now or utcnow()
    session.execute(
        delete(WebSession).where(
            or_(WebSession.created_at <= now - limits.lifetime, WebSession.last_seen_at <= now - limits.idle)
        )
    )
    secret = new_session_secret()
    session.add(
        WebSession(
            secret_hash=hash_token(secret),
            user_id=principal.user_id,
            token_id=token_id,
            created_at=now,
            last_seen_at=now,
        )
    )
    session.flush()
    return principal, secret


def resume_session(
    session: Session, secret: str, limits: SessionLimits, now: dt.datetime | None = None
) -> Principal | None:
    """The user of a live session, else None (unknown or ended secret; its token revoked; its user disabled).

    Keeps the session alive (`last_seen_at`, at most once per `limits.touch_after`) and deletes an ended
    one: that small write is committed here, under the write lock, so call it before the request writes
    anything of its own."""
    if not secret.startswith(SESSION_PREFIX) or len(secret) > 200:
        return None
    now = now or utcnow()
    row = session.execute(
        select(
            WebSession.id.label("session_id"),
            WebSession.created_at,
            WebSession.last_seen_at,
            Token.revoked_at,
            Token.created_at.label("token_created_at"),
            Token.prefix,
            User.id,
            User.name,
            User.roles,
            User.manager_id,
            User.disabled_at,
        )
        .join(User, User.id == WebSession.user_id)
        .join(Token, Token.id == WebSession.token_id)
        .where(WebSession.secret_hash == hash_token(secret))
    ).first()
    if row is None:
        return None
    live = (
        row.revoked_at is None
        and (limits.token_lifetime is None or now < _utc(row.token_created_at) + limits.token_lifetime)
        and row.disabled_at is None
        and not limits.ended(row.created_at, row.last_seen_at, now)
    )
    if live and now - row.last_seen_at < limits.touch_after:
        return _principal(row)
    with write_lock(session.get_bind()):
        if live:
            session.execute(
                update(WebSession).where(WebSession.id == row.session_id).values(last_seen_at=now)
            )
        else:
            session.execute(delete(WebSession).where(WebSession.id == row.session_id))
        commit(session)
    return _principal(row) if live else None


def end_session(session: Session, secret: str) -> bool:
    """Sign out: delete the session row (a copied cookie is then worthless). Flushes; the caller commits."""
    if not secret.startswith(SESSION_PREFIX) or len(secret) > 200:
        return False
    gone = session.execute(delete(WebSession).where(WebSession.secret_hash == hash_token(secret)))
    session.flush()
    return bool(gone.rowcount)


def _info(session: Session, user: User) -> UserInfo:
    live = session.execute(
        select(Token.prefix, Token.created_at)
        .where(Token.user_id == user.id, Token.revoked_at.is_(None))
        .order_by(Token.created_at, Token.id)
    ).all()
    return UserInfo(
        user.id,
        user.name,
        tuple(user.roles.split(",")),
        user.manager_id,
        user.created_at,
        user.disabled_at is not None,
        len(live),
        tuple(r.prefix for r in live),
        tuple(r.created_at for r in live),
    )


def add_user(
    session: Session, name: str, roles: Iterable[str], manager_id: str | None = None
) -> tuple[UserInfo, str]:
    """Create a user and their first token; the token is returned once and never stored."""
    if not NAME_RE.match(name or ""):
        raise UserError("a user name is 1-100 letters, digits, '.', '_', '@' or '-'")
    if name.lower() in RESERVED_NAMES:
        raise UserError(
            f"the name {name!r} is reserved: the audit trail names the service's own actions so; choose another"
        )
    roles = parse_roles(roles)
    if "manager" in roles and not manager_id:
        raise UserError("a manager needs --manager-id: the id their reps carry in reps.manager_id")
    if manager_id is not None and not (0 < len(manager_id) <= 100):
        raise UserError("manager id must be 1-100 characters")
    if manager_id is not None and (why := text_problem(manager_id, multiline=False)):
        raise UserError(f"the manager id {why}")
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
    session.execute(delete(WebSession).where(WebSession.user_id == user.id))  # signed out everywhere
    session.flush()
    return _info(session, user)


def live_prefixes(session: Session, user_id: int) -> list[str]:
    """The prefixes of a user's live tokens, oldest first (what an admin names a token by)."""
    return list(
        session.scalars(
            select(Token.prefix)
            .where(Token.user_id == user_id, Token.revoked_at.is_(None))
            .order_by(Token.created_at, Token.id)
        )
    )


def revoke_token(session: Session, name: str, prefix: str) -> tuple[UserInfo, str]:
    """Revoke one token of a user, named by its prefix (its first 10 characters), and end the dashboard
    sessions signed in with it; the user and their other tokens stay. Returns the user and the prefix.
    Flushes; the caller commits."""
    user = _get(session, name)
    given = (prefix or "").strip()
    live = live_prefixes(session, user.id)
    shown = ", ".join(live) if live else "none"
    if len(given) < PREFIX_LEN or not given.startswith(TOKEN_PREFIX):
        raise UserError(
            f"name the token by its first {PREFIX_LEN} characters (its prefix, like rr_AbC1234); "
            f"{name}'s live tokens: {shown}"
        )
    rows = session.scalars(
        select(Token).where(
            Token.user_id == user.id, Token.revoked_at.is_(None), Token.prefix == given[:PREFIX_LEN]
        )
    ).all()
    if len(given) > PREFIX_LEN:  # a whole token was given: that one exactly
        rows = [t for t in rows if t.token_hash == hash_token(given)]
    if not rows:
        raise UserError(
            f"{name} holds no live token starting {given[:PREFIX_LEN]!r}; their live tokens: {shown}"
        )
    if len(rows) > 1:
        raise UserError(
            f"{name} holds {len(rows)} live tokens starting {given[:PREFIX_LEN]!r}; revoke the user, or give "
            "the whole token to pick one"
        )
    token = rows[0]
    token.revoked_at = utcnow()
    session.execute(delete(WebSession).where(WebSession.token_id == token.id))
    session.flush()
    return _info(session, user), token.prefix


def get_user(session: Session, user_id: int) -> UserInfo | None:
    user = session.get(User, user_id)
    return None if user is None else _info(session, user)


def list_users(session: Session) -> list[UserInfo]:
    return [_info(session, u) for u in session.scalars(select(User).order_by(User.name))]
