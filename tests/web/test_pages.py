"""The dashboard's pages through the app: sign-in, scope, 404 outside it, audit, no external URLs."""

from __future__ import annotations

import re

import pandas as pd
import pytest
from sqlalchemy import select

from serving.db.schema import AuditEvent, User
from tests.serving.conftest import NAMES, SUBTREE

URL_ATTR = re.compile(r"""(?:src|href|action)\s*=\s*["']?\s*([a-z][a-z0-9+.-]*:)?//""", re.I)


def assert_self_contained(html: str) -> None:
    assert not URL_ATTR.search(html), URL_ATTR.search(html).group(0)
    assert "@import" not in html and "url(http" not in html


def test_pages_need_sign_in_and_bad_tokens_are_refused(web):
    r = web.client.get("/team", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login?next=%2Fteam")
    r = web.client.post("/login", data={"token": "rr_nope"})
    assert r.status_code == 401 and "unknown or revoked" in r.text


def test_login_sets_an_httponly_strict_cookie_and_ignores_foreign_next(web):
    r = web.client.post(
        "/login", data={"token": web.tokens["mgr1"], "next": "https://evil.example/"}, follow_redirects=False
    )
    assert r.status_code == 303 and r.headers["location"] == "/"
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie


def test_manager_sees_only_the_own_subtree(web):
    c = web.login("mgr2")
    html = c.get("/team").text
    shown = set(re.findall(r'data-rep="([^"]+)"', html))
    assert shown == SUBTREE["M2"]
    assert NAMES["R3"] in html and NAMES["R9"] not in html and NAMES["R1"] not in html


def test_rep_outside_scope_answers_as_a_missing_rep_and_is_audited(web):
    c = web.login("mgr2")
    outside, missing = c.get("/reps/R9"), c.get("/reps/NOPE")
    assert outside.status_code == missing.status_code == 404
    assert outside.text.replace("R9", "X") == missing.text.replace("NOPE", "X")
    assert "Zed Nine" not in outside.text
    with web.app.state.sessions() as s:
        outcomes = {
            (e.resource_id, e.outcome)
            for e in s.scalars(select(AuditEvent).where(AuditEvent.actor == "mgr2"))
        }
    assert ("R9", "out_of_scope") in outcomes and ("NOPE", "not_found") in outcomes


def test_rep_page_shows_reasons_and_is_audited_like_the_api(web):
    c = web.login("mgr1")
    r = c.get("/reps/R1")
    assert r.status_code == 200
    assert "Win rate" in r.text and "win_rate_180d" in r.text  # the driver in words
    assert "<svg" in r.text and "Sales skills training" in r.text
    with web.app.state.sessions() as s:
        actions = [e.action for e in s.scalars(select(AuditEvent).where(AuditEvent.resource_id == "R1"))]
    assert "rep.read" in actions and "rep.interventions.read" in actions


def test_record_intervention_through_the_form(web):
    c = web.login("mgr1")
    r = c.post(
        "/reps/R1/interventions",
        data={"intervention": "mentoring", "started_on": "2024-01-16", "note": "paired with R2"},
    )
    assert r.status_code == 200 and "The intervention is recorded" in r.text
    assert "paired with R2" in r.text and "2024-01-16" in r.text
    bad = c.post("/reps/R1/interventions", data={"intervention": "nonsense", "started_on": "2024-01-16"})
    assert bad.status_code == 422 and "Not recorded" in bad.text
    assert 'next=/reps/R1"' in bad.text.replace("%2F", "/")  # the language switch leads back to the page
    outside = c.post("/reps/R9/interventions", data={"intervention": "mentoring", "started_on": "2024-01-16"})
    assert outside.status_code == 404


def test_roles_are_enforced_on_pages(web):
    ds = web.login("ds")
    assert ds.get("/team").status_code == 403
    assert ds.get("/reps/R1").status_code == 403
    assert ds.get("/org").status_code == 403
    mgr = web.login("mgr1")
    assert mgr.get("/org").status_code == 403 and mgr.get("/models").status_code == 403
    assert mgr.post("/org/jobs", data={"as_of": "2024-01-15"}).status_code == 403
    assert mgr.post("/models/promote", data={}).status_code == 403


def test_hr_org_page_has_heatmap_suggestions_and_audit(web):
    c = web.login("hr")
    r = c.get("/org")
    assert r.status_code == 200
    assert "Mean risk by region and segment" in r.text and "<svg" in r.text
    assert "Audit log" in r.text
    assert "org.read" in c.get("/org").text
    csv = c.get("/org/audit.csv")
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")


def test_hr_job_without_data_folder_shows_the_reason(web):
    c = web.login("hr")
    r = c.post("/org/jobs", data={"as_of": "2024-01-15"})
    assert r.status_code == 200 and "could not start" in r.text


def test_language_switch_is_remembered(web):
    c = web.login("mgr1")
    r = c.get("/lang", params={"to": "zh-CN", "next": "/team"})
    assert r.status_code == 200 and "早期预警" in r.text and '<html lang="zh-CN">' in r.text
    assert "早期预警" in c.get("/reps/R1").text
    assert (
        c.get("/lang", params={"to": "en", "next": "//evil.example"}, follow_redirects=False).headers[
            "location"
        ]
        == "/"
    )


def test_promote_form_shows_why_nothing_was_promoted(web):
    ds = web.login("ds")
    page = ds.get("/models")
    assert (
        page.status_code == 200
        and "No model is registered yet" in page.text
        and 'id="curves"' not in page.text
    )
    forced = ds.post("/models/promote", data={"force": "1"})
    assert forced.status_code == 422 and "Not promoted" in forced.text
    nothing = ds.post("/models/promote", data={})
    assert nothing.status_code == 409 and "no model has been trained yet" in nothing.text


def _stored_lang(web, user: str) -> str | None:
    with web.app.state.sessions() as s:
        return s.scalar(select(User.lang).where(User.name == user))


def test_language_is_kept_with_the_user_not_only_the_browser(web):
    assert _stored_lang(web, "mgr1") is None
    other = web.login("mgr1")  # a second browser, signed in before the switch, with no language cookie
    first = web.login("mgr1")
    first.get("/lang", params={"to": "zh-CN", "next": "/team"})
    assert _stored_lang(web, "mgr1") == "zh-CN"
    assert '<html lang="zh-CN">' in other.get("/team").text  # no cookie there: the user's choice
    fresh = web.login("mgr1")  # a third browser signing in later gets it too, cookie included
    assert fresh.cookies.get("rr_lang") == "zh-CN" and "早期预警" in fresh.get("/team").text
    # switching back in one browser wins over the other browser's cookie
    other.get("/lang", params={"to": "en", "next": "/team"})
    assert first.cookies.get("rr_lang") == "zh-CN" and '<html lang="en">' in first.get("/team").text
    # other users are not affected; signed out, the sign-in page follows the browser's cookie only
    assert _stored_lang(web, "mgr2") is None and '<html lang="en">' in web.login("mgr2").get("/team").text
    assert '<html lang="en">' in web.client.get("/login").text


def test_a_language_picked_before_signing_in_is_kept_for_a_user_without_one(web):
    c = web.login("hr")
    c.get("/lang", params={"to": "en"})
    assert _stored_lang(web, "hr") == "en"
    from fastapi.testclient import TestClient

    browser = TestClient(web.app, base_url="http://testserver")
    browser.get("/lang", params={"to": "zh-CN", "next": "/login"})  # signed out: the cookie only
    assert _stored_lang(web, "mgr2") is None and "登录" in browser.get("/login").text
    browser.post("/login", data={"token": web.tokens["mgr2"]})
    assert _stored_lang(web, "mgr2") == "zh-CN"
    # a user who chose already keeps their choice, and this browser's cookie follows it
    r = browser.post("/login", data={"token": web.tokens["hr"], "next": "/org"})
    assert '<html lang="en">' in r.text and browser.cookies.get("rr_lang") == "en"
    assert _stored_lang(web, "hr") == "en"


@pytest.mark.parametrize("lang", ["en", "zh-CN"])
def test_no_page_loads_anything_from_outside(web, lang):
    pages = {"mgr1": ["/team", "/reps/R1", "/reps/R9"], "hr": ["/org", "/team"], "ds": ["/models"]}
    anon = web.client.get("/login", cookies={"rr_lang": lang})
    assert_self_contained(anon.text)
    for user, paths in pages.items():
        c = web.login(user)
        c.cookies.set("rr_lang", lang)
        for p in paths:
            r = c.get(p)
            assert r.headers["content-type"].startswith("text/html"), p
            assert_self_contained(r.text)
    css = web.client.get("/static/dashboard.css").text
    assert "http" not in css and "@import" not in css


def test_org_page_suggestions_follow_the_team_rules_of_the_report():
    """The dashboard's manager-level suggestions are models.team's (as in HR's report), in the page's language."""
    import datetime as dt
    from types import SimpleNamespace

    from models.team import team_suggestions
    from serving.web.pages import manager_suggestions

    day = dt.date(2024, 2, 5)
    skill = [{"feature": "win_rate_180d", "group": "conversion", "contribution": 0.4}]
    rows, drivers = [], {}
    for i in range(10):  # M1: 4 of 4 high, 3 of them for the same reason; M2: 6 low
        mgr, band = ("M1", "high") if i < 4 else ("M2", "low")
        rows.append(SimpleNamespace(rep_id=f"R{i}", manager_id=mgr, as_of=day, risk_band=band, score_id=i))
        drivers[i] = skill if i < 3 else []
    en = manager_suggestions(rows, drivers, "en")
    frame = pd.DataFrame(
        {
            "manager_id": [r.manager_id for r in rows],
            "rep_id": [r.rep_id for r in rows],
            "as_of": day,
            "risk_band": [r.risk_band for r in rows],
            "drivers": [drivers[r.score_id] for r in rows],
        }
    )
    expected = team_suggestions(frame)
    assert sorted(k for k, _ in en) == sorted(expected["suggestion"]) == ["manager_coaching", "team_building"]
    assert all(text.startswith("Manager M1: ") for _, text in en)
    zh = manager_suggestions(rows, drivers, "zh-CN")
    assert [t for _, t in zh] == [f"经理 M1：{r}" for r in expected["reason_zh"]]
    assert manager_suggestions([], {}, "en") == []
