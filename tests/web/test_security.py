"""Browser security of the dashboard: state-changing requests from another site are refused (login CSRF),
every response carries the security headers, an unknown language is a 400 page, and behind a TLS proxy the
scheme (hence the cookie's Secure flag and the same-origin check) comes from trusted proxies only."""

from __future__ import annotations

import sys
import threading
import time

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from repradar.settings import Settings
from serving.db.schema import InterventionLog, User, WebSession
from serving.web.pages import LANG_COOKIE, SESSION_COOKIE
from tests.serving.conftest import StubSource, make_settings, seed

EVIL = "https://evil.example"


def _sessions(web) -> int:
    with web.app.state.sessions() as s:
        return s.scalar(select(func.count()).select_from(WebSession))


def _lang(web, user: str) -> str | None:
    with web.app.state.sessions() as s:
        return s.scalar(select(User.lang).where(User.name == user))


def test_a_sign_in_form_posted_from_another_site_is_refused(web):
    victim = web.login("mgr1")
    before = victim.cookies.get(SESSION_COOKIE)
    attack = {"token": web.tokens["hr"], "next": "/org"}
    for headers in (
        {"Origin": EVIL},
        {"Origin": "null"},  # sandboxed frames, data: pages
        {"Origin": "https://testserver"},  # this host, but another scheme
        {"Origin": "http://testserver:8080"},  # this host, but another port
        {"Referer": EVIL + "/landing?x=1"},  # no Origin: the Referer decides
    ):
        r = victim.post("/login", data=attack, headers=headers, follow_redirects=False)
        assert r.status_code == 403, (headers, r.status_code)
        assert r.headers["content-type"].startswith("text/html") and "set-cookie" not in r.headers
        assert "sent from another site" in r.text and "nothing was changed" in r.text
    assert "(https://evil.example)" in r.text and "landing" not in r.text  # the site, not the page
    assert _sessions(web) == 1 and victim.cookies.get(SESSION_COOKIE) == before
    assert "Signed in as mgr1" in victim.get("/team").text
    assert 'repradar_http_rejected_total{reason="cross_origin"} 5.0' in web.client.get("/metrics").text


