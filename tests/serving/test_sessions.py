"""Dashboard sessions on SQLite and PostgreSQL: the cookie holds a session secret (never the API token),
stored only hashed; sessions end at sign-out, when idle or too old, with their token or their user; one
token can be revoked (API and CLI) without disabling the user."""

from __future__ import annotations

import datetime as dt
import hashlib

from fastapi.testclient import TestClient
from sqlalchemy import select, update

from serving.auth import SESSION_PREFIX
from serving.db.schema import AuditEvent, Token, User, WebSession
from serving.web.pages import SESSION_COOKIE


def sign_in(service, token: str, base_url: str = "http://testserver") -> TestClient:
    """A fresh browser signed in through the form."""
    c = TestClient(service.app, base_url=base_url)
    r = c.post("/login", data={"token": token, "next": "/team"}, follow_redirects=False)
    assert r.status_code == 303, r.text
    return c


def rows(service, user: str | None = None) -> list[WebSession]:
    with service.session() as s:
        q = select(WebSession).order_by(WebSession.id)
        if user is not None:
            q = q.join(User, User.id == WebSession.user_id).where(User.name == user)
        return list(s.scalars(q))


def age(service, secret: str, **columns: dt.timedelta) -> None:
    """Move a session's timestamps back (as if that much time had passed)."""
    now = dt.datetime.now(dt.UTC)
    with service.session() as s, s.begin():
        s.execute(
            update(WebSession)
            .where(WebSession.secret_hash == hashlib.sha256(secret.encode()).hexdigest())
            .values(**{k: now - v for k, v in columns.items()})
        )


