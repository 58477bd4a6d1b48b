"""The dashboard's pages through the app: sign-in, scope, 404 outside it, audit, no external URLs."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import re

import pandas as pd
import pytest
from sqlalchemy import select

from serving import store
from serving.db.schema import AuditEvent, Job, User
from tests.serving.conftest import AS_OF_2, NAMES, SUBTREE, band, score_rows, seed

URL_ATTR = re.compile(r"""(?:src|href|action)\s*=\s*["']?\s*([a-z][a-z0-9+.-]*:)?//""", re.I)


def assert_self_contained(html: str) -> None:
    assert not URL_ATTR.search(html), URL_ATTR.search(html).group(0)
    assert "@import" not in html and "url(http" not in html


def test_pages_need_sign_in_and_bad_tokens_are_refused(web):
    r = web.client.get("/team", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login?next=%2Fteam")
    r = web.client.post("/login", data={"token": "rr_nope"})
    assert r.status_code == 401 and "unknown, revoked or expired" in r.text


def test_an_oversized_form_gets_a_page_and_the_api_json(web):
    big = {"token": "rr_" + "x" * 70_000}
    page = web.client.post("/login", data=big, headers={"accept": "text/html"})
    assert page.status_code == 413 and page.headers["content-type"].startswith("text/html")
    assert "request body over" in page.text and "请返回重试" in page.text and '{"detail"' not in page.text
    api = web.client.post("/api/v1/jobs", json={"as_of": "x" * 70_000}, headers={"accept": "text/html"})
    assert api.status_code == 413 and api.json()["code"] == "body_too_large"


def test_a_revoked_sign_in_is_told_why_and_its_cookie_dropped(web):
    from serving.auth import revoke_user

    c = web.login("mgr1")
    assert c.get("/team").status_code == 200
    with web.app.state.sessions.begin() as s:
        revoke_user(s, "mgr1")
    r = c.get("/team", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].endswith("&expired=1")
    assert "Max-Age=0" in r.headers["set-cookie"]
    page = c.get(r.headers["location"])
    assert "Your sign-in has ended" in page.text and "your token was revoked" in page.text


def test_an_empty_token_is_said_to_be_empty_in_the_pages_language_and_not_counted(web):
    """An empty sign-in was stopped by the browser's bubble in its own language; the page said nothing of
    its own, and without the bubble the server answered "unknown, revoked or expired" and counted it."""
    from fastapi.testclient import TestClient

    browser = TestClient(web.app, base_url="http://testserver", cookies={"rr_lang": "zh-CN"})
    page = browser.get("/login").text
    assert re.search(r'<form method="post" action="/login"[^>]* novalidate', page)
    for _ in range(12):  # more than the refused sign-ins an address may make
        r = browser.post("/login", data={"token": "  ", "next": "/team"})
        assert r.status_code == 422 and "请在此粘贴您的令牌" in r.text and "令牌无效" not in r.text
    assert 'aria-invalid="true"' in r.text and r.text.count("<title>错误：")
    ok = browser.post("/login", data={"token": web.tokens["mgr1"]}, follow_redirects=False)
    assert ok.status_code == 303


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
    # a score without the playbook's texts: the feature's label and its value with its unit
    assert "Win rate over the last 180 days is 18%" in r.text
    assert "<svg" in r.text and "Sales skills training" in r.text and "81%" in r.text
    with web.app.state.sessions() as s:
        actions = [e.action for e in s.scalars(select(AuditEvent).where(AuditEvent.resource_id == "R1"))]
    assert "rep.read" in actions and "rep.interventions.read" in actions


def _worded_score(rep_id: str, manager_id: str, risk: float, band: str, **extra) -> dict:
    """A score row shaped as `repradar score` writes it: drivers, groups, reasons and notes in both languages."""
    return {
        "rep_id": rep_id,
        "manager_id": manager_id,
        "period_start": AS_OF_2.replace(day=1),
        "period_end": AS_OF_2.replace(month=3, day=31),
        "as_of": AS_OF_2 + dt.timedelta(days=7),
        "risk": risk,
        "risk_band": band,
        "rank": 1,
        "attainment_to_date": 0.1,
        "drivers": [
            {"feature": "pipeline_coverage", "group": "pipeline", "value": 0.55, "contribution": 1.6},
            {"feature": "pace_gap", "group": "attainment", "value": -0.49, "contribution": 1.1},
        ],
        "interventions": ["pipeline_generation", "regular_checkins"],
        "model_version": "1",
        "driver_groups": [
            {
                "group": "pipeline",
                "contribution": 1.7,
                "actionable": True,
                "title_en": "Pipeline",
                "title_zh": "销售管道",
                "text_en": "Coverage of the remaining quota by open pipeline is 0.55x, against 2.08x for SMB peers",
                "text_zh": "在途商机对剩余指标的覆盖倍数为0.55倍,SMB同类销售为2.08倍",
            },
            {
                "group": "attainment",
                "contribution": 1.3,
                "actionable": False,
                "title_en": "Attainment and pace",
                "title_zh": "业绩完成与进度",
                "text_en": "Attainment against a straight-line pace is -49 points",
                "text_zh": "业绩完成率与线性进度之差为-49个百分点",
            },
        ],
        "intervention_reasons": [
            {
                "id": "pipeline_generation",
                "reason_en": "4 new deals per 100 activities, against 9",
                "reason_zh": "每100次活动新建商机4个,同类为9个",
            },
            {
                "id": "regular_checkins",
                "reason_en": "1 1:1 in 91 days, against 7",
                "reason_zh": "近91天一对一沟通1次,同类为7次",
            },
        ],
        "quota_share": 0.3,
        "insufficient_data": False,
        "notes": [
            {
                "code": "org_peers",
                "text_en": "No peers in segment SMB: compared with the organisation",
                "text_zh": "细分市场SMB没有同类销售:与全组织比较",
            }
        ],
        "raw_score": 2.38,
        "base_value": -1.97,
        **extra,
    }


def test_rep_page_speaks_the_models_words_in_both_languages(web):
    """Drivers by group in the playbook's sentences (context marked), each suggestion with its reason,
    the quota-versus-rep split and the notes, in English and Chinese; no internals such as log-odds scores."""
    with web.app.state.sessions.begin() as s:
        store.import_scores(s, [_worded_score("R1", "M1", 0.91, "high")])
    c = web.login("mgr1")
    page = c.get("/reps/R1").text
    drivers = page[page.index('id="drivers"') : page.index('id="interventions"')]
    assert "Coverage of the remaining quota by open pipeline is 0.55x, against 2.08x for SMB peers" in drivers
    assert re.search(r"Attainment and pace</strong><span class=\"muted\"> \(context", drivers)
    assert not re.search(r"Pipeline</strong><span class=\"muted\"> \(context", drivers)
    assert "30% of what raises the risk comes from the quota and territory, 70% from the rep" in drivers
    assert "No peers in segment SMB" in drivers
    suggestions = page[page.index('id="interventions"') : page.index('id="log"')]
    assert "4 new deals per 100 activities, against 9" in suggestions and "1 1:1 in 91 days" in suggestions
    assert suggestions.index("4 new deals") < suggestions.index("1 1:1")  # best first
    assert "91%" in page and "raw_score" not in page and "base_value" not in page and "2.38" not in page
    c.get("/lang", params={"to": "zh-CN", "next": "/reps/R1"})
    zh = c.get("/reps/R1").text
    assert "在途商机对剩余指标的覆盖倍数为0.55倍" in zh and "每100次活动新建商机4个" in zh
    assert "推高风险的因素中，30%来自指标与区域" in zh and "Coverage of the remaining" not in zh
    # Chinese punctuation around the page's own labels, not English ": " and "(...)"
    assert "经理：M1" in zh and '业绩完成与进度</strong><span class="muted">（仅作背景' in zh
    assert re.search(r"<title>\d{4}-\d\d-\d\d：\d+%</title>", zh)  # the trend's points, not "2024-02-12: 91%"
    assert not re.search(r"[\u4e00-\u9fff]</strong>: |[\u4e00-\u9fff]: |\([\u4e00-\u9fff]", zh)


def test_rep_page_flags_not_enough_data_and_words_a_low_risk(web):
    note = {
        "code": "insufficient_data",
        "text_en": "Only 40 days of data: too little to judge",
        "text_zh": "仅有40天数据",
    }
    with web.app.state.sessions.begin() as s:
        store.import_scores(
            s,
            [
                _worded_score("R2", "M1", 0.2, "low", insufficient_data=True, notes=[note]),
                _worded_score("R4", "M2", 0.05, "low"),
            ],
        )
    c = web.login("mgr1")
    r2 = c.get("/reps/R2").text
    assert 'id="not-enough-data"' in r2 and "Only 40 days of data: too little to judge" in r2
    r4 = c.get("/reps/R4").text
    assert 'id="not-enough-data"' not in r4
    assert "The risk is low; these raise it the most" in r4 and "What raises the risk the most" not in r4


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
    backwards = c.post(
        "/reps/R1/interventions",
        data={"intervention": "mentoring", "started_on": "2024-02-01", "ended_on": "2024-01-01"},
    )
    assert (
        backwards.status_code == 422 and "Ended on: the end must not be before the start." in backwards.text
    )
    assert "Value error" not in backwards.text and ": :" not in backwards.text
    assert 'value="2024-02-01"' in backwards.text  # what was typed is kept
    # a double click posts the form twice: one entry
    twice = {"intervention": "recognition", "started_on": "2024-01-17", "note": "shout-out"}
    assert c.post("/reps/R1/interventions", data=twice).status_code == 200
    page = c.post("/reps/R1/interventions", data=twice).text
    assert page.count("shout-out") == 1
    # the confirmation belongs to an entry of this rep's log, not to any link carrying ?recorded=
    assert "The intervention is recorded" not in c.get("/reps/R2?recorded=1").text


def test_the_record_forms_key_is_the_apis_idempotency_key(web):
    """Each render of the record form carries a new key in a hidden field; the server takes it as the API's
    Idempotency-Key: the same form again is the first answer again (one entry, however late), the same form
    sent again with other values is refused in the page's language with a new form, and a bad key (a
    tampered page) is refused the same way; nothing else is stored."""
    import re

    from serving.db.schema import InterventionLog

    c = web.login("mgr1")

    def form_key(html: str) -> str:
        (key,) = re.findall(r'name="idempotency_key" value="([^"]+)"', html)
        return key

    key = form_key(c.get("/reps/R1").text)
    assert key != form_key(c.get("/reps/R1").text)  # one per render
    sent = {"intervention": "mentoring", "started_on": "2024-01-16", "note": "once", "idempotency_key": key}
    first = c.post("/reps/R1/interventions", data=sent, follow_redirects=False)
    again = c.post("/reps/R1/interventions", data=sent, follow_redirects=False)
    assert first.status_code == again.status_code == 303
    assert first.headers["location"] == again.headers["location"]
    edited = c.post("/reps/R1/interventions", data=sent | {"note": "changed"})
    assert edited.status_code == 422 and "this form was sent before with other values" in edited.text
    assert form_key(edited.text) != key and 'value="2024-01-16"' in edited.text  # a new form, values kept
    c.get("/lang", params={"to": "zh-CN", "next": "/reps/R1"})
    tampered = c.post("/reps/R1/interventions", data=sent | {"idempotency_key": "not a key"})
    assert tampered.status_code == 422 and "此表单之前已以其他内容提交过" in tampered.text
    with web.app.state.sessions() as s:
        assert [e.note for e in s.query(InterventionLog).filter_by(rep_id="R1")] == ["once"]


def test_a_manager_ends_an_intervention_from_the_log(web):
    """An ongoing entry has an "End" date field in the log; a bad day is refused next to that field in
    the page's language and nothing changes; a good one ends it (the API's PATCH, audited)."""
    import re

    c = web.login("mgr1")
    c.post("/reps/R1/interventions", data={"intervention": "mentoring", "started_on": "2024-01-16"})
    page = c.get("/reps/R1").text
    entry = int(re.search(r'action="/reps/R1/interventions/(\d+)/end"', page).group(1))
    assert f'<label for="end-{entry}" class="visually-hidden">End ' in page
    bad = c.post(f"/reps/R1/interventions/{entry}/end", data={"ended_on": "2024-01-10"})
    assert bad.status_code == 422
    assert f'id="end-{entry}"' in bad.text and 'aria-invalid="true" aria-describedby="err-end-' in bad.text
    assert "the end is before the intervention started (2024-01-16)" in bad.text
    assert bad.text.startswith("<!doctype html>") and "<title>Error: " in bad.text
    c.cookies.set("rr_lang", "zh-CN")
    zh = c.post(f"/reps/R1/interventions/{entry}/end", data={"ended_on": "2024-02-30"})
    assert zh.status_code == 422 and "日历上没有这一天" in zh.text and "Input should" not in zh.text
    c.cookies.set("rr_lang", "en")
    ok = c.post(f"/reps/R1/interventions/{entry}/end", data={"ended_on": "2024-03-01"})
    assert ok.status_code == 200 and "The intervention is marked as ended." in ok.text
    assert f'/interventions/{entry}/end"' not in ok.text and "2024-03-01" in ok.text
    # another manager's rep, or an entry of another rep: the same not-found page
    assert c.post(f"/reps/R9/interventions/{entry}/end", data={"ended_on": "2024-03-01"}).status_code == 404
    assert c.post(f"/reps/R2/interventions/{entry}/end", data={"ended_on": "2024-03-01"}).status_code == 404
    junk = c.post("/reps/R1/interventions/abc/end", data={"ended_on": "2024-03-01"})
    assert junk.status_code == 404 and junk.headers["content-type"].startswith("text/html")
    items = c.get("/api/v1/reps/R1/interventions", headers={"Authorization": f"Bearer {web.tokens['mgr1']}"})
    assert [i["ended_on"] for i in items.json()["items"]] == ["2024-03-01"]


def test_roles_are_enforced_on_pages(web):
    ds = web.login("ds")
    assert ds.get("/team").status_code == 403
    assert ds.get("/reps/R1").status_code == 403
    assert ds.get("/org").status_code == 403
    mgr = web.login("mgr1")
    assert mgr.get("/org").status_code == 403 and mgr.get("/models").status_code == 403
    assert mgr.post("/org/jobs", data={"as_of": "2024-01-15"}).status_code == 403
    assert mgr.post("/models/promote", data={}).status_code == 403
    # every refusal is in the trail: who, which page
    with web.app.state.sessions() as s:
        denied = s.scalars(
            select(AuditEvent).where(AuditEvent.action == "access.denied").order_by(AuditEvent.id)
        ).all()
    assert [(e.actor, e.resource_id) for e in denied] == [
        ("ds", "/team"),
        ("ds", "/reps/R1"),
        ("ds", "/org"),
        ("mgr1", "/org"),
        ("mgr1", "/models"),
        ("mgr1", "/org/jobs"),
        ("mgr1", "/models/promote"),
    ]
    assert all(e.outcome == "forbidden" for e in denied)


def test_a_refusal_names_one_role_or_several_as_a_sentence(web):
    """A page for HR only said "This page needs one of the roles HR.": a list of one, and no "or"."""
    ds, mgr = web.login("ds"), web.login("mgr1")
    for lang, texts in (
        (
            "en",
            (
                "This page needs the HR role.",
                "This page needs one of these roles: manager or HR.",
                "This page needs one of these roles: data scientist, HR or administrator.",
            ),
        ),
        (
            "zh-CN",
            (
                "此页面需要人力资源角色。",
                "此页面需要以下角色之一：经理或人力资源。",
                "此页面需要以下角色之一：数据科学家、人力资源或管理员。",
            ),
        ),
    ):
        for c in (ds, mgr):
            c.get("/lang", params={"to": lang, "next": "/"})
        for r, text in zip((ds.get("/org"), ds.get("/team"), mgr.get("/models")), texts, strict=True):
            assert r.status_code == 403 and f"<p>{text}</p>" in r.text, (lang, text, r.text)


def test_hr_org_page_has_heatmap_suggestions_and_audit(web):
    c = web.login("hr")
    r = c.get("/org")
    assert r.status_code == 200
    assert "Mean risk by region and segment" in r.text and "<svg" in r.text
    assert "Audit log" in r.text
    assert "org.read" in c.get("/org").text
    c.get("/lang", params={"to": "zh-CN"})
    audit_zh = c.get("/org").text.split('id="audit-log"', 1)[1].split("</table>", 1)[0]
    assert "时间（UTC）" in audit_zh and "<td>成功</td>" in audit_zh and "<td>ok</td>" not in audit_zh
    assert '查看组织概览 <span class="mono muted" lang="en">org.read</span>' in audit_zh
    heat = c.get("/org").text.split("按区域和细分市场的平均风险</h2>", 1)[1].split("</svg>", 1)[0]
    tips = re.findall(r"<rect [^>]*><title>([^<]*)</title>", heat)
    assert tips and all(re.fullmatch(r".+ / .+：平均风险 \d+%，\d+ 人", tip) for tip in tips), tips
    c.get("/lang", params={"to": "en"})
    csv = c.get("/org/audit.csv")
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    # the job form proposes the newest batch's day, every group is listed (none cut), risk in percent
    assert f'type="date" value="{AS_OF_2.isoformat()}"' in r.text
    assert "3 groups, highest mean risk first" in r.text and "93%" in r.text


def test_a_dashboard_on_shanghai_time_shows_its_times_and_today_there(tmp_path):
    """The header's session end, the tables' times and the day the forms propose were UTC: a manager in
    Shanghai read 06:12 for 14:12, and before 08:00 the form proposed yesterday. REPRADAR_TIMEZONE sets
    the dashboard's clock, and every time says its zone."""
    from zoneinfo import ZoneInfo

    from fastapi.testclient import TestClient

    from repradar.settings import Settings
    from serving.app import create_app
    from serving.db.schema import WebSession
    from tests.serving.conftest import StubSource, make_settings, seed

    shanghai = ZoneInfo("Asia/Shanghai")
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'sh.db'}", timezone="Asia/Shanghai")
    app = create_app(settings, model_source=StubSource("1"))
    with TestClient(app) as client:
        tokens = seed(app)
        client.post("/login", data={"token": tokens["mgr1"]})
        before = dt.datetime.now(shanghai).date()
        page = client.get("/reps/R1").text
        after = dt.datetime.now(shanghai).date()
        with app.state.sessions() as s:
            row = s.scalars(select(WebSession)).one()
        ends = min(row.last_seen_at + dt.timedelta(minutes=60), row.created_at + dt.timedelta(hours=12))
        ends = (ends if ends.tzinfo else ends.replace(tzinfo=dt.UTC)).astimezone(shanghai)
        assert f"signed in until {ends:%H:%M} (UTC+08:00)" in page
        today = re.search(r'id="started_on" name="started_on" type="date" value="([\d-]+)"', page).group(1)
        assert today in {before.isoformat(), after.isoformat()}
        client.post("/login", data={"token": tokens["hr"]})
        org = client.get("/org").text.split('id="audit-log"', 1)[1].split("</table>", 1)[0]
        with app.state.sessions() as s:
            newest = s.scalars(select(AuditEvent).order_by(AuditEvent.id.desc())).first()
        at = (newest.at if newest.at.tzinfo else newest.at.replace(tzinfo=dt.UTC)).astimezone(shanghai)
        assert "When (UTC+08:00)" in org and f"<td>{at:%Y-%m-%d %H:%M:%S}</td>" in org
    from serving.web.pages import _local_time

    assert _local_time("2026-11-30T05:12:01.534+00:00", shanghai) == "2026-11-30 13:12"
    assert _local_time(dt.datetime(2026, 11, 30, 20, 0), shanghai) == "2026-12-01 04:00"  # naive is UTC
    with pytest.raises(ValueError, match="unknown time zone"):
        Settings(home=tmp_path, timezone="Asia/Shangai")