def test_same_origin_and_header_less_forms_still_work(web):
    own = {"Origin": "http://testserver"}
    c = TestClient(web.app, base_url="http://testserver")
    r = c.post("/login", data={"token": web.tokens["mgr1"]}, headers=own, follow_redirects=False)
    assert r.status_code == 303
    ref = {"Referer": "http://testserver/login?next=%2Fteam"}
    r = c.post("/login", data={"token": web.tokens["mgr1"]}, headers=ref, follow_redirects=False)
    assert r.status_code == 303
    default_port = {"Origin": "http://testserver:80"}  # the same origin, written out
    r = c.post("/login", data={"token": web.tokens["mgr1"]}, headers=default_port, follow_redirects=False)
    assert r.status_code == 303
    # a server on a port of its own: the port is part of the origin
    ported = TestClient(web.app, base_url="http://testserver:8080")
    r = ported.post(
        "/login",
        data={"token": web.tokens["mgr1"]},
        headers={"Origin": "http://testserver:8080"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    r = ported.post(
        "/login",
        data={"token": web.tokens["mgr1"]},
        headers={"Origin": "http://testserver"},
        follow_redirects=False,
    )
    assert r.status_code == 403


def test_other_forms_from_another_site_change_nothing_and_answer_in_the_users_language(web):
    c = web.login("mgr1")
    c.get("/lang", params={"to": "zh-CN", "next": "/team"})
    c.cookies.delete(LANG_COOKIE)  # the user's stored choice decides, not this browser's cookie
    form = {"intervention": "skills_training", "started_on": "2024-01-10", "note": "from elsewhere"}
    r = c.post("/reps/R1/interventions", data=form, headers={"Origin": EVIL})
    assert r.status_code == 403 and '<html lang="zh-CN">' in r.text and "另一个网站" in r.text
    with web.app.state.sessions() as s:
        assert s.scalar(select(func.count()).select_from(InterventionLog)) == 0
    r = c.post("/logout", headers={"Origin": EVIL}, follow_redirects=False)
    assert r.status_code == 403 and _sessions(web) == 1  # no forced sign-out either
    stranger = TestClient(web.app)  # no cookie at all: English
    r = stranger.post("/logout", headers={"Origin": EVIL})
    assert r.status_code == 403 and '<html lang="en">' in r.text
    # the same form from the page itself is taken
    r = c.post("/reps/R1/interventions", data=form, headers={"Origin": "http://testserver"})
    assert r.status_code == 200
    with web.app.state.sessions() as s:
        assert s.scalar(select(func.count()).select_from(InterventionLog)) == 1


def test_the_api_is_not_subject_to_the_origin_check(web):
    r = web.client.post(
        "/api/v1/users",
        json={"name": "from-a-script", "roles": ["hr"]},
        headers={"Authorization": f"Bearer {web.tokens['admin']}", "Origin": EVIL},
    )
    assert r.status_code == 201
    # GET is never refused (links from other sites must open the dashboard)
    assert web.client.get("/login", headers={"Origin": EVIL, "Referer": EVIL}).status_code == 200


def test_every_response_carries_the_security_headers(web):
    c = web.login("mgr1")
    dashboard_csp = (
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'"
    )
    answers = {
        "page": c.get("/team"),
        "login": web.client.get("/login"),
        "redirect": web.client.get("/team", follow_redirects=False),
        "refusal": c.post("/logout", headers={"Origin": EVIL}),
        "too big": web.client.post("/login", data={"token": "x" * 70_000}, headers={"accept": "text/html"}),
        "api": web.client.get("/api/v1/me", headers={"Authorization": f"Bearer {web.tokens['mgr1']}"}),
        "api error": web.client.get("/api/v1/me"),
        "static": web.client.get("/static/dashboard.css"),
        "docs": web.client.get("/docs"),
        "redoc": web.client.get("/redoc"),
        "probe": web.client.get("/health/live"),
    }
    too_big = answers["too big"]
    assert (
        too_big.status_code == 413
        and '<html lang="en">' in too_big.text
        and '<p lang="zh-CN">' in too_big.text
    )
    for name, r in answers.items():
        h = r.headers
        assert h["x-content-type-options"] == "nosniff", name
        assert h["referrer-policy"] == "same-origin", name
        assert h["x-frame-options"] == "DENY", name
        assert "frame-ancestors 'none'" in h["content-security-policy"], name
    for name in ("page", "login", "redirect", "refusal", "too big", "static"):
        assert answers[name].headers["content-security-policy"].startswith(dashboard_csp), name
        assert "unsafe-inline" not in answers[name].headers["content-security-policy"].split("script-src")[1]
    for name in ("api", "api error", "probe"):
        assert answers[name].headers["content-security-policy"].startswith("default-src 'none'"), name
    for name in ("docs", "redoc"):  # served with their files from here: only their own inline script runs
        csp = answers[name].headers["content-security-policy"]
        assert csp.startswith("default-src 'self'; script-src 'self' 'sha256-"), name
        assert "unsafe-inline" not in csp.split("style-src")[0] and "http" not in csp, name
        assert answers[name].status_code == 200
        assert "cdn.jsdelivr.net" not in answers[name].text and "fonts.googleapis" not in answers[name].text


def test_an_unknown_language_is_a_400_page_and_changes_nothing(web):
    c = web.login("mgr1")
    c.get("/lang", params={"to": "zh-CN", "next": "/team"})
    cookie = c.cookies.get(LANG_COOKIE)
    for params in ({"to": "fr", "next": "/team"}, {"to": "<b>x</b>"}, {}):
        r = c.get("/lang", params=params, follow_redirects=False)
        assert r.status_code == 400 and "set-cookie" not in r.headers, params
        assert '<html lang="zh-CN">' in r.text and "这种语言" in r.text  # in the user's language
        if params.get("to") == "<b>x</b>":
            assert "“&lt;b&gt;x&lt;/b&gt;”" in r.text and "<b>x</b>" not in r.text
    assert _lang(web, "mgr1") == "zh-CN" and c.cookies.get(LANG_COOKIE) == cookie
    signed_out = TestClient(web.app)
    r = signed_out.get("/lang", params={"to": "klingon"}, follow_redirects=False)
    assert r.status_code == 400 and "There is no language" in r.text and "set-cookie" not in r.headers


# -- behind a TLS proxy: the real `repradar serve` configuration under uvicorn ------------------------
class Served:
    """The app as `serving.server` configures it (proxy headers, trusted addresses), on a real socket."""

    def __init__(self, tmp_path, **overrides):
        import socket

        import uvicorn

        from serving import server
        from serving.app import create_app

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'proxy.db'}", **overrides)
        interval = sys.getswitchinterval()
        config = server._config(settings, "127.0.0.1", self.port)
        sys.setswitchinterval(interval)  # _config tunes it for a server process, not for the tests
        config.app = create_app(settings, model_source=StubSource("1"))  # no model registry needed
        config.log_level = "warning"
        self.config, self.url = config, f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(config)

    def __enter__(self):
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.time() + 60
        while not self.server.started:
            assert self.thread.is_alive() and time.time() < deadline, "the server did not start"
            time.sleep(0.02)
        self.tokens = seed(self.config.app)
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(30)

    def sign_in(self, headers: dict[str, str]) -> httpx.Response:
        return httpx.post(
            self.url + "/login", data={"token": self.tokens["mgr1"]}, headers=headers, follow_redirects=False
        )


PROXIED = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.7", "Host": "radar.example"}


def test_behind_a_trusted_proxy_the_cookie_is_secure_and_https_is_our_origin(tmp_path):
    with Served(tmp_path, forwarded_allow_ips="127.0.0.1") as srv:
        r = srv.sign_in({**PROXIED, "Origin": "https://radar.example"})
        assert r.status_code == 303 and "secure" in r.headers["set-cookie"].lower()
        assert srv.sign_in({**PROXIED, "Origin": "http://radar.example"}).status_code == 403


def test_an_untrusted_proxys_scheme_is_ignored_unless_the_cookie_is_forced_secure(tmp_path):
    with Served(tmp_path / "a", forwarded_allow_ips="10.0.0.1") as srv:
        r = srv.sign_in({**PROXIED, "Origin": "http://radar.example"})  # X-Forwarded-Proto not believed
        assert r.status_code == 303 and "secure" not in r.headers["set-cookie"].lower()
        assert srv.sign_in({**PROXIED, "Origin": "https://radar.example"}).status_code == 403
    with Served(tmp_path / "b", forwarded_allow_ips="10.0.0.1", cookie_secure=True) as srv:
        r = srv.sign_in({**PROXIED, "Origin": "http://radar.example"})
        assert r.status_code == 303 and "secure" in r.headers["set-cookie"].lower()


@pytest.mark.parametrize(
    ("value", "stored"),
    [("10.0.0.1/8, ::1", "10.0.0.0/8,::1"), ("*", "*"), (" 127.0.0.1 ", "127.0.0.1")],
)
def test_trusted_proxy_addresses_are_checked_and_written_as_uvicorn_reads_them(value, stored):
    assert Settings(forwarded_allow_ips=value).forwarded_allow_ips == stored


@pytest.mark.parametrize("value", ["proxy.internal", "10.0.0.1,*", "", "10.0.0.300"])
def test_a_mistyped_proxy_address_is_refused_at_start(value):
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="forwarded_allow_ips"):
        Settings(forwarded_allow_ips=value)