def assert_ended(client: TestClient) -> None:
    r = client.get("/team", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login?next=%2Fteam&expired=1", r.headers
    assert f"{SESSION_COOKIE}=;" in r.headers["set-cookie"] and "Max-Age=0" in r.headers["set-cookie"]


def test_the_cookie_holds_a_hashed_session_secret_not_the_token(service):
    c = sign_in(service, service.tokens["mgr1"])
    secret = c.cookies.get(SESSION_COOKIE)
    assert secret.startswith(SESSION_PREFIX) and service.tokens["mgr1"] not in secret
    [row] = rows(service, "mgr1")
    assert row.secret_hash == hashlib.sha256(secret.encode()).hexdigest()
    with service.session() as s:
        token = s.scalar(select(Token).where(Token.id == row.token_id))
        assert token.token_hash == hashlib.sha256(service.tokens["mgr1"].encode()).hexdigest()
    assert c.get("/team").status_code == 200
    # the two never stand in for each other
    api = service.client.get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"})
    assert api.status_code == 401
    old_style = TestClient(service.app, cookies={SESSION_COOKIE: service.tokens["mgr1"]})
    assert_ended(old_style)  # a browser signed in before sessions existed: sent to sign in again


def test_sign_out_ends_the_session_on_the_server(service):
    c = sign_in(service, service.tokens["mgr1"])
    copy = TestClient(service.app, cookies={SESSION_COOKIE: c.cookies.get(SESSION_COOKIE)})
    assert copy.get("/team").status_code == 200
    r = c.post("/logout", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login?out=1"
    assert rows(service, "mgr1") == []
    assert_ended(copy)  # the copied cookie is worthless now
    # signing out twice, or without a session, is no error
    assert c.post("/logout", follow_redirects=False).status_code == 303


def test_sign_in_and_sign_out_are_in_the_audit_trail(service):
    c = sign_in(service, service.tokens["mgr1"])
    c.post("/logout", follow_redirects=False)
    c.post("/logout", follow_redirects=False)  # signed out already: nothing more to record
    with service.session() as s:
        events = s.scalars(
            select(AuditEvent).where(AuditEvent.action.like("session.%")).order_by(AuditEvent.id)
        ).all()
    assert [(e.action, e.actor, e.resource_id) for e in events] == [
        ("session.start", "mgr1", "mgr1"),
        ("session.end", "mgr1", "mgr1"),
    ]
    assert events[0].detail["token"] == service.tokens["mgr1"][:10]


def test_signing_in_again_replaces_this_browsers_session(service):
    c = sign_in(service, service.tokens["mgr1"])
    first = c.cookies.get(SESSION_COOKIE)
    r = c.post("/login", data={"token": service.tokens["hr"], "next": "/org"}, follow_redirects=False)
    assert r.status_code == 303 and c.cookies.get(SESSION_COOKIE) != first
    assert rows(service, "mgr1") == [] and len(rows(service, "hr")) == 1
    # a mistyped token keeps the session there is
    r = c.post("/login", data={"token": "rr_wrong"}, follow_redirects=False)
    assert r.status_code == 401 and len(rows(service, "hr")) == 1 and c.get("/org").status_code == 200


def test_an_idle_session_ends(service_factory):
    service = service_factory(session_idle_minutes=30)
    c = sign_in(service, service.tokens["mgr1"])
    secret = c.cookies.get(SESSION_COOKIE)
    age(service, secret, last_seen_at=dt.timedelta(minutes=29))
    assert c.get("/team").status_code == 200  # within the idle time: kept alive by this request
    [row] = rows(service, "mgr1")
    assert dt.datetime.now(dt.UTC) - row.last_seen_at < dt.timedelta(minutes=1)
    age(service, secret, last_seen_at=dt.timedelta(minutes=31))
    assert_ended(c)
    assert rows(service, "mgr1") == []  # the ended row is gone


def test_a_session_ends_after_its_lifetime_even_in_use(service_factory):
    service = service_factory(session_max_hours=2)
    c = sign_in(service, service.tokens["mgr1"])
    secret = c.cookies.get(SESSION_COOKIE)
    age(service, secret, created_at=dt.timedelta(hours=1, minutes=59), last_seen_at=dt.timedelta(0))
    assert c.get("/team").status_code == 200
    age(service, secret, created_at=dt.timedelta(hours=2, minutes=1), last_seen_at=dt.timedelta(0))
    assert_ended(c)


def _age_token(service, user: str, days: float) -> None:
    """Move a user's tokens' issue time back."""
    with service.session() as s, s.begin():
        uid = s.scalar(select(User.id).where(User.name == user))
        s.execute(
            update(Token)
            .where(Token.user_id == uid)
            .values(created_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=days))
        )


def test_tokens_expire_after_token_max_days(service_factory):
    """An API token works TOKEN_MAX_DAYS after it was issued, then neither the API, nor a sign-in, nor a
    session signed in with it accepts it; 0 keeps tokens for ever."""
    service = service_factory(token_max_days=30)
    h = service.h("mgr1")
    c = sign_in(service, service.tokens["mgr1"])
    _age_token(service, "mgr1", 29.9)
    assert service.client.get("/api/v1/me", headers=h).status_code == 200
    assert c.get("/team").status_code == 200
    _age_token(service, "mgr1", 30.1)
    r = service.client.get("/api/v1/me", headers=h)
    assert r.status_code == 401 and "expired" in r.json()["detail"]
    assert_ended(c)
    late = TestClient(service.app).post("/login", data={"token": service.tokens["mgr1"]})
    assert late.status_code == 401 and "expired" in late.text
    # an admin over HTTP sees when each token stops working (as `users list` says), so that a script
    # can rotate in time: the expired one is past, the admin's own is 30 days ahead
    users = service.client.get("/api/v1/users", headers=service.h("admin")).json()["items"]
    by_name = {u["name"]: u for u in users}
    now = dt.datetime.now(dt.UTC)
    (mgr_end,) = [dt.datetime.fromisoformat(t) for t in by_name["mgr1"]["token_expires_at"]]
    (own_end,) = [dt.datetime.fromisoformat(t) for t in by_name["admin"]["token_expires_at"]]
    assert mgr_end < now and dt.timedelta(days=29) < own_end - now <= dt.timedelta(days=30)


def test_users_list_says_until_when_each_token_works():
    from serving.auth import UserInfo

    issued = dt.datetime(2026, 1, 1, 9, 0)  # naive, as SQLite gives it back: UTC
    u = UserInfo(
        1,
        "ann",
        ("hr",),
        None,
        issued,
        False,
        2,
        ("rr_old0000", "rr_new0000"),
        (issued, issued.replace(month=3, tzinfo=dt.UTC)),
    )
    now = dt.datetime(2026, 4, 1, 12, 0, tzinfo=dt.UTC)
    assert u.token_states(dt.timedelta(days=90), now) == [
        "rr_old0000 expired 2026-04-01",
        "rr_new0000 until 2026-05-30",
    ]
    assert u.token_states(None, now) == ["rr_old0000", "rr_new0000"]


def test_token_max_days_0_keeps_tokens_for_ever(service_factory):
    service = service_factory(token_max_days=0)
    _age_token(service, "mgr1", 3000)
    assert service.client.get("/api/v1/me", headers=service.h("mgr1")).status_code == 200
    users = service.client.get("/api/v1/users", headers=service.h("admin")).json()["items"]
    assert all(u["token_expires_at"] == [None] * len(u["token_prefixes"]) for u in users)


def test_ended_sessions_of_anyone_are_cleared_at_the_next_sign_in(service):
    stale = sign_in(service, service.tokens["mgr2"])
    age(service, stale.cookies.get(SESSION_COOKIE), last_seen_at=dt.timedelta(hours=2))
    sign_in(service, service.tokens["mgr1"])
    assert rows(service, "mgr2") == [] and len(rows(service, "mgr1")) == 1


def test_revoking_the_user_ends_their_sessions(service):
    c1, c2 = sign_in(service, service.tokens["mgr1"]), sign_in(service, service.tokens["mgr1"])
    other = sign_in(service, service.tokens["mgr2"])
    r = service.client.post("/api/v1/users/mgr1/revoke", headers=service.h("admin"))
    assert r.status_code == 200
    assert rows(service, "mgr1") == []
    assert_ended(c1)
    assert_ended(c2)
    assert other.get("/team").status_code == 200


def _second_token(service, user: str) -> str:
    r = service.client.post(f"/api/v1/users/{user}/tokens", headers=service.h("admin"))
    assert r.status_code == 201
    return r.json()["token"]


def test_revoking_one_token_over_the_api(service):
    first, second = service.tokens["mgr1"], _second_token(service, "mgr1")
    by_first, by_second = sign_in(service, first), sign_in(service, second)
    r = service.client.post(f"/api/v1/users/mgr1/tokens/{first[:10]}/revoke", headers=service.h("admin"))
    assert r.status_code == 200, r.text
    assert r.json()["active_tokens"] == 1 and r.json()["disabled"] is False
    assert r.json()["token_prefixes"] == [second[:10]]
    assert service.client.get("/api/v1/me", headers={"Authorization": f"Bearer {first}"}).status_code == 401
    assert service.client.get("/api/v1/me", headers={"Authorization": f"Bearer {second}"}).status_code == 200
    assert_ended(by_first)  # the session signed in with it ends; the one with the other token stays
    assert by_second.get("/team").status_code == 200
    with service.session() as s:
        event = s.scalars(select(AuditEvent).where(AuditEvent.action == "user.token_revoke")).one()
        assert (event.actor, event.resource_id, event.detail) == (
            "admin",
            "mgr1",
            {"prefix": first[:10], "token": service.tokens["admin"][:10]},  # the admin's own token
        )
    # already revoked, or never issued: 404 naming the live ones
    again = service.client.post(f"/api/v1/users/mgr1/tokens/{first[:10]}/revoke", headers=service.h("admin"))
    assert again.status_code == 404
    assert again.json()["detail"].endswith(f"their live tokens: {second[:10]}")
    # a whole token (or anything but a prefix) never goes into a URL
    whole = service.client.post(f"/api/v1/users/mgr1/tokens/{second}/revoke", headers=service.h("admin"))
    assert whole.status_code == 422
    unknown = service.client.post(
        f"/api/v1/users/nobody/tokens/{second[:10]}/revoke", headers=service.h("admin")
    )
    assert unknown.status_code == 404
    not_admin = service.client.post(
        f"/api/v1/users/mgr1/tokens/{second[:10]}/revoke", headers=service.h("hr")
    )
    assert not_admin.status_code == 403


def test_an_admin_cannot_revoke_their_own_last_token(service):
    own = service.tokens["admin"]
    r = service.client.post(f"/api/v1/users/admin/tokens/{own[:10]}/revoke", headers=service.h("admin"))
    assert r.status_code == 409 and "last live token" in r.json()["detail"]
    assert service.client.get("/api/v1/me", headers=service.h("admin")).status_code == 200
    spare = _second_token(service, "admin")
    r = service.client.post(f"/api/v1/users/admin/tokens/{own[:10]}/revoke", headers=service.h("admin"))
    assert r.status_code == 200
    assert service.client.get("/api/v1/me", headers={"Authorization": f"Bearer {spare}"}).status_code == 200


def test_revoke_token_on_the_command_line(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from repradar.cli import app
    from repradar.settings import get_settings

    monkeypatch.setenv("REPRADAR_HOME", str(tmp_path / "home"))
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        r = runner.invoke(app, ["users", "add", "ann", "--role", "hr"])
        assert r.exit_code == 0, r.output
        first = r.output.strip().splitlines()[-1]
        second = runner.invoke(app, ["users", "token", "ann"]).output.strip()
        r = runner.invoke(app, ["users", "revoke-token", "ann", first[:10]])
        assert r.exit_code == 0 and f"token {first[:10]}" in r.output and "1 live token(s) left" in r.output
        r = runner.invoke(app, ["users", "revoke-token", "ann", first[:10]])
        assert r.exit_code == 2 and "no live token starting" in r.output and second[:10] in r.output
        r = runner.invoke(app, ["users", "revoke-token", "ann", "rr_ab"])
        assert r.exit_code == 2 and "first 10 characters" in r.output
        r = runner.invoke(app, ["users", "revoke-token", "nobody", second[:10]])
        assert r.exit_code == 2 and "no user named" in r.output
        r = runner.invoke(app, ["users", "list"])
        assert "revoked" not in r.output  # the user stays, with the token left named by its prefix
        until = (dt.datetime.now(dt.UTC) + dt.timedelta(days=90)).date()  # REPRADAR_TOKEN_MAX_DAYS's default
        assert f"1 token(s) ({second[:10]} until {until})" in r.output and first[:10] not in r.output
        from serving import admin

        engine, sessions = admin._sessions(get_settings())
        with sessions() as s:
            event = s.scalars(select(AuditEvent).where(AuditEvent.action == "user.token_revoke")).one()
            assert event.actor.startswith("cli:") and event.detail == {"prefix": first[:10]}
        engine.dispose()
    finally:
        get_settings.cache_clear()


def test_the_secure_flag_follows_the_scheme_or_the_setting(service_factory):
    auto = service_factory()
    plain = sign_in(auto, auto.tokens["mgr1"])
    assert "secure" not in _cookie_header(auto, "http://testserver").lower()
    assert "secure" in _cookie_header(auto, "https://testserver").lower()
    assert plain.get("/team").status_code == 200
    forced = service_factory(cookie_secure=True)
    assert "secure" in _cookie_header(forced, "http://testserver", auto.tokens["mgr1"]).lower()
    never = service_factory(cookie_secure=False)
    assert "secure" not in _cookie_header(never, "https://testserver", auto.tokens["mgr1"]).lower()


def _cookie_header(service, base_url: str, token: str | None = None) -> str:
    c = TestClient(service.app, base_url=base_url)
    r = c.post("/login", data={"token": token or service.tokens["mgr1"]}, follow_redirects=False)
    assert r.status_code == 303
    [cookie] = [v for k, v in r.headers.multi_items() if k == "set-cookie" and v.startswith(SESSION_COOKIE)]
    return cookie