@contextlib.contextmanager
def _hr_on_org(tmp_path, db: str, data=None):
    """A service on `data` (no scores yet) with HR signed in on the organisation page: its TestClient."""
    from fastapi.testclient import TestClient

    from serving.app import create_app
    from tests.serving.conftest import StubSource, make_settings

    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / db}", data_dir=data)
    app = create_app(settings, model_source=StubSource("1"))
    with TestClient(app) as c:
        token = seed(app, with_scores=False)["hr"]
        c.post("/login", data={"token": token, "next": "/org"})
        yield c


def test_before_the_first_batch_the_job_form_guesses_no_day(tmp_path):
    with _hr_on_org(tmp_path, "empty.db") as c:
        page = c.get("/org").text
    assert 'id="as_of" name="as_of" type="date" value=""' in page and "pick a day inside your export" in page


def test_the_job_form_keeps_the_day_inside_the_datas_quota_periods(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    pd.DataFrame(
        {
            "rep_id": ["R1", "R1"],
            "period_start": ["2024-01-01", "2024-04-01"],
            "period_end": ["2024-03-31", "2024-06-30"],
            "quota_amount": [1, 1],
        }
    ).to_csv(data / "quotas.csv", index=False)
    with _hr_on_org(tmp_path, "span.db", data) as c:
        page = c.get("/org").text
        assert 'min="2024-01-01" max="2024-06-30" required' in page
        assert "quota periods run from 2024-01-01 to 2024-06-30." in page
        assert "(its last day for the newest picture). The data" in page
        c.get("/lang", params={"to": "zh-CN", "next": "/org"})
        # two Chinese sentences in a row take no space after the full stop (it read "。 数据中的考核期")
        assert (
            "（取最后一天可得到最新情况）。数据中的考核期从 2024-01-01 到 2024-06-30。" in c.get("/org").text
        )
        refused = c.post("/org/jobs", data={"as_of": "2025-01-01"})
        assert (
            "任务无法启动：2025-01-01 不在数据范围内：数据中的考核期从 2024-01-01 到 2024-06-30。"
            in refused.text
        )


def test_the_job_form_stops_at_the_day_after_the_exports_latest_event_and_says_why(tmp_path):
    """The field was bounded by the quota periods alone: HR could pick a day weeks after the export's last
    event, which scores every rep as if nothing had happened since (risks rise), said only in the job's
    notes afterwards. It now stops at the day after the latest event, and says so beside it; the server
    still decides (a later day inside the periods is taken, with the scoring's note)."""
    import html

    from serving.jobs import check_as_of

    data = tmp_path / "data"
    data.mkdir()
    pd.DataFrame(
        {"rep_id": ["R1"], "period_start": ["2024-01-01"], "period_end": ["2024-06-30"], "quota_amount": [1]}
    ).to_csv(data / "quotas.csv", index=False)
    # events: a deal created, one closed; an open deal's expected close date is no event
    pd.DataFrame(
        {
            "opportunity_id": ["O1", "O2"],
            "rep_id": ["R1", "R1"],
            "created_date": ["2024-01-05", "2024-01-09"],
            "close_date": ["2024-02-14", "2024-05-01"],
            "stage": ["Won", "Open"],
            "amount": [10, 20],
            "is_closed": [True, False],
            "is_won": [True, False],
        }
    ).to_csv(data / "opportunities.csv", index=False)
    pd.DataFrame(
        {"activity_id": ["A1"], "rep_id": ["R1"], "occurred_at": ["2024-02-20T23:30:00Z"], "type": ["call"]}
    ).to_csv(data / "activities.csv", index=False)
    with _hr_on_org(tmp_path, "latest.db", data) as c:
        page = c.get("/org").text
        assert 'min="2024-01-01" max="2024-02-21" required' in page, page
        help_text = html.unescape(page[page.index('id="as-of-help">') :].split("</p>")[0])
        assert (
            "The data's quota periods run from 2024-01-01 to 2024-06-30. Its latest event is on 2024-02-20: "
            "the field stops at 2024-02-21, the first day that sees it; a later day sees nothing newer and "
            "every risk rises." in help_text
        ), help_text
        c.get("/lang", params={"to": "zh-CN", "next": "/org"})
        assert (
            "数据中最新的事件发生在 2024-02-20：日期最晚可选 2024-02-21（能看到该事件的第一天）"
            in c.get("/org").text
        )
    check_as_of(data, dt.date(2024, 3, 15))  # the server's rule is unchanged: inside the periods is taken


def test_hr_job_without_data_folder_shows_the_reason(web):
    c = web.login("hr")
    r = c.post("/org/jobs", data={"as_of": "2024-01-15"})
    assert r.status_code == 200 and "could not start" in r.text


def test_switching_the_language_after_a_refused_job_leaves_no_sentence_in_the_other_language(web):
    """The refusal's text travels in the address (`/org?error=...`), written in the language the form was
    sent in: switching to Chinese then showed "任务无法启动：No data folder is configured ..." and back
    to English "The job could not start: 尚未配置数据文件夹 ...". The switch drops that text (and its
    field and typed day); a started job's confirmation, said by code, stays."""
    c = web.login("hr")
    refused = c.post("/org/jobs", data={"as_of": "2024-01-15"}, follow_redirects=False)
    here = refused.headers["location"].partition("#")[0]
    assert "error=" in here and "could not start" in c.get(here).text
    switched = c.get("/lang", params={"to": "zh-CN", "next": here}, follow_redirects=False)
    assert switched.headers["location"] == "/org"
    page = c.get(switched.headers["location"]).text
    assert "任务无法启动" not in page and "could not start" not in page and "data folder" not in page
    kept = c.get(
        "/lang", params={"to": "en", "next": "/org?flash=started&job=abc&error=x"}, follow_redirects=False
    )
    assert kept.headers["location"] == "/org?flash=started&job=abc"


def test_job_refusals_and_failures_are_said_in_the_pages_language(web):
    c = web.login("hr")
    c.get("/lang", params={"to": "zh-CN", "next": "/org"})
    r = c.post("/org/jobs", data={"as_of": "2024-01-15"})
    assert (
        r.status_code == 200
        and "任务无法启动：尚未配置数据文件夹" in r.text
        and "could not start" not in r.text
    )
    now = dt.datetime.now(dt.UTC)
    with web.app.state.sessions.begin() as s:
        for i, (code, error) in enumerate(
            [
                ("data", "quotas.csv: column quota_amount: must be > 0 (rows 3)"),
                ("stopped", "the service stopped before the job finished; start it again"),
                (None, "an old failure without a code"),
                ("purged", None),  # a job that succeeded, whose file a retention purge deleted
            ]
        ):
            s.add(
                Job(
                    id=f"{i}" * 32,
                    dedupe_key=f"{i}" * 64,
                    data_dir="/data",
                    data_digest="0" * 64,
                    as_of=dt.date(2024, 1, 22),
                    model_version="1",
                    status="succeeded" if code == "purged" else "failed",
                    created_by="hr",
                    created_at=now,
                    error=error,
                    error_code=None if code == "purged" else code,
                )
            )
    page = c.get("/org").text
    assert (
        '数据无法评分：<span lang="en">quotas.csv: column quota_amount: must be &gt; 0 (rows 3)</span>'
        in page  # no space after the full-width colon
    )
    c.get("/lang", params={"to": "en", "next": "/org"})
    en_page = c.get("/org").text  # English keeps its space after the colon
    assert 'The data could not be scored: <span lang="en">quotas.csv: column' in en_page
    assert "任务完成前服务已停止" in page and "the service stopped" not in page
    assert "an old failure without a code" in page
    assert "文件已按保留期限清除" in page and f"/org/jobs/{'3' * 32}/scores" not in page
    assert '<td class="day">2024-01-22</td>' in page  # kept on one line (table.list td.day)


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
    assert forced.status_code == 422 and "forcing a promotion needs a reason" in forced.text
    assert 'id="reason"' in forced.text and 'aria-describedby="err-reason"' in forced.text
    assert "Value error" not in forced.text
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


def test_a_chinese_browser_gets_chinese_pages_until_a_language_is_chosen(web):
    from fastapi.testclient import TestClient

    zh = {"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"}
    browser = TestClient(web.app, base_url="http://testserver", headers=zh)
    assert '<html lang="zh-CN">' in browser.get("/login").text
    browser.post("/login", data={"token": web.tokens["mgr1"]})
    assert _stored_lang(web, "mgr1") is None  # followed, not stored: another browser may ask otherwise
    assert '<html lang="zh-CN">' in browser.get("/team").text and "早期预警" in browser.get("/team").text
    browser.get("/lang", params={"to": "en", "next": "/team"})  # a choice wins over the browser's wish
    assert '<html lang="en">' in browser.get("/team").text
    assert '<html lang="en">' in web.client.get("/login", headers={"Accept-Language": "en-US"}).text
    from serving.i18n import from_accept_language

    assert from_accept_language("fr-FR, zh-Hans;q=0.5, en;q=0.4") == "zh-CN"
    assert from_accept_language("zh-TW,zh-HK;q=0.9") is None and from_accept_language("zh;q=0, en") == "en"


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


def _scores_frame(rows, drivers: dict, groups: dict | None = None) -> pd.DataFrame:
    """The stored score rows (`rows`, with `drivers` and `groups` by score_id) as the report's scores frame."""
    cols = {
        "manager_id": [r.manager_id for r in rows],
        "rep_id": [r.rep_id for r in rows],
        "as_of": [r.as_of for r in rows],
        "risk_band": [r.risk_band for r in rows],
        "drivers": [drivers[r.score_id] for r in rows],
    }
    if groups is not None:
        cols["driver_groups"] = [groups[r.score_id] for r in rows]
    return pd.DataFrame(cols)


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
    frame = _scores_frame(rows, drivers)
    expected = team_suggestions(frame)
    assert sorted(k for k, _ in en) == sorted(expected["suggestion"]) == ["manager_coaching", "team_building"]
    assert all(text.startswith("Manager M1: ") for _, text in en)
    zh = manager_suggestions(rows, drivers, "zh-CN")
    assert [t for _, t in zh] == [f"经理 M1：{r}" for r in expected["reason_zh"]]
    assert manager_suggestions([], {}, "en") == []


def test_the_log_caption_counts_one_intervention_in_the_singular(web):
    """The first entry a manager records read '1 interventions recorded'."""
    c = web.login("mgr1")
    one = c.post("/reps/R1/interventions", data={"intervention": "mentoring", "started_on": "2024-01-16"})
    assert "1 intervention recorded for this rep" in one.text and "1 interventions" not in one.text
    two = c.post("/reps/R1/interventions", data={"intervention": "recognition", "started_on": "2024-01-17"})
    assert "2 interventions recorded for this rep, newest first" in two.text
    c.get("/lang", params={"to": "zh-CN", "next": "/reps/R1"})
    assert "此销售代表已记录的 2 项干预措施" in c.get("/reps/R1").text


def test_a_context_reason_is_marked_as_context_once(web):
    """The model's sentence for a context group ends with its own "(context, not an intervention)"; the page,
    which marks the group beside its title, said it twice in one line."""
    from models import i18n as model_i18n

    row = _worded_score("R1", "M1", 0.91, "high")
    context = row["driver_groups"][1]
    context["text_en"] = model_i18n.text("en", "driver.context", text=context["text_en"])
    context["text_zh"] = model_i18n.text("zh-CN", "driver.context", text=context["text_zh"])
    with web.app.state.sessions.begin() as s:
        store.import_scores(s, [row])
    c = web.login("mgr1")
    for lang, marks, sentence in (
        ("en", ("(context", "not an intervention"), "Attainment against a straight-line pace is -49 points"),
        ("zh-CN", ("仅作背景", "不作为干预依据"), "业绩完成率与线性进度之差为-49个百分点"),
    ):
        c.get("/lang", params={"to": lang, "next": "/reps/R1"})
        page = c.get("/reps/R1").text
        reasons = page[
            page.index('id="driver-groups"') : page.index("</ul>", page.index('id="driver-groups"'))
        ]
        line = next(li for li in reasons.split("<li>") if sentence in li)
        assert line.count(marks[0]) == 1 and marks[1] not in line, (lang, line)
    # a score written before the Chinese texts took Chinese punctuation: its mark has English commas and brackets
    legacy = _worded_score("R1", "M1", 0.91, "high")
    legacy["as_of"] += dt.timedelta(days=7)
    legacy["driver_groups"][1]["text_zh"] += "(仅作背景参考,不作为干预依据)"
    with web.app.state.sessions.begin() as s:
        store.import_scores(s, [legacy])
    page = c.get("/reps/R1").text  # still in Chinese
    line = next(li for li in page.split("<li>") if "业绩完成率与线性进度之差为-49个百分点" in li)
    assert line.count("仅作背景") == 1 and "不作为干预依据" not in line, line


def test_a_cleared_date_field_is_said_to_be_required(web):
    """A start day left empty was refused as 'not a day of the calendar; enter a real date'."""
    c = web.login("mgr1")
    r = c.post("/reps/R1/interventions", data={"intervention": "mentoring", "started_on": ""})
    assert r.status_code == 422 and "Started on: this field is required." in r.text
    assert "not a day of the calendar" not in r.text
    c.post("/reps/R1/interventions", data={"intervention": "mentoring", "started_on": "2024-01-16"})
    entry = re.search(r'action="/reps/R1/interventions/(\d+)/end"', c.get("/reps/R1").text).group(1)
    end = c.post(f"/reps/R1/interventions/{entry}/end", data={"ended_on": ""})
    assert end.status_code == 422 and "this field is required." in end.text
    bad = c.post("/reps/R1/interventions", data={"intervention": "mentoring", "started_on": "2024-02-30"})
    assert "not a day of the calendar" in bad.text  # a typed day that does not exist keeps its message


def test_the_list_names_the_strongest_reason_a_manager_can_act_on(web):
    """Most rows of the early-warning list said 'Attainment and pace' (context: being behind is the symptom,
    not a reason to act on). The list now names the strongest actionable reason, as the rep page ranks them,
    and marks a context reason as such when a rep has no other."""
    behind = _worded_score("R1", "M1", 0.91, "high")
    behind["drivers"] = behind["drivers"][::-1]  # pace first: the strongest driver overall is context
    behind["driver_groups"] = behind["driver_groups"][::-1]
    tenure = _worded_score("R2", "M1", 0.4, "medium")
    tenure["drivers"] = [{"feature": "tenure_days", "group": "tenure", "value": 90.0, "contribution": 0.4}]
    tenure["driver_groups"] = [
        {
            "group": "tenure",
            "contribution": 0.4,
            "actionable": False,
            "title_en": "Tenure",
            "title_zh": "司龄",
        }
    ]
    with web.app.state.sessions.begin() as s:
        store.import_scores(s, [behind, tenure])
    c = web.login("mgr1")
    page = c.get("/team").text
    rows = {m.group(1): m.group(2) for m in re.finditer(r'<tr data-rep="(\w+)">(.*?)</tr>', page, re.S)}
    assert (
        "Pipeline" in rows["R1"] and "Attainment and pace" not in rows["R1"] and "context" not in rows["R1"]
    )
    assert "Tenure</td>" not in rows["R2"] and 'Tenure<span class="muted"> (context' in rows["R2"]
    assert "Top reason to act on" in page
    # the same from the drivers alone (scores without driver groups, another model)
    for row in (behind, tenure):
        row.pop("driver_groups")
        row["as_of"] += dt.timedelta(days=7)
    with web.app.state.sessions.begin() as s:
        store.import_scores(s, [behind, tenure])
    rows = {
        m.group(1): m.group(2)
        for m in re.finditer(r'<tr data-rep="(\w+)">(.*?)</tr>', c.get("/team").text, re.S)
    }
    assert "Pipeline" in rows["R1"] and "Attainment and pace" not in rows["R1"]
    assert 'Tenure<span class="muted"> (context' in rows["R2"]
    # a score's own group title (the model's words, as on the rep page) names the reason, not the catalog's
    retitled = _worded_score("R1", "M1", 0.91, "high", as_of=behind["as_of"] + dt.timedelta(days=7))
    retitled["driver_groups"][0]["title_zh"] = "在途商机"
    with web.app.state.sessions.begin() as s:
        store.import_scores(s, [retitled])
    c.get("/lang", params={"to": "zh-CN", "next": "/team"})
    assert re.search(r'<tr data-rep="R1">.*?<td>在途商机</td>', c.get("/team").text, re.S)
    assert "<strong>在途商机</strong>" in c.get("/reps/R1").text


def test_a_rep_with_only_context_reasons_is_labelled_with_its_top_group(web):
    """A rep whose driver groups were all context (attainment first) was labelled with the group of their
    strongest single feature, here Pipeline, plus the context mark: "Pipeline (context, ...)", naming a
    group that is neither the top reason nor context. The label is the top group, marked as context only
    when it is; without groups, the strongest risk-raising driver's group, marked only when context."""
    behind = _worded_score("R1", "M1", 0.91, "high")  # pipeline's strongest feature, but its group nets out
    behind["driver_groups"] = [behind["driver_groups"][1], {"group": "tenure", "actionable": False}]
    with web.app.state.sessions.begin() as s:
        store.import_scores(s, [behind])
    c = web.login("mgr1")

    def reason(page: str) -> str:
        row = re.search(r'<tr data-rep="R1">(.*?)</tr>', page, re.S).group(1)
        return re.findall(r"<td>(.*?)</td>", row, re.S)[-2]

    assert (
        reason(c.get("/team").text)
        == 'Attainment and pace<span class="muted"> (context, not something to act on)</span>'
    )
    c.get("/lang", params={"to": "zh-CN", "next": "/team"})
    # the group's name as the rep page says it (the list said 完成率与进度, the rep page 业绩完成与进度)
    assert reason(c.get("/team").text).startswith("业绩完成与进度<span")
    assert '<strong>业绩完成与进度</strong><span class="muted">（仅作背景' in c.get("/reps/R1").text
    c.get("/lang", params={"to": "en", "next": "/team"})
    # scores without driver groups: the first driver raising the risk names the group, marked as its group is
    for drivers, shown in (
        (behind["drivers"], "Pipeline"),
        ([{"feature": "pipeline_coverage", "group": "pipeline", "value": 3.0, "contribution": -0.2}], "—"),
    ):
        behind = {k: v for k, v in behind.items() if k != "driver_groups"}
        row = behind = {**behind, "drivers": drivers, "as_of": behind["as_of"] + dt.timedelta(days=7)}
        with web.app.state.sessions.begin() as s:
            store.import_scores(s, [row])
        assert reason(c.get("/team").text) == shown


def test_tied_risks_are_listed_in_one_order_on_the_pages_and_the_api(web):
    """Reps tied at 100% were listed in reverse id order on /team, in id order in the scores file; the
    organisation page's tables listed groups of equal mean risk in the database's order. Ties are in
    rank order (risk descending, then rep id) everywhere; tied groups by name."""
    from tests.serving.conftest import REPS

    ids = sorted(r["rep_id"] for r in REPS)
    rows = score_rows(AS_OF_2 + dt.timedelta(days=7))
    for r in rows:  # ranked as `repradar score` ranks ties (models/scoring.py)
        r["risk"], r["risk_band"], r["rank"] = 1.0, "high", ids.index(r["rep_id"]) + 1
    with web.app.state.sessions.begin() as s:
        store.import_scores(s, rows)
    hr = web.login("hr")
    assert re.findall(r'<tr data-rep="(\w+)">', hr.get("/team").text) == ids
    api = web.client.get("/api/v1/early-warning", headers={"Authorization": f"Bearer {web.tokens['hr']}"})
    assert [i["rep_id"] for i in api.json()["items"]] == ids
    assert [i["rank"] for i in api.json()["items"]] == list(range(1, len(ids) + 1))
    page = hr.get("/org").text
    for title, groups in (("Risk by manager", ["M1", "M2", "M9"]), ("Risk by region", ["EU", "US"])):
        table = page.split(f"<h2>{title}</h2>", 1)[1].split("</table>", 1)[0]
        assert re.findall(r'<th scope="row">(.*?)</th>', table) == groups, (title, table)


def test_a_table_of_one_group_says_one_group(web):
    """The organisation page's caption said "Risk by segment: 1 groups, highest mean risk first"."""
    row = score_rows(AS_OF_2 + dt.timedelta(days=7))[0]  # the newest batch holds one rep: one group each
    with web.app.state.sessions.begin() as s:
        store.import_scores(s, [row])
    hr = web.login("hr")
    assert "<caption>Risk by segment: 1 group</caption>" in hr.get("/org").text
    hr.get("/lang", params={"to": "zh-CN", "next": "/org"})
    assert "：共1组</caption>" in hr.get("/org").text
    with web.app.state.sessions.begin() as s:
        store.import_scores(s, score_rows(AS_OF_2 + dt.timedelta(days=14)))
    assert "：共3组，按平均风险从高到低</caption>" in hr.get("/org").text


def test_a_change_of_one_point_is_singular():
    """The list's 'Since last batch' read '+1 pts' and '-1 pts'."""
    from serving.web.pages import _points

    assert [_points("en", c) for c in (0.01, -0.012, 0.03, 0.001)] == ["+1 pt", "-1 pt", "+3 pts", "0"]
    assert _points("zh-CN", 0.01) == "+1个百分点"


def test_a_band_filter_matching_nobody_says_so(web):
    """A manager filtering on a band none of their reps is in got an empty table under its headings."""
    c = web.login("mgr2")  # R3 (high) and R4 (low)
    page = c.get("/team", params={"band": "medium"}).text
    assert 'id="none-in-bands"' in page and "No rep in your scope is in the bands chosen" in page
    assert 'id="early-warning"' not in page and 'value="medium" checked' in page  # the filter stays
    assert 'id="none-in-bands"' not in c.get("/team", params={"band": "high"}).text


def test_the_rep_page_shows_the_earlier_periods_risk(web):
    """A manager checking a rep's history saw only the current period's trend: whether the rep was at risk
    last quarter too was not on the page. Each earlier period now shows its last risk (the newest model's
    when a day was scored twice); the read is audited as the API's history read."""
    earlier = []
    for as_of, risk, version in ((dt.date(2023, 11, 6), 0.4, "1"), (dt.date(2023, 12, 18), 0.72, "1")):
        row = next(r for r in score_rows(as_of, version) if r["rep_id"] == "R1")
        row.update(period_start=dt.date(2023, 10, 1), period_end=dt.date(2023, 12, 31), risk=risk)
        row["risk_band"] = band(risk)
        earlier.append(row)
    rescored = dict(earlier[-1], risk=0.77, model_version="2")  # the same day again, with a new model
    with web.app.state.sessions.begin() as s:
        store.import_scores(s, earlier)
        store.import_scores(s, [rescored])
    c = web.login("mgr1")
    page = c.get("/reps/R1").text
    table = page[
        page.index('id="earlier-periods"') : page.index("</table>", page.index('id="earlier-periods"'))
    ]
    rows = table.split("<tr>")[2:]
    assert len(rows) == 1 and "2023-10-01 to 2023-12-31" in rows[0] and "2023-12-18" in rows[0]
    assert "77%" in rows[0] and "band-high" in rows[0] and ">2<" in rows[0]
    assert "2024-01-01 to" not in table  # the current period is the trend above, not history
    assert "Not known yet" in rows[0]  # no batch job has judged that quarter yet
    with web.app.state.sessions() as s:
        actions = [e.action for e in s.scalars(select(AuditEvent).where(AuditEvent.resource_id == "R1"))]
    assert "rep.history.read" in actions
    assert 'id="no-earlier"' in c.get("/reps/R2").text  # nothing before: said plainly
    # once a later job has judged the quarter: how it ended, beside the risk given, in both languages
    outcome = {"rep_id": "R1", "period_start": dt.date(2023, 10, 1), "period_end": dt.date(2023, 12, 31)}
    with web.app.state.sessions.begin() as s:
        store.save_outcomes(
            s, [{**outcome, "attainment": 0.724, "missed": True}], judged_by="j", known_on=AS_OF_2
        )
    page = c.get("/reps/R1").text
    row = page[page.index('id="earlier-periods"') :].split("<tr>")[2]
    assert "Missed target (72% of quota)" in row and 'class="outcome missed"' in row
    assert f'title="as known on {AS_OF_2.isoformat()}"' in row
    bearer = {"Authorization": f"Bearer {web.tokens['mgr1']}"}
    history = web.client.get("/api/v1/reps/R1/history", headers=bearer).json()["items"]
    assert {(h["period_start"], json.dumps(h["outcome"])) for h in history if h["period_start"] < "2024"} == {
        ("2023-10-01", json.dumps({"attainment": 0.724, "missed": True, "known_on": AS_OF_2.isoformat()}))
    }
    assert all(h["outcome"] is None for h in history if h["period_start"] >= "2024")
    with web.app.state.sessions.begin() as s:
        store.save_outcomes(
            s, [{**outcome, "attainment": 1.05, "missed": False}], judged_by="k", known_on=AS_OF_2
        )
    c.cookies.set("rr_lang", "zh-CN")
    zh = c.get("/reps/R1").text
    assert "达成指标（完成率 105%）" in zh[zh.index('id="earlier-periods"') :]


def test_a_score_without_sentences_shows_its_amounts_in_its_currency(web):
    """A driver the score has no sentence for is written from its value: an amount in the score's currency
    (its model's), and "$" for a score written before scores named one."""
    row = score_rows(AS_OF_2 + dt.timedelta(days=7))[0]
    row["drivers"] = [
        {
            "feature": "avg_won_deal_size_180d",
            "group": "deal_size",
            "value": 52_000.0,
            "peer_value": 40_000.0,
            "contribution": 0.9,
        }
    ]
    euro = dict(row, as_of=row["as_of"] + dt.timedelta(days=7), currency="EUR")
    with web.app.state.sessions.begin() as s:
        store.import_scores(s, [row])
    c = web.login("hr")
    assert "$52k" in c.get(f"/reps/{row['rep_id']}").text
    with web.app.state.sessions.begin() as s:
        store.import_scores(s, [euro])
    page = c.get(f"/reps/{row['rep_id']}").text
    assert "€52k" in page and "€40k" in page and "$52k" not in page
    c.get("/lang", params={"to": "zh-CN", "next": "/"})
    assert "€5.2万" in c.get(f"/reps/{row['rep_id']}").text


def test_org_page_suggestions_rank_reasons_by_driver_group_as_the_report_does():
    """A rep's strongest actionable reason is the first actionable of the scores' driver groups (as HR's
    report, the early-warning list and the rep page rank them), not the group of the first actionable
    single feature: with three high-band reps whose first actionable feature is a pipeline one but whose
    groups rank conversion first for one of them, the report suggests no team building; neither may the
    organisation page."""
    import datetime as dt
    from types import SimpleNamespace

    from models.team import team_suggestions
    from serving.web.pages import manager_suggestions

    day = dt.date(2024, 2, 5)
    pipe = [
        {"feature": "pipeline_coverage", "group": "pipeline", "contribution": 0.66},
        {"feature": "stage_progress_rate_364d", "group": "conversion", "contribution": 0.35},
    ]
    by_pipe = [{"group": "pipeline", "actionable": True, "contribution": 1.0}]
    by_conv = [
        {"group": "attainment", "actionable": False, "contribution": 1.2},
        {"group": "conversion", "actionable": True, "contribution": 0.9},
        {"group": "pipeline", "actionable": True, "contribution": 0.7},
    ]
    rows, drivers, groups = [], {}, {}
    for i in range(8):  # M1: 3 high (2 for pipeline, 1 for conversion by group) of 3; M2: 5 low
        mgr, band = ("M1", "high") if i < 3 else ("M2", "low")
        rows.append(SimpleNamespace(rep_id=f"R{i}", manager_id=mgr, as_of=day, risk_band=band, score_id=i))
        drivers[i] = pipe if i < 3 else []
        groups[i] = (by_conv if i == 2 else by_pipe) if i < 3 else None
    frame = _scores_frame(rows, drivers, groups)
    report = team_suggestions(frame)  # what HR's report says for the same scores
    assert "team_building" not in set(report["suggestion"])
    page = manager_suggestions(rows, drivers, "en", groups=groups)
    assert sorted(k for k, _ in page) == sorted(report["suggestion"])


def test_the_models_page_shows_each_versions_currency_in_both_languages(web, tmp_path):
    """A real registry in the service's home: a version trained with REPRADAR_CURRENCY=EUR (its tag), and
    versions registered before the tag: one whose gate attempt read SEK from its spec, one never gated
    whose bundled spec records JPY (it was shown as USD), one whose spec records none (trained before the
    currency was recorded; its gate attempt read the USD such a spec loads with) and one whose files are
    gone. The last two are unknown ("?", null in JSON), not a USD the data may never have been in. The
    models page, GET /api/v1/models and `repradar models` (table and --json) all say the same. The page and
    the API also say whether each version was trained on this release's feature definitions."""
    import json

    from models import registry
    from tests.training.conftest import run_cli

    settings = web.app.state.settings
    client = registry.configure(settings)
    name = settings.model_name
    client.create_registered_model(name)

    def bundled(folder, spec):  # a model folder as train logs it: the spec under artifacts/
        (tmp_path / folder / "artifacts").mkdir(parents=True)
        (tmp_path / folder / "artifacts" / "feature_spec.json").write_text(json.dumps(spec))
        return (tmp_path / folder).as_uri()

    sources = [
        (tmp_path / "gone").as_uri(),
        (tmp_path / "gone").as_uri(),
        (tmp_path / "gone").as_uri(),
        bundled("m-jpy", {"feature_names": [], "currency": "JPY"}),
        bundled("m-old", {"feature_names": []}),
    ]
    versions = [str(client.create_model_version(name, source=src).version) for src in sources]
    client.set_model_version_tag(name, versions[2], "currency", "EUR")
    client.set_model_version_tag(name, versions[2], "data_window", "2023-01-01..2024-06-30")
    for v, code in ((versions[1], "SEK"), (versions[4], "USD")):
        attempt = {"at": "2026-01-05T09:00:00.000+00:00", "by": "ds", "via": "cli", "decision": "refused"}
        attempt["currencies"] = {"challenger": code, "champion": "USD"}
        client.set_model_version_tag(name, v, "promotion_history.001", json.dumps(attempt))
    expected = dict(zip(versions, [None, "SEK", "EUR", "JPY", None], strict=True))
    # the feature definitions each version was trained on: this release's, an earlier one's, unrecorded
    from features.registry import definitions_fingerprint

    client.set_model_version_tag(name, versions[2], "features_sha256", definitions_fingerprint())
    client.set_model_version_tag(name, versions[3], "features_sha256", "0" * 64)
    defs = dict(zip(versions, [None, None, "current", "older", None], strict=True))
    shown_defs = {
        "en": {None: "?", "current": "current", "older": "older: retrain"},
        "zh-CN": {None: "?", "current": "当前", "older": "较旧：需重新训练"},
    }

    ds = web.login("ds")
    for lang, header in (("en", "Currency"), ("zh-CN", "货币")):
        page = ds.get("/lang", params={"to": lang, "next": "/models"}).text
        table = page.split('id="versions"', 1)[1].split("</table>", 1)[0]
        assert f'<th scope="col">{header}</th>' in table, table
        rows = {r.split("</td>", 1)[0]: r for r in table.split("<tr><td>")[1:]}
        assert f'<th scope="col">{ {"en": "Feature definitions", "zh-CN": "特征定义"}[lang] }</th>' in table
        for version, code in expected.items():
            assert (
                f"<td>{code or '?'}</td><td>{shown_defs[lang][defs[version]]}</td>" in rows[str(version)]
            ), (
                lang,
                version,
                rows,
            )
        # the training data's window in words, not the tag's "2023-01-01..2024-06-30"
        window = {"en": "2023-01-01 to 2024-06-30", "zh-CN": "2023-01-01 至 2024-06-30"}[lang]
        assert f"<td>{window}</td>" in rows[str(versions[2])] and ".." not in table, (lang, rows)
    api = web.client.get("/api/v1/models", headers={"Authorization": f"Bearer {web.tokens['ds']}"})
    assert api.status_code == 200, api.text
    assert {v["version"]: v["tags"]["currency"] for v in api.json()["versions"]} == expected
    assert {v["version"]: v["tags"]["features"] for v in api.json()["versions"]} == defs
    listed = run_cli(settings.home, "models", "--json")
    assert listed.exit_code == 0, (listed.stdout, listed.stderr)
    assert {v["version"]: v["currency"] for v in json.loads(listed.stdout)} == expected
    listed = run_cli(settings.home, "models")
    assert listed.exit_code == 0, (listed.stdout, listed.stderr)
    table = listed.stdout.splitlines()
    column = table[1].index("currency")
    shown = {line.split()[0]: line[column:].split()[0] for line in table[2:] if line[:7].strip()}
    assert shown == {v: code or "?" for v, code in expected.items()}, "\n".join(table)


def test_a_page_asked_with_a_trailing_slash_links_to_its_address(web):
    """`/team/` answered the plain 404 page with no hint; the page there is `/team`, so the 404 page now
    offers a link to it (never a redirect), in the page's language, signed in or not. Only the dashboard's
    routes decide (an unknown rep's page is offered as a known one's), the page-message parameters stay
    behind, and an address no page serves, or only a form, keeps the plain 404 page."""
    html = {"accept": "text/html"}
    c = web.login("mgr1")
    c.get("/lang", params={"to": "en"})
    for asked, meant in [
        ("/team/", "/team"),
        ("/team//", "/team"),
        ("/reps/R1/", "/reps/R1"),
        ("/reps/NOPE/", "/reps/NOPE"),
        ("/org/?error=Your+data+is+lost&band=high", "/org?band=high"),
        ("/login/", "/login"),
    ]:
        r = c.get(asked, headers=html, follow_redirects=False)
        assert r.status_code == 404 and "location" not in r.headers, asked
        assert r.headers["content-type"].startswith("text/html") and "<h1>Not found</h1>" in r.text
        assert "the dashboard&#39;s addresses end without a slash" in r.text, asked
        assert f'<a href="{meant}">Go to {meant}</a>' in r.text, asked
        assert "Your data is lost" not in r.text
    assert c.get("/reps/R1", headers=html).status_code == 200  # where the link goes
    signed_out = web.client.get("/team/", headers=html, follow_redirects=False)
    assert signed_out.status_code == 404 and '<a href="/team">Go to /team</a>' in signed_out.text
    c.get("/lang", params={"to": "zh-CN"})
    zh = c.get("/team/", headers=html)
    assert zh.status_code == 404 and '<html lang="zh-CN">' in zh.text
    assert "仪表板的地址末尾不带斜杠" in zh.text and '<a href="/team">前往 /team</a>' in zh.text
    c.get("/lang", params={"to": "en"})
    for asked in ("/nonexistent-page/", "/reps/R1/interventions/", "/logout/", "/reps/"):
        r = c.get(asked, headers=html, follow_redirects=False)
        assert r.status_code == 404 and "There is no page at this address. Check the address" in r.text, asked
        assert "without a slash" not in r.text, asked
    # a client not asking for HTML keeps the JSON 404
    assert c.get("/team/").json()["code"] == "not_found"


def test_a_client_not_asking_for_html_gets_the_api_s_404_naming_the_address_for_any_route(web):
    """`/team/` asked as JSON (or with no Accept) was a bare 404 while `/api/v1/me/` named its address: the
    JSON 404 now names the address for any path whose slashless form some route serves, for any method
    (a form's address too, as the API's POST routes), an API's, a dashboard page's or the documents'.
    A path no route serves keeps the bare 404, and the catch-all of mistyped pages counts for none."""
    c = web.login("mgr1")
    hint = "no such address: the service's addresses end without a slash; use {}"
    for accept in ({"accept": "application/json"}, {}):
        for asked, meant in [
            ("/api/v1/me/", "/api/v1/me"),
            ("/team/", "/team"),
            ("/team//", "/team"),
            ("/reps/NOPE/", "/reps/NOPE"),
            ("/org/?band=high", "/org"),
            ("/logout/", "/logout"),
            ("/docs/", "/docs"),
        ]:
            for client in (c, web.client):  # signed in or not: only the routes decide
                r = client.get(asked, headers=accept, follow_redirects=False)
                assert r.status_code == 404 and "location" not in r.headers, (asked, accept)
                assert r.json() == {"detail": hint.format(meant), "code": "not_found"}, (asked, accept)
        for asked in ("/nonexistent-page/", "/reps/R1/nope/", "/reps/", "/static/nope.css/", "/api/v1/reps/"):
            r = c.get(asked, headers=accept, follow_redirects=False)
            assert r.status_code == 404 and r.json() == {"detail": "Not Found", "code": "not_found"}, asked
    head = c.head("/team/", headers={"accept": "application/json"})
    assert head.status_code == 404 and head.content == b""


def test_any_method_on_a_trailing_slash_address_is_the_404_naming_it(web):
    """`POST /logout/` from a JSON client was a 405 with `Allow: GET, HEAD`, the methods of the catch-all
    of mistyped pages, while `GET /logout/` named `/logout`: every method on a trailing-slash dashboard
    path now gets the 404 its GET gets (naming the address when some route serves it; a browser the 404
    page, with its link when the address is a page), and nothing is done (the session stays open). A
    method a page does not take, on its own address, keeps its 405."""
    c = web.login("mgr1")
    c.get("/lang", params={"to": "en"})
    hint = "no such address: the service's addresses end without a slash; use {}"
    json = {"accept": "application/json"}
    for method in ("POST", "PUT", "PATCH", "DELETE", "OPTIONS"):
        for asked, meant in [("/logout/", "/logout"), ("/team/", "/team"), ("/login//", "/login")]:
            r = c.request(method, asked, headers=json, follow_redirects=False)
            assert r.status_code == 404 and "allow" not in r.headers, (method, asked, r.status_code)
            assert r.json() == {"detail": hint.format(meant), "code": "not_found"}, (method, asked)
        r = c.request(method, "/nonexistent-page/", headers=json)
        assert r.status_code == 404 and r.json() == {"detail": "Not Found", "code": "not_found"}, method
    html = {"accept": "text/html"}
    page = c.post("/logout/", headers=html, follow_redirects=False)  # no page at /logout: no link either
    assert page.status_code == 404 and "There is no page at this address. Check the address" in page.text
    assert "without a slash" not in page.text
    page = c.post("/team/", headers=html, follow_redirects=False)
    assert page.status_code == 404 and '<a href="/team">Go to /team</a>' in page.text
    assert c.get("/team", headers=html).status_code == 200  # still signed in: no POST /logout/ signed out
    r = c.put("/logout", headers=json)
    assert r.status_code == 405 and "POST" in r.headers["allow"]


def test_the_models_page_says_which_promotion_attempts_the_gate_refused(web):
    """A refused `repradar promote --version 1` (a rollback the gate turned down) was listed in the
    promotion history like a promotion: its time, version 1 and who asked, with no word that nothing
    moved, so the page read as if version 1 had been made champion again. Each attempt now says the
    gate's decision, in the page's language, as `repradar models` and the API's `tags.decision` do."""
    import json

    from models import registry

    settings = web.app.state.settings
    client = registry.configure(settings)
    name = settings.model_name
    client.create_registered_model(name)
    versions = [str(client.create_model_version(name, source="file:///nowhere").version) for _ in range(2)]
    attempts = {
        versions[0]: [
            ("2026-01-05T09:00:00.000+00:00", "first"),
            ("2026-04-05T09:00:00.000+00:00", "refused"),
        ],
        versions[1]: [("2026-04-01T09:00:00.000+00:00", "passed")],
    }
    for v, entries in attempts.items():
        for i, (at, decision) in enumerate(entries, start=1):
            entry = {"at": at, "by": "ds", "via": "cli", "decision": decision, "forced": False}
            client.set_model_version_tag(name, v, f"promotion_history.{i:03d}", json.dumps(entry))

    ds = web.login("ds")
    for lang, header, words in (
        ("en", "Decision", ("refused by the gate", "passed the gate", "first champion")),
        ("zh-CN", "决定", ("被门槛拒绝", "通过门槛", "首个冠军模型")),
    ):
        page = ds.get("/lang", params={"to": lang, "next": "/models"}).text
        table = page.split('id="promotions"', 1)[1].split("</table>", 1)[0]
        assert f'<th scope="col">{header}</th>' in table, table
        rows = table.split("<tr><td>")[1:]  # newest first
        assert [r.split("</td>")[1].removeprefix("<td>") for r in rows] == [
            versions[0],
            versions[1],
            versions[0],
        ]
        for row, word in zip(rows, words, strict=True):
            assert f"<td>{word}</td>" in row, (lang, row)


def test_the_intervention_log_is_in_the_order_its_caption_says(web):
    """The rep page's log said "oldest first" while it listed the API's order, the newest start first:
    a manager reading down it took last quarter's entry for the latest. The caption now says the order
    the rows are in, in both languages."""
    auth = {"Authorization": f"Bearer {web.tokens['mgr1']}"}
    for day in ("2024-01-02", "2024-01-09", "2024-01-05"):
        r = web.client.post(
            "/api/v1/reps/R1/interventions",
            json={"intervention": "mentoring", "started_on": day},
            headers=auth,
        )
        assert r.status_code == 201, r.text
    c = web.login("mgr1")
    for lang, words in (("en", "newest first"), ("zh-CN", "最新的在前")):
        page = c.get("/lang", params={"to": lang, "next": "/reps/R1"}).text
        log = page.split('id="intervention-log"', 1)[1].split("</table>", 1)[0]
        caption = log.split("<caption>", 1)[1].split("</caption>", 1)[0]
        assert words in caption, (lang, caption)
        assert re.findall(r'<td class="day">(2024-01-\d\d)</td>', log) == [
            "2024-01-09",
            "2024-01-05",
            "2024-01-02",
        ], log


def test_the_intervention_log_says_when_its_risk_was_recorded_and_by_which_model(web):
    """An entry recorded late (a start in an earlier quarter, typed in after this quarter's batch) keeps
    the risk of the moment it was recorded, as documented; the log's column said "Risk then" beside the
    start day, which read as the rep's risk when the intervention started. It now says it is the risk
    when the entry was recorded, and the day and model version of that."""
    auth = {"Authorization": f"Bearer {web.tokens['mgr1']}"}
    r = web.client.post(
        "/api/v1/reps/R1/interventions",
        json={"intervention": "mentoring", "started_on": "2023-11-06"},
        headers=auth,
    )
    assert r.status_code == 201, r.text
    entry = r.json()
    day = entry["recorded_at"][:10]
    c = web.login("mgr1")
    for lang, header, said in (
        ("en", "Risk when recorded", f"on {day}, model {entry['model_version']}"),
        ("zh-CN", "记录时的风险", f"{day}，模型版本 {entry['model_version']}"),
    ):
        page = c.get("/lang", params={"to": lang, "next": "/reps/R1"}).text
        log = page.split('id="intervention-log"', 1)[1].split("</table>", 1)[0]
        assert f'<th scope="col">{header}</th>' in log, (lang, log)
        assert said in log, (lang, log)


def test_the_risk_trend_says_which_model_gave_each_point_when_the_model_changed(web):
    """A champion promoted mid-quarter scores the next batch: the period's trend then joins two models'
    risks, and a step between them may be the model's, not the rep's. The trend's table named no model,
    so the page could not tell; it now has a model version column, and a note when the versions differ."""
    with web.app.state.sessions.begin() as s:
        store.import_scores(s, score_rows(AS_OF_2 + dt.timedelta(days=7), version="2", shift=0.05))
    c = web.login("mgr1")
    for lang, header, note in (
        ("en", "Model version", "from more than one model version (1, 2)"),
        ("zh-CN", "模型版本", "来自多个模型版本（1, 2）"),
    ):
        page = c.get("/lang", params={"to": lang, "next": "/reps/R1"}).text
        trend = page.split('id="trend"', 1)[1].split("</table>", 1)[0]
        assert f'<th scope="col">{header}</th>' in trend, (lang, trend)
        cells = re.findall(r'<tr><th scope="row">(2024-01-\d\d)</th>.*?<td>(\d)</td></tr>', trend)
        assert cells == [("2024-01-08", "1"), ("2024-01-15", "1"), ("2024-01-22", "2")], (lang, trend)
        assert note in page, lang


def test_a_known_rep_without_a_score_says_why_and_keeps_what_was_recorded_for_them(web):
    """A rep whose scores a retention purge deleted (or not scored yet) got 'This rep has no score yet'
    and nothing else: the entries recorded for them, which the API still serves, could not be reached."""
    from serving import store
    from tests.serving.conftest import REPS

    with web.app.state.sessions.begin() as s:
        store.upsert_reps(s, [*REPS, {"rep_id": "R77", "manager_id": "M1", "name": "Seventy-Seven"}])
    c = web.login("hr")
    r = c.post(
        "/api/v1/reps/R77/interventions",
        json={"intervention": "mentoring", "started_on": "2024-01-03", "note": "weekly with Ada"},
        headers={"Authorization": f"Bearer {web.tokens['hr']}"},
    )
    assert r.status_code == 201, r.text
    page = c.get("/reps/R77")
    assert page.status_code == 404
    assert "No score for rep R77" in page.text and "no score yet" not in page.text
    assert "deleted by a retention purge" in page.text
    log = page.text[page.text.index('id="intervention-log"') :]
    assert "2024-01-03" in log and "weekly with Ada" in log, log
    c.get("/lang", params={"to": "zh-CN", "next": "/reps/R77"})
    zh_page = c.get("/reps/R77").text
    assert "销售代表 R77 没有评分" in zh_page and 'id="intervention-log"' in zh_page
    # out of a manager's scope it stays a plain 'not found', naming nothing recorded
    other = web.login("mgr2").get("/reps/R77")
    assert other.status_code == 404 and "weekly with Ada" not in other.text


def test_csv_downloads_from_the_dashboard_open_in_excel_and_read_back_the_same(web, tmp_path):
    """Excel reads a CSV without a byte-order mark in the system's code page (GBK on Chinese Windows): the
    dashboard's downloads, made for people, came out garbled there. They now start with the UTF-8 mark;
    the API's CSVs, for programs, do not, and `read_scores` reads both to the same rows."""
    from models.scoring import read_scores
    from tests.serving.conftest import AS_OF_2, add_finished_job, score_rows

    rows = [{**r, "team": "销售一组"} for r in score_rows(AS_OF_2)]
    job_id = add_finished_job(web.app, rows, folder=tmp_path)
    c = web.login("hr")
    page = c.get(f"/org/jobs/{job_id}/scores", params={"format": "csv"})
    assert page.status_code == 200 and page.content.startswith(b"\xef\xbb\xbfrep_id,"), page.content[:20]
    assert "attachment" in page.headers["content-disposition"]
    bearer = {"Authorization": f"Bearer {web.tokens['hr']}"}
    api = c.get(f"/api/v1/jobs/{job_id}/scores", params={"format": "csv"}, headers=bearer)
    assert api.status_code == 200 and api.content.startswith(b"rep_id,")
    assert page.content[3:] == api.content  # the same file, with the mark
    for name, body in (("page.csv", page.content), ("api.csv", api.content)):
        (tmp_path / name).write_bytes(body)
    pd.testing.assert_frame_equal(read_scores(tmp_path / "page.csv"), read_scores(tmp_path / "api.csv"))
    assert "销售一组" in page.content.decode("utf-8-sig")
    assert c.get("/org/audit.csv").content.startswith(b"\xef\xbb\xbf")
    api_audit = c.get("/api/v1/audit/export", headers=bearer)
    assert api_audit.status_code == 200 and not api_audit.content.startswith(b"\xef\xbb\xbf")
    assert c.get(f"/org/jobs/{job_id}/scores", params={"format": "parquet"}).content[:4] == b"PAR1"


def test_hr_opens_a_jobs_report_from_the_job_list_and_is_told_when_it_cannot_be_made(web, tmp_path):
    """Each finished job offers HR its report (HTML in the page's language, and PDF); a job whose data
    folder is gone says why on the jobs page rather than failing; a manager may not ask."""
    from tests.serving.conftest import add_finished_job

    job_id = add_finished_job(web.app, folder=tmp_path / "moved-away")
    c = web.login("hr")
    page = c.get("/org").text
    assert (
        f'href="/org/jobs/{job_id}/report"' in page and f'href="/org/jobs/{job_id}/report?format=pdf"' in page
    )
    assert 'data-ready="false"' in page and "made when first opened" in page  # not made yet
    answer = c.get(f"/org/jobs/{job_id}/report", follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"].endswith("#jobs")
    shown = c.get(answer.headers["location"]).text
    assert "cannot be made" in shown and "moved-away" in shown and "is gone" in shown
    assert not list((web.app.state.runner.jobs_dir / job_id).glob("report-*"))  # nothing half-made left
    assert c.get(f"/org/jobs/{job_id}/report", params={"format": "docx"}).status_code == 404
    assert web.login("mgr1").get(f"/org/jobs/{job_id}/report").status_code == 403