@pytest.mark.parametrize(("value", "secure"), [("auto", None), ("", None), ("true", True), ("0", False)])
def test_cookie_secure_reads_auto_true_and_false(monkeypatch, value, secure):
    monkeypatch.setenv("REPRADAR_COOKIE_SECURE", value)
    assert Settings().cookie_secure is secure


def test_repeated_refused_sign_ins_turn_the_address_away(web):
    """Guessing tokens through the sign-in form: after SIGNIN_MAX_FAILURES refusals from one address within
    the window, that address gets 429 before any token is looked at (a good token included), until the
    oldest refusal leaves the window; other addresses are not affected."""
    now = [1000.0]
    web.app.state.signin_limit.clock = lambda: now[0]
    limit = web.app.state.settings.signin_max_failures
    for _ in range(limit):
        assert web.client.post("/login", data={"token": "rr_guess"}).status_code == 401
    r = web.client.post("/login", data={"token": web.tokens["hr"]}, follow_redirects=False)
    assert r.status_code == 429 and SESSION_COOKIE not in r.cookies
    assert int(r.headers["retry-after"]) == web.app.state.settings.signin_window_s
    assert 'id="throttled"' in r.text and "Nothing was checked" in r.text
    assert _sessions(web) == 0
    other = TestClient(web.app, client=("10.1.2.3", 5000))
    assert other.post("/login", data={"token": web.tokens["hr"]}, follow_redirects=False).status_code == 303
    now[0] += web.app.state.settings.signin_window_s + 1  # the refusals have left the window
    assert (
        web.client.post("/login", data={"token": web.tokens["hr"]}, follow_redirects=False).status_code == 303
    )


def test_a_link_cannot_put_its_own_text_on_a_page_through_the_sign_in(web):
    """/org shows why a job was refused from its address (the form's redirect). A link from elsewhere always
    passes through the sign-in (SameSite=Strict), which drops those page-message parameters."""
    spoof = "/org?error=Send%20your%20token%20to%20it@evil.example&field=as_of&flash=started&job=x#jobs"
    anon = TestClient(web.app)
    to_login = anon.get(spoof.split("#")[0], follow_redirects=False)
    assert to_login.status_code == 303 and to_login.headers["location"].startswith("/login?next=")
    nxt = to_login.headers["location"].split("next=", 1)[1]
    from urllib.parse import unquote

    r = anon.post("/login", data={"token": web.tokens["hr"], "next": unquote(nxt)}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/org"
    kept = anon.post(
        "/login", data={"token": web.tokens["hr"], "next": "/team?band=high&error=x"}, follow_redirects=False
    )
    assert kept.headers["location"] == "/team?band=high"
    assert "evil.example" not in anon.get("/org").text
