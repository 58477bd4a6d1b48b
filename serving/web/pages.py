"""The dashboard's pages. They call the API's own handlers and service functions (scope, store, audit),
so a page can never show more than the API would to the same user, and every read is audited the same way.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import re
import secrets
import time
from collections import defaultdict
from pathlib import Path
from statistics import mean
from typing import Annotated, Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import pandas as pd
from fastapi import APIRouter, Depends, Form, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, StreamingResponse
from fastapi.templating import Jinja2Templates
from markupsafe import Markup
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from starlette.convertors import Convertor, register_url_convertor
from starlette.exceptions import HTTPException

from features.contract import INTERVENTION_IDS
from features.io import latest_event_day, quota_span
from models import i18n as model_i18n
from models.currency import scores_currency
from models.drivers import group_actionable
from repradar.errors import UserError
from serving import audit, i18n, runs, store
from serving.auth import Principal, SessionLimits, end_session, hash_token, resume_session, start_session
from serving.db.engine import commit, write_lock
from serving.db.schema import CurrentScore, Score, User, WebSession
from serving.deps import ModelDep, RequestIdDep, SessionDep, SettingsDep, client_address, request_id_of
from serving.http_errors import ALLOW_KEY, METHODS, SLASHLESS_KEY, ApiError, catch_all, slashless_address
from serving.jobs import JobRefused, newest_as_of
from serving.routers import audit as audit_api
from serving.routers import early_warning as ew_api
from serving.routers import jobs as jobs_api
from serving.routers import models as models_api
from serving.routers import reps as reps_api
from serving.rules import BANDS, resolve_scope
from serving.schemas import InterventionEndIn, InterventionIn, JobIn, PromoteIn
from serving.web import charts

SESSION_COOKIE = "rr_session"
LANG_COOKIE = "rr_lang"
YEAR = 365 * 24 * 3600
TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent.parent / "templates"))


def _local_time(value: Any, tz: dt.tzinfo, seconds: bool = False) -> str:
    """A moment as the tables show it, on the dashboard's clock (REPRADAR_TIMEZONE; their headers name the
    zone): "2026-11-30 13:12". A stored ISO text (the registry's promotion history) is read first; a naive
    time is UTC (as the database keeps it)."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            return value
    if isinstance(value, dt.datetime):
        value = (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).astimezone(tz)
    return value.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


TEMPLATES.env.filters["local_time"] = _local_time


def dashboard_zone(request: Request) -> dt.tzinfo:
    """The dashboard's clock: the zone of REPRADAR_TIMEZONE (UTC by default)."""
    settings = getattr(request.app.state, "settings", None)
    name = getattr(settings, "timezone", "UTC") or "UTC"
    return dt.UTC if name == "UTC" else ZoneInfo(name)


def zone_label(tz: dt.tzinfo, at: dt.datetime | None = None) -> str:
    """How a page names the zone: "UTC", else its offset at that moment ("UTC+08:00"), which reads the same
    in every language (an abbreviation such as CST is ambiguous)."""
    offset = (at or dt.datetime.now(dt.UTC)).astimezone(tz).utcoffset() or dt.timedelta(0)
    if not offset:
        return "UTC"
    minutes = int(offset.total_seconds() // 60)
    sign = "+" if minutes > 0 else "-"
    return f"UTC{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def today_on_the_dashboard(request: Request) -> dt.date:
    """Today on the dashboard's clock (a manager in Shanghai at 07:00 is already in the next UTC day's)."""
    return dt.datetime.now(dashboard_zone(request)).date()


router = APIRouter(include_in_schema=False)

log = logging.getLogger("repradar.serving.web")


# -- sign-in -------------------------------------------------------------------------------------
def lang_of(request: Request) -> str:
    """The signed-in user's language (kept with the user), else the browser's cookie, else the language the
    browser asks for (`Accept-Language`: a zh-CN browser gets Chinese from its first page), else English."""
    return i18n.pick_lang(
        getattr(request.state, "user_lang", None)
        or request.cookies.get(LANG_COOKIE)
        or i18n.from_accept_language(request.headers.get("accept-language"))
    )


def _secure(request: Request, settings) -> bool:
    """The cookies' Secure flag: the setting when given, else whether this request came over HTTPS."""
    return request.url.scheme == "https" if settings.cookie_secure is None else settings.cookie_secure


def _signed_in(request: Request, session, settings) -> Principal | None:
    """The user of this browser's live session (kept alive by this request), else None."""
    secret = request.cookies.get(SESSION_COOKIE)
    return resume_session(session, secret, SessionLimits.of(settings)) if secret else None


def web_principal(request: Request, session: SessionDep, settings: SettingsDep) -> Principal:
    """The user behind the session cookie (a server-side session opened by signing in with a token); else
    off to the sign-in page, saying so when the session has ended (signed out, expired, token revoked)."""
    secret = request.cookies.get(SESSION_COOKIE)
    principal = _signed_in(request, session, settings)
    if principal is None:
        to = "/login?next=" + quote(_here(request), safe="")
        if request.method == "POST":  # what the form carried is not stored: the sign-in page says so
            to += "&lost=1"
        if secret:  # signed in before, but the session ended since: say so, drop the cookie
            raise HTTPException(
                303,
                headers={
                    "Location": to + "&expired=1",
                    "Set-Cookie": f"{SESSION_COOKIE}=; Max-Age=0; Path=/; HttpOnly; SameSite=Strict",
                },
            )
        raise HTTPException(303, headers={"Location": to})
    request.state.user_lang = store.user_lang(session, principal.user_id)
    request.state.session_ends = _session_ends(session, secret or "", SessionLimits.of(settings))
    return principal


def _session_ends(session, secret: str, limits: SessionLimits) -> dt.datetime | None:
    """When this session ends if left idle from now on (UTC): its last use plus the idle limit, or its
    lifetime's end when that comes first. Shown on the pages, so a long entry is not typed in vain."""
    row = session.execute(
        select(WebSession.created_at, WebSession.last_seen_at).where(
            WebSession.secret_hash == hash_token(secret)
        )
    ).first()
    if row is None:
        return None

    def utc(t: dt.datetime) -> dt.datetime:
        return t if t.tzinfo else t.replace(tzinfo=dt.UTC)

    return min(utc(row.last_seen_at) + limits.idle, utc(row.created_at) + limits.lifetime)


WebUser = Annotated[Principal, Depends(web_principal)]


def _here(request: Request) -> str:
    """This page's address, to come back to (language switch, sign-in). A form's POST answers on the
    form's action, which a GET cannot open: the page holding the form (its parent path) instead. A HEAD
    asks for the page itself, as a GET does."""
    if request.method not in ("GET", "HEAD"):
        return request.url.path.rsplit("/", 1)[0] or request.url.path
    q = request.url.query
    return request.url.path + (f"?{q}" if q else "")


# Query parameters by which a page says what a form just did (a job refused and why, a job started). After a
# sign-in they are dropped from the page to go back to: a link from anywhere (another site's link always
# passes through the sign-in, the cookie being SameSite=Strict) must not put its own text on a page.
PAGE_MESSAGES = frozenset({"error", "field", "as_of", "flash", "job"})


# Those of them that carry a refusal's text, written in the language the form was sent in: a language switch
# drops them, or the new language's page said "The job could not start: 2025-01-01 不在数据范围内…".
MESSAGE_TEXTS = frozenset({"error", "field", "as_of"})


def _without_params(path: str, names: frozenset[str]) -> str:
    """`path` without the query parameters `names`."""
    base, sep, query = path.partition("?")
    if not sep:
        return path
    query, hash_, fragment = query.partition("#")
    kept = [p for p in query.split("&") if p and p.split("=", 1)[0] not in names]
    return base + ("?" + "&".join(kept) if kept else "") + hash_ + fragment


def _after_sign_in(path: str) -> str:
    """The page to go to after signing in: `path` without the page-message parameters."""
    return _without_params(path, PAGE_MESSAGES)


def _safe_next(value: str | None) -> str:
    """Only a path on this site: no scheme, no other host (open redirects)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value


def render(
    request: Request, name: str, principal: Principal | None, status: int = 200, **ctx
) -> HTMLResponse:
    lang = lang_of(request)

    def t(key: str, **values: Any) -> str:
        return i18n.t(lang, key, **values)

    ends = getattr(request.state, "session_ends", None) if principal is not None else None
    tz = dashboard_zone(request)
    base = {
        "t": t,
        "lang": lang,
        "langs": i18n.LANGS,
        "user": principal,
        "here": _here(request),
        "path": request.url.path,
        "session_ends": ends.astimezone(tz).strftime("%H:%M") if ends else None,
        "tz": tz,
        "zone": zone_label(tz, ends),
        "page_error": status >= 400,
    }
    return TEMPLATES.TemplateResponse(request, name, {**base, **ctx}, status_code=status)


def _forbidden(request: Request, principal: Principal, roles: tuple[str, ...]) -> HTMLResponse:
    """The 403 page; the attempt is in the audit trail, as the API's refusals are."""
    audit.refusal(request.app.state.sessions, principal, request.url.path, roles, request_id_of(request))
    return render(
        request, "error.html", principal, 403, kind="forbidden", roles=roles_needed(lang_of(request), roles)
    )


def roles_needed(lang: str, roles: tuple[str, ...]) -> str:
    """The 403 page's sentence: "needs the HR role" for one role, "one of these roles: manager or HR"
    for several (a list of one read "one of the roles HR")."""
    names = [i18n.t(lang, f"role.{r}") for r in roles]
    if len(names) == 1:
        return i18n.t(lang, "error.forbidden_one", role=names[0])
    listed = i18n.t(lang, "error.role_sep").join(names[:-1]) + i18n.t(lang, "error.role_last_sep") + names[-1]
    return i18n.t(lang, "error.forbidden", roles=listed)


def _not_found(request: Request, principal: Principal, rep_id: str) -> HTMLResponse:
    return render(request, "error.html", principal, 404, kind="not_found", rep_id=rep_id)


@router.get("/login", response_class=HTMLResponse)
def login_page(
    request: Request,
    next: str | None = None,
    error: str | None = None,
    out: str | None = None,
    expired: str | None = None,
    lost: str | None = None,
):
    return render(
        request,
        "login.html",
        None,
        next=_safe_next(next),
        error=bool(error),
        signed_out=bool(out),
        expired=bool(expired),
        lost=bool(lost),
    )


@router.post("/login")
def login(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    token: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
):
    """Sign in with an API token: a new server-side session, whose secret (not the token) goes in the cookie.
    On success the session this browser held before is ended, not left behind the new cookie's back. An
    address with too many refused sign-ins is turned away (429) before the token is looked at."""
    limit = request.app.state.signin_limit
    address = client_address(request)
    wait = limit.wait_for(address, "dashboard sign-ins", request_id_of(request))
    if wait:
        resp = render(request, "login.html", None, 429, next=_safe_next(next), throttled=math.ceil(wait / 60))
        resp.headers["Retry-After"] = str(wait)
        return resp
    if not token.strip():  # nothing pasted: said as such, not a refused token (nor counted as one)
        return render(request, "login.html", None, 422, next=_safe_next(next), error="empty")
    with write_lock(session.get_bind()):
        started = start_session(session, token.strip(), SessionLimits.of(settings))
        old = request.cookies.get(SESSION_COOKIE)
        if started is not None and old:
            end_session(session, old)
        if started is not None:
            audit.record(
                session,
                started[0],
                "session.start",
                "user",
                started[0].name,
                request_id=request_id_of(request),
            )
        commit(session)
    if started is None:
        limit.fail(address)
        log.warning("dashboard sign-in refused from %s (request %s)", address, request_id_of(request))
        return render(request, "login.html", None, 401, next=_safe_next(next), error=True, signed_out=False)
    principal, secret = started
    secure = _secure(request, settings)
    resp = RedirectResponse(_after_sign_in(_safe_next(next)), 303)
    # No Max-Age: the browser forgets it when closed; the server ends it anyway (idle, lifetime, sign-out).
    resp.set_cookie(SESSION_COOKIE, secret, httponly=True, samesite="strict", secure=secure)
    lang = store.user_lang(session, principal.user_id)
    chosen = request.cookies.get(LANG_COOKIE)
    if lang is None and chosen in i18n.LANGS:
        # A language picked on the sign-in page, by a user who never chose one: keep it with the user.
        store.set_user_lang(session, principal.user_id, chosen)
        commit(session)
    elif lang is not None:
        # The user's own choice wins over this browser's; the cookie follows it for the signed-out pages.
        resp.set_cookie(LANG_COOKIE, lang, max_age=YEAR, samesite="lax", secure=secure)
    return resp


@router.post("/logout")
def logout(request: Request, session: SessionDep, settings: SettingsDep) -> RedirectResponse:
    """Sign out: the session is deleted on the server, so a copy of the cookie stops working too."""
    secret = request.cookies.get(SESSION_COOKIE)
    if secret:
        who = _signed_in(request, session, settings)
        with write_lock(session.get_bind()):
            if end_session(session, secret) and who is not None:
                audit.record(session, who, "session.end", "user", who.name, request_id=request_id_of(request))
            commit(session)
    resp = RedirectResponse("/login?out=1", 303)
    resp.delete_cookie(SESSION_COOKIE, httponly=True, samesite="strict", secure=_secure(request, settings))
    return resp


@router.get("/lang")
def set_lang(
    request: Request, session: SessionDep, settings: SettingsDep, to: str | None = None, next: str = "/"
):
    """Switch the language: kept with the signed-in user (so it follows them to another browser), and
    in a cookie for a year (the sign-in page, signed out). An unknown language is a 400 page; nothing is
    stored then."""
    principal = _signed_in(request, session, settings)
    if principal is not None:
        request.state.user_lang = store.user_lang(session, principal.user_id)
    if to not in i18n.LANGS:
        shown = (to or "")[:40]
        return render(request, "error.html", principal, 400, kind="bad_lang", given=shown)
    if principal is not None:
        store.set_user_lang(session, principal.user_id, to)
        commit(session)
    resp = RedirectResponse(_without_params(_safe_next(next), MESSAGE_TEXTS), 303)
    resp.set_cookie(LANG_COOKIE, to, max_age=YEAR, samesite="lax", secure=_secure(request, settings))
    return resp


def cross_origin_page(scope: dict, sent_from: str) -> Response:
    """The 403 page for a dashboard form sent from another site (serving/middleware.py refuses it before
    any handler runs), in the user's language when their session cookie came along, else the browser's.
    Reads only: a refused request neither keeps a session alive nor ends one."""
    request = Request(scope)
    secret = request.cookies.get(SESSION_COOKIE)
    if secret and len(secret) <= 200:
        try:
            with request.app.state.sessions() as session:
                request.state.user_lang = session.scalar(
                    select(User.lang)
                    .join(WebSession, WebSession.user_id == User.id)
                    .where(WebSession.secret_hash == hash_token(secret))
                )
        except SQLAlchemyError:  # the refusal stands without the database; only the language falls back
            pass
    return render(request, "error.html", None, 403, kind="cross_origin", origin=sent_from[:100])


@router.get("/")
def home(request: Request, principal: WebUser):
    if {"manager", "hr"} & principal.roles:
        return RedirectResponse("/team" if "manager" in principal.roles else "/org", 303)
    if {"data_scientist", "admin"} & principal.roles:  # admin: the models page is the one they may read
        return RedirectResponse("/models", 303)
    return render(request, "error.html", principal, 200, kind="admin")


# -- manager: early-warning list -----------------------------------------------------------------
@router.get("/team", response_class=HTMLResponse)
def team(
    request: Request,
    principal: WebUser,
    session: SessionDep,
    settings: SettingsDep,
    model: ModelDep,
    rid: RequestIdDep,
    band: Annotated[list[str] | None, Query()] = None,
):
    if not {"manager", "hr"} & principal.roles:
        return _forbidden(request, principal, ("manager", "hr"))
    bands = [b for b in (band or []) if b in BANDS] or None
    out = ew_api.early_warning(
        request,
        principal,
        session,
        settings,
        model,
        rid,
        band=bands,
        sort="risk",
        order="desc",
        limit=None,
        manager_id=None,
    )
    lang = lang_of(request)
    reasons = _top_reasons(session, [i.rep_id for i in out.items])
    rows = [
        {
            "item": i,
            "bar": charts.risk_bar(i.risk, i.risk_band),
            "reason": _driver_label(lang, reasons[i.rep_id][0]) if i.rep_id in reasons else None,
            "context": reasons[i.rep_id][1] if i.rep_id in reasons else False,
            "risk": model_i18n.format_risk(i.risk),
            "change": _points(lang_of(request), i.risk_change),
        }
        for i in out.items
    ]
    return render(request, "team.html", principal, out=out, rows=rows, bands=BANDS, chosen=bands or [])


def _top_reasons(session, rep_ids: list[str]) -> dict[str, tuple[dict, bool]]:
    """Each listed rep's strongest reason a manager can act on, and whether it is context: the first
    actionable driver group of their current score (as on the rep page), else their first risk-raising
    driver of an actionable group. The strongest reason overall is often context (attainment, pace,
    tenure), which says nothing to act on; a rep with only context reasons gets the top one, marked so
    (never another group's name: the strongest single feature's group can be missing from the groups)."""
    if not rep_ids:
        return {}
    rows = session.execute(
        select(Score.rep_id, Score.drivers, Score.extra)
        .join(CurrentScore, CurrentScore.score_id == Score.id)
        .where(CurrentScore.rep_id.in_(rep_ids))
    )
    out = {}
    for rep_id, drivers, extra in rows:
        groups = (extra or {}).get("driver_groups") if isinstance(extra, dict) else None
        if isinstance(groups, list) and groups:
            ranked = [(g, g.get("actionable") is not True) for g in groups if isinstance(g, dict)]
        else:
            ranked = [
                (d, not group_actionable(str(d.get("group") or "")))
                for d in drivers or []
                if isinstance(d, dict) and float(d.get("contribution") or 0) > 0
            ]
        found = next((r for r in ranked if not r[1]), ranked[0] if ranked else None)
        if found is not None:
            out[rep_id] = found
    return out


def _points(lang: str, change: float | None) -> str:
    """A change of risk in percentage points ("+3 pts"); "0" when it rounds to nothing."""
    if change is None or math.isnan(change):
        return "—"
    pts = round(float(change) * 100)
    if not pts:
        return "0"
    return i18n.t(lang, "team.point_one" if abs(pts) == 1 else "team.points", pts=f"{pts:+d}")


# -- one rep -------------------------------------------------------------------------------------
def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.2f}"
    return "—" if v is None else str(v)


def _driver_label(lang: str, d: dict) -> str:
    """A driver group's name: the score's own title in the page's language, else the catalog's, so that the
    list and the rep page name a group alike (in Chinese they named one group two ways)."""
    group = d.get("group") or ""
    own = d.get(f"title_{model_i18n.SUFFIX.get(lang, 'en')}")
    return own or i18n.t(lang, f"group.{group}", default=d.get("title_en") or group or d.get("feature", "?"))


def _in_lang(d: dict, lang: str, stem: str) -> str | None:
    """A model-provided text in the page's language (`text_en`/`text_zh`, `reason_en`/...), else English."""
    return d.get(f"{stem}_{model_i18n.SUFFIX.get(lang, 'en')}") or d.get(f"{stem}_en")


def _driver_sentence(lang: str, d: dict, currency: str) -> str:
    """A driver in words: the model's own sentence when the score carries one, else label, value and peers
    (amounts in the score's `currency`)."""
    text = _in_lang(d, lang, "text")
    if text:
        return text
    name = str(d.get("feature", "?"))
    text = i18n.t(
        lang,
        "rep.driver_sentence",
        feature=model_i18n.feature_label(name, lang),
        value=_value(lang, name, d.get("value"), currency),
    )
    peer = d.get("peer", d.get("peer_value"))
    if peer is not None:
        text += " " + i18n.t(lang, "rep.driver_peer", peer=_value(lang, name, peer, currency))
    return text


def _value(lang: str, feature: str, v: Any, currency: str) -> str:
    """A feature's value with its registry unit (18%, $40k, 3.5 a week)."""
    if not isinstance(v, (int, float)) or isinstance(v, bool):
        return _fmt(v)
    return model_i18n.format_value(
        v, model_i18n.feature_unit(feature), lang, currency=currency, feature=feature
    )


def _currency(details: dict) -> str:
    """The ISO code a score's amounts are in (models.currency.scores_currency)."""
    return scores_currency(details.get("currency"))


def _driver_groups(lang: str, details: dict, drivers: list[dict]) -> list[dict]:
    """What raises the risk, by driver group, largest first: title, sentence and whether it is context.

    The scores' `driver_groups` (models/drivers.py) when present; otherwise one entry per driver.
    """
    groups = details.get("driver_groups")
    currency = _currency(details)
    if isinstance(groups, list) and groups:
        return [
            {
                "title": _driver_label(lang, g),
                "text": _without_context_mark(
                    _in_lang(g, lang, "text") or _driver_sentence(lang, g, currency)
                ),
                "context": g.get("actionable") is False,
            }
            for g in groups
            if isinstance(g, dict)
        ]
    return [
        {
            "title": _driver_label(lang, d),
            "text": _driver_sentence(lang, d, currency),
            "context": not group_actionable(str(d.get("group") or "")),
        }
        for d in drivers
        if float(d.get("contribution") or 0) > 0
    ]


def _without_context_mark(text: str) -> str:
    """A context group's sentence without the model's own "(context, not an intervention)": the page marks
    the group beside its title already, and said it twice. Scores written before the Chinese texts took
    Chinese punctuation carry the mark with English marks ("(仅作背景参考,不作为干预依据)"): read as well."""
    for mark in (model_i18n.text(each, "driver.context", text="") for each in model_i18n.LANGUAGES):
        for each in (mark, mark.translate(_ASCII_MARKS)):
            if each.strip() and text.endswith(each):
                return text.removesuffix(each)
    return text


_ASCII_MARKS = str.maketrans({"（": "(", "）": ")", "，": ",", "：": ":", "；": ";"})


def _suggestions(lang: str, ids: list[str], details: dict) -> list[dict]:
    """The suggested interventions, best first, each with the playbook's reason for it when scored with one."""
    reasons = {
        r.get("id"): _in_lang(r, lang, "reason")
        for r in details.get("intervention_reasons") or []
        if isinstance(r, dict)
    }
    return [{"id": i, "title": i18n.t(lang, f"intervention.{i}"), "reason": reasons.get(i)} for i in ids]


def _notes(lang: str, details: dict) -> list[str]:
    """The model's notes on this row (peers from the whole organisation, no engagement data ...)."""
    return [
        _in_lang(n, lang, "text") or str(n.get("code"))
        for n in details.get("notes") or []
        if isinstance(n, dict) and n.get("code") != "insufficient_data"
    ]


def _not_enough_data(details: dict, drivers: list) -> bool:
    """The model's `insufficient_data` flag, or no driver at all to explain the risk."""
    return bool(details.get("insufficient_data")) or not drivers


def _insufficient_text(lang: str, details: dict) -> str:
    for n in details.get("notes") or []:
        if isinstance(n, dict) and n.get("code") == "insufficient_data" and _in_lang(n, lang, "text"):
            return _in_lang(n, lang, "text")
    return i18n.t(lang, "rep.not_enough_data")


def _quota_split(lang: str, details: dict) -> str | None:
    share = details.get("quota_share")
    if not isinstance(share, (int, float)) or isinstance(share, bool) or math.isnan(share):
        return None
    quota = round(float(share) * 100)
    return i18n.t(lang, "rep.quota_split_text", quota=quota, rep=100 - quota)


def _earlier_periods(lang: str, items: list, current_start: dt.date) -> list[dict]:
    """The rep's earlier quota periods, newest first, each with the last risk the model gave in it (its
    newest as-of day) and how the period ended: was the rep at risk before, and was the risk right."""
    last: dict[dt.date, Any] = {}
    for h in items:  # newest first; for one day scored twice (a new model), the newer score
        if h.period_start < current_start and h.period_start not in last:
            last[h.period_start] = h
    return [
        {
            "start": h.period_start,
            "end": h.period_end,
            "as_of": h.as_of,
            "risk": model_i18n.format_risk(h.risk),
            "band": h.risk_band,
            "version": h.model_version,
            **_outcome_text(lang, h.outcome),
        }
        for h in sorted(last.values(), key=lambda h: h.period_start, reverse=True)
    ]


def _outcome_text(lang: str, outcome) -> dict:
    """How a period ended, in words ("Missed target (72% of quota)"), with the day it was known on."""
    if outcome is None:
        return {"outcome": i18n.t(lang, "rep.outcome_pending"), "missed": None, "known_on": None}
    key = "rep.outcome_missed" if outcome.missed else "rep.outcome_reached"
    text = (
        i18n.t(lang, key, attainment=model_i18n.format_risk(outcome.attainment))
        if outcome.attainment is not None
        else i18n.t(lang, key + "_only")
    )
    known = i18n.t(lang, "rep.outcome_known_on", day=outcome.known_on.isoformat())
    return {"outcome": text, "missed": outcome.missed, "known_on": known}


@router.get("/reps/{rep_id}", response_class=HTMLResponse)
def rep_page(
    request: Request,
    rep_id: str,
    principal: WebUser,
    session: SessionDep,
    rid: RequestIdDep,
    recorded: int = 0,
    ended: int = 0,
):
    return _rep(request, rep_id, principal, session, rid, recorded=recorded, ended=ended)


def _rep(
    request, rep_id, principal, session, rid, *, recorded=0, ended=0, errors=None, status=200, form=None
):
    if not {"manager", "hr"} & principal.roles:
        return _forbidden(request, principal, ("manager", "hr"))
    if not (0 < len(rep_id) <= 100):
        return _not_found(request, principal, rep_id[:100])
    try:
        # The API's handlers: the same scope rule (out of scope = not found) and the same audit events.
        rep = reps_api.get_rep(request, rep_id, principal, session, rid, as_of=None, version=None)
        log = reps_api.list_interventions(request, rep_id, principal, session, rid)
        history = reps_api.rep_history(request, rep_id, principal, session, rid, limit=500)
    except ApiError as exc:
        if exc.code == "no_score":
            # the rep is known and visible; what was recorded for them stays readable (e.g. after a purge
            # of their scores), as through the API
            log = reps_api.list_interventions(request, rep_id, principal, session, rid)
            return render(
                request, "error.html", principal, 404, kind="no_score", rep_id=rep_id, log=log.items
            )
        return _not_found(request, principal, rep_id)
    lang = lang_of(request)
    drivers = [d.model_dump() if hasattr(d, "model_dump") else dict(d) for d in rep.score.drivers or []]
    details = dict(rep.details or {})
    trend_svg = charts.trend(
        [(p.as_of.isoformat(), p.risk, p.risk_band) for p in rep.trend],
        i18n.t(lang, "rep.trend"),
        colon=i18n.t(lang, "punct.colon"),
    )
    water_items = [
        (model_i18n.feature_label(str(d.get("feature", "?")), lang), float(d.get("contribution") or 0))
        for d in drivers
    ]
    water = charts.waterfall(water_items, i18n.t(lang, "rep.drivers_chart"))

    def col(name: str) -> str:
        return i18n.t(lang, f"chart.col_{name}")

    trend_table = charts.data_table(
        i18n.t(lang, "chart.data"),
        i18n.t(lang, "rep.trend"),
        [col("day"), col("risk"), col("band"), i18n.t(lang, "rep.earlier_col_version")],
        [
            (
                p.as_of.isoformat(),
                model_i18n.format_risk(p.risk),
                i18n.t(lang, f"band.{p.risk_band}"),
                p.model_version,
            )
            for p in rep.trend
        ],
    )
    # a champion promoted mid-period: a step between two versions' points may be the model's, not the rep's
    versions = sorted({str(p.model_version) for p in rep.trend}, key=lambda v: (len(v), v))
    trend_models = (
        i18n.t(lang, "rep.trend_models", versions=", ".join(versions)) if len(versions) > 1 else None
    )
    # the full feature names (the chart may shorten a long one)
    water_table = charts.data_table(
        i18n.t(lang, "chart.data"),
        i18n.t(lang, "rep.drivers_chart"),
        [col("feature"), col("contribution")],
        [(name, f"{c:+.2f}") for name, c in water_items],
    )
    recourse = details.get("recourse")
    return render(
        request,
        "rep.html",
        principal,
        status,
        rep=rep,
        risk=model_i18n.format_risk(rep.score.risk),
        trend_svg=trend_svg,
        trend_table=trend_table,
        trend_models=trend_models,
        water=water,
        water_table=water_table,
        groups=_driver_groups(lang, details, drivers),
        suggestions=_suggestions(lang, list(rep.score.interventions or []), details),
        notes=_notes(lang, details),
        recourse=_in_lang(recourse, lang, "text") if isinstance(recourse, dict) else recourse,
        quota_split=_quota_split(lang, details),
        not_enough=_not_enough_data(details, drivers),
        not_enough_text=_insufficient_text(lang, details),
        log=log.items,
        earlier=_earlier_periods(lang, history.items, rep.score.period_start),
        catalog=INTERVENTION_IDS,
        today=today_on_the_dashboard(request).isoformat(),
        # the confirmation only for an entry that is really in this rep's log (not any ?recorded= link)
        flash=(
            "rep.recorded"
            if recorded and any(e.id == recorded for e in log.items)
            else "rep.ended"
            if ended and any(e.id == ended and e.ended_on for e in log.items)
            else None
        ),
        errors=errors or {},
        form=form or {},
        # the record form's own Idempotency-Key: its double submit, however late, records one entry
        form_key=secrets.token_urlsafe(18),
        bar=charts.risk_bar(rep.score.risk, rep.score.risk_band, 240, 16),
    )


@router.post("/reps/{rep_id}/interventions")
def record_intervention(
    request: Request,
    rep_id: str,
    principal: WebUser,
    session: SessionDep,
    model: ModelDep,
    rid: RequestIdDep,
    intervention: Annotated[str, Form()] = "",
    started_on: Annotated[str, Form()] = "",
    ended_on: Annotated[str, Form()] = "",
    note: Annotated[str, Form()] = "",
    idempotency_key: Annotated[str, Form()] = "",
):
    """Record an intervention from the rep page's form: the API's POST, with the form's own key (a hidden
    field, new at each render) as its Idempotency-Key, so that the same form sent twice (a double click,
    a click again after a slow answer) records one entry, however far apart; a form without one (a page
    rendered before the upgrade) falls back to the API's 60 s double-submit rule."""
    if not {"manager", "hr"} & principal.roles:
        return _forbidden(request, principal, ("manager", "hr"))
    form = {"intervention": intervention, "started_on": started_on, "ended_on": ended_on, "note": note}
    try:
        body = InterventionIn(
            intervention=intervention, started_on=started_on, ended_on=ended_on or None, note=note or None
        )
        entry = reps_api.add_intervention(
            request, rep_id, body, principal, session, model, rid, Response(), idempotency_key or None
        )
    except (ValidationError, RequestValidationError) as exc:
        found = list(exc.errors())
        if any(e.get("type") == "idempotency_key" for e in found):
            # this form was sent before with other values (edited after an answer that never came): the
            # page says so, with a new form (a new key) to send once the log has been checked
            errors = {"": i18n.t(lang_of(request), "form.err_resent")}
        else:
            errors = field_errors(lang_of(request), found)
        return _rep(request, rep_id, principal, session, rid, errors=errors, status=422, form=form)
    except ApiError:
        return _not_found(request, principal, rep_id)
    # a replay of the form's key is the first answer again, as the API's bytes
    entry_id = json.loads(entry.body)["id"] if isinstance(entry, Response) else entry.id
    return RedirectResponse(f"/reps/{quote(rep_id, safe='')}?recorded={entry_id}", 303)


@router.post("/reps/{rep_id}/interventions/{entry}/end")
def end_intervention(
    request: Request,
    rep_id: str,
    entry: str,
    principal: WebUser,
    session: SessionDep,
    rid: RequestIdDep,
    ended_on: Annotated[str, Form()] = "",
):
    """End an ongoing intervention from the rep's log (the API's PATCH, with its checks and audit)."""
    if not {"manager", "hr"} & principal.roles:
        return _forbidden(request, principal, ("manager", "hr"))
    if not (entry.isascii() and entry.isdigit() and 0 < len(entry) <= 18):  # not an entry's id: no such page
        return _not_found(request, principal, rep_id[:100])
    entry_id = int(entry)
    field = f"end-{entry_id}"
    try:
        body = InterventionEndIn(ended_on=ended_on)
        reps_api.end_intervention(request, rep_id, entry_id, body, principal, session, rid)
    except (ValidationError, RequestValidationError) as exc:
        found = field_errors(lang_of(request), list(exc.errors()))
        text = next(iter(found.values()), "")
        return _rep(
            request, rep_id, principal, session, rid, errors={field: text}, status=422, form={field: ended_on}
        )
    except ApiError:
        return _not_found(request, principal, rep_id)
    return RedirectResponse(f"/reps/{quote(rep_id, safe='')}?ended={entry_id}#log", 303)


# The rules of the API's schemas and `serving.rules` whose (English) message names the field or the day:
# (pattern in the message, the field it is about, the message key saying it in the page's language).
_RULES = (
    (re.compile(r"ended_on must not be before started_on"), "ended_on", "form.err_end_before_start"),
    (re.compile(r"before the intervention started \((?P<date>[0-9-]+)\)"), None, "form.err_end_before"),
    (re.compile(r"^ended_on .* days ahead \(latest (?P<date>[0-9-]+)\)"), "ended_on", "form.err_end_too_far"),
    (re.compile(r"force needs a reason"), "reason", "form.err_force_reason"),
    (re.compile(r"before the rep was hired \((?P<date>[0-9-]+)\)"), None, "form.err_before_hire"),
    (re.compile(r"after the rep left \((?P<date>[0-9-]+)\)"), None, "form.err_after_leaving"),
    (re.compile(r"days ago \(earliest (?P<date>[0-9-]+)\)"), None, "form.err_too_old"),
    (re.compile(r"days ahead \(latest (?P<date>[0-9-]+)\)"), None, "form.err_too_far"),
    (re.compile(r"control character|direction"), None, "form.err_text"),
)
_DATE_FIELDS = ("started_on", "ended_on", "as_of")


def field_label(lang: str, field: str) -> str:
    return i18n.t(lang, f"form.field_{field}", default=field)


def field_error(lang: str, e: dict) -> tuple[str, str]:
    """One refused form field as a person reads it, in the page's language: (field, "Label: the rule").
    Never pydantic's English nor an id list (an unknown intervention says to pick one from the list)."""
    fields = [x for x in e.get("loc", ()) if isinstance(x, str) and x != "body"]
    field = fields[-1] if fields else ""
    kind = str(e.get("type", ""))
    msg = str(e.get("msg", ""))
    ctx = e.get("ctx") or {}
    key, values = "form.err_invalid", {}
    for pattern, about, rule in _RULES:
        if m := pattern.search(msg):
            field, key, values = about or field, rule, m.groupdict()
            break
    else:
        empty_day = field in _DATE_FIELDS and e.get("input") == ""  # a cleared date field: required
        if kind == "missing" or empty_day or (kind.startswith("string_too_short") and field != "note"):
            key = "form.err_missing"
        elif field == "intervention":
            key = "form.err_intervention"
        elif field in _DATE_FIELDS:
            key = "form.err_date"
        elif kind in ("too_long", "string_too_long"):
            key, values = "form.err_too_long", {"max": ctx.get("max_length", "?")}
    label = field_label(lang, field) if field else ""
    text = i18n.t(lang, key, **values)
    return field, i18n.t(lang, "form.field_problem", field=label, problem=text) if label else text


def field_errors(lang: str, errors: list[dict]) -> dict[str, str]:
    """{field: message} for a refused form, one message per field (the first), in the form's order."""
    out: dict[str, str] = {}
    for e in errors:
        field, text = field_error(lang, e)
        out.setdefault(field, text)
    return out


# -- HR: organisation, jobs, audit ---------------------------------------------------------------
def _groups(rows, key) -> list[dict]:
    """The rows by group (`key`; "—" without one): highest mean risk first, equal means by name."""
    by: dict[str, list] = defaultdict(list)
    for r in rows:
        by[key(r) or "—"].append(r)
    out = []
    for name, rs in by.items():
        high = sum(r.risk_band == "high" for r in rs)
        out.append(
            {
                "name": name,
                "n": len(rs),
                "mean": mean(r.risk for r in rs),
                "high": high,
                "share": high / len(rs),
            }
        )
    return sorted(out, key=lambda g: (-g["mean"], g["name"]))  # ties by name, not the database's order


def manager_suggestions(
    rows, drivers: dict[int, list], lang: str, *, groups: dict[int, list | None] | None = None
) -> list[tuple[str, str]]:
    """(intervention, reason) per manager-level suggestion: `models.team`'s rules, as in HR's report.

    `groups` are the scores' `driver_groups` by score id: a rep's strongest actionable reason is the
    first actionable group of those (as the report, the list and the rep page rank them); the drivers
    are only the fallback for scores without groups, since the group of the first actionable feature
    can differ and would suggest team building to another manager than the report does."""
    from models.team import team_suggestions

    groups = groups or {}
    frame = pd.DataFrame(
        {
            "manager_id": [r.manager_id for r in rows],
            "rep_id": [r.rep_id for r in rows],
            "as_of": [r.as_of for r in rows],
            "risk_band": [r.risk_band for r in rows],
            "drivers": [drivers.get(r.score_id) or [] for r in rows],
            "driver_groups": [groups.get(r.score_id) or None for r in rows],
        }
    )
    out = team_suggestions(frame)
    reason = "reason_zh" if lang == "zh-CN" else "reason_en"
    return [
        (kind, i18n.t(lang, "org.suggest_for", manager=mgr, reason=text))
        for kind, mgr, text in zip(out["suggestion"], out["manager_id"], out[reason], strict=True)
    ]


@router.get("/org", response_class=HTMLResponse)
def org(
    request: Request,
    principal: WebUser,
    session: SessionDep,
    rid: RequestIdDep,
    model: ModelDep,
    settings: SettingsDep,
):
    if "hr" not in principal.roles:
        return _forbidden(request, principal, ("hr",))
    lang = lang_of(request)
    chart = request.app.state.charts.get(session)
    rows = store.current_rows(session, resolve_scope(principal.roles, principal.manager_id, chart))
    # Only the drivers, decoded for the suggestions; aggregates name no rep.
    expl = store.explanations(session, [r.score_id for r in rows])
    drivers = {k: v[0] for k, v in expl.items()}
    groups = store.driver_groups(session, [r.score_id for r in rows])
    regions = sorted({r.region or "—" for r in rows})
    segments = sorted({r.segment or "—" for r in rows})
    cells: dict[tuple[str, str], list[float]] = defaultdict(list)
    for r in rows:
        cells[(r.region or "—", r.segment or "—")].append(r.risk)
    means = {k: (mean(v), len(v)) for k, v in cells.items()}
    heat = charts.heatmap(
        regions,
        segments,
        means,
        i18n.t(lang, "org.heatmap"),
        cell_title=i18n.t(lang, "org.heatmap_cell"),
        cell_title_one=i18n.t(lang, "org.heatmap_cell_one"),
    )
    heat_table = charts.data_table(
        i18n.t(lang, "chart.data"),
        i18n.t(lang, "org.heatmap"),
        [i18n.t(lang, f"chart.col_{c}") for c in ("region", "segment", "mean", "reps")],
        [
            (r, c, f"{means[(r, c)][0] * 100:.0f}%", means[(r, c)][1])
            for r in regions
            for c in segments
            if (r, c) in means
        ],
    )
    audit.record(
        session,
        principal,
        "org.read",
        "org",
        None,
        model_version=rows[0].model_version if rows else None,
        detail={"reps": len(rows)},
        request_id=rid,
    )
    commit(session)
    jobs, unfinished = _jobs(request, session)
    events, total = _audit_tail(session)
    span = quota_span(settings.data_dir) if settings.data_dir else None
    latest = latest_event_day(settings.data_dir) if span else None
    # the data's newest day, which the API takes when no day is given
    as_of_max = (newest_as_of(settings.data_dir) or span[1]) if span else None
    return render(
        request,
        "org.html",
        principal,
        as_of=rows[0].as_of if rows else None,
        tables=[
            ("org.by_manager", _groups(rows, lambda r: r.manager_id)),
            ("org.by_team", _groups(rows, lambda r: r.team)),
            ("org.by_region", _groups(rows, lambda r: r.region)),
            ("org.by_segment", _groups(rows, lambda r: r.segment)),
        ],
        heat=heat,
        heat_table=heat_table,
        empty=not rows,
        suggestions=manager_suggestions(rows, drivers, lang, groups=groups),
        jobs=jobs,
        unfinished=unfinished,
        # a new address each time: a link to the page's own address (same fragment) only scrolls
        refresh_mark=time.time_ns(),
        events=events,
        total=total,
        flash=request.query_params.get("flash"),
        flash_id=request.query_params.get("job"),
        # the newest batch's day; before the first batch no guess (today is rarely inside an export)
        default_as_of=rows[0].as_of.isoformat() if rows else "",
        # the browser keeps the day inside the data's quota periods (the API refuses others anyway)
        as_of_span=span,
        # ... and no later than the day after the export's latest event: a later day sees nothing newer, so
        # every risk rises (the API still takes it, with that note, for a caller who means it)
        as_of_max=as_of_max,
        data_latest=latest,
        job_error=request.query_params.get("error"),
        job_error_field=request.query_params.get("field") == "as_of",
        typed_as_of=request.query_params.get("as_of", "")[:40],
        page_error=bool(request.query_params.get("error")),
    )


def _jobs(request, session):
    out = jobs_api.list_jobs(request, None, session, limit=20)  # type: ignore[arg-type]
    return out.items, any(j.status in ("queued", "running") for j in out.items)


def _audit_tail(session, n: int = 30):
    _, total = audit.list_events(session, audit.AuditFilter(), 1, 0)
    rows, total = audit.list_events(session, audit.AuditFilter(), n, max(0, total - n))
    return list(reversed(rows)), total


@router.post("/org/jobs")
def start_job(
    request: Request,
    principal: WebUser,
    session: SessionDep,
    model: ModelDep,
    rid: RequestIdDep,
    as_of: Annotated[str, Form()] = "",
):
    if "hr" not in principal.roles:
        return _forbidden(request, principal, ("hr",))
    answer = Response(status_code=201)  # the API sets 200 when it reuses a job
    try:
        job = jobs_api.create_job(request, answer, JobIn(as_of=as_of), principal, session, model, rid)
    except ValidationError as exc:
        # said beside the field; the day typed comes back in the field (a redirect, so no form re-post)
        _, detail = field_error(lang_of(request), exc.errors()[0])
        typed = quote(as_of[:40], safe="")
        return RedirectResponse(f"/org?error={quote(detail)}&field=as_of&as_of={typed}#jobs", 303)
    except JobRefused as exc:  # said in the page's language; the API keeps the English text
        key = f"jobs.refused.{exc.code}"
        lang = lang_of(request)
        detail = i18n.t(lang, key, **exc.params) if i18n.has(lang, key) else str(exc)
        return RedirectResponse("/org?error=" + quote(detail) + "#jobs", 303)
    except (ApiError, UserError) as exc:
        return RedirectResponse("/org?error=" + quote(getattr(exc, "detail", str(exc))) + "#jobs", 303)
    # 200 from the API: the same job (as-of day and model) exists already and is reused
    flash = "reused" if answer.status_code == 200 else "started"
    return RedirectResponse(f"/org?flash={flash}&job={job.id}#jobs", 303)


UTF8_BOM = b"\xef\xbb\xbf"


def for_spreadsheets(answer: Response) -> Response:
    """A CSV a person downloads from the dashboard, with a UTF-8 byte-order mark first: Excel reads a CSV
    without one in the system's code page (GBK on Chinese Windows), so Chinese names and reasons came out
    garbled. pandas, pyarrow and so `repradar report` skip the mark; the API's CSVs, for programs, have none."""
    if isinstance(answer, FileResponse):
        path = Path(answer.path)

        def chunks():
            yield UTF8_BOM
            with path.open("rb") as f:
                while chunk := f.read(1 << 16):
                    yield chunk

        disposition = answer.headers.get("content-disposition")
        return StreamingResponse(
            chunks(),
            media_type=answer.media_type,
            headers={"content-disposition": disposition} if disposition else None,
        )
    if isinstance(answer, StreamingResponse) and str(answer.media_type or "").startswith("text/csv"):
        body = answer.body_iterator

        async def with_mark():
            yield UTF8_BOM
            async for chunk in body:
                yield chunk

        answer.body_iterator = with_mark()
    return answer


@router.get("/org/jobs/{job_id}/scores")
def download_job(
    request: Request,
    job_id: str,
    principal: WebUser,
    session: SessionDep,
    rid: RequestIdDep,
    format: str = "csv",
):
    def answer():
        out = jobs_api.download(request, job_id, principal, session, rid, format=format)  # type: ignore[arg-type]
        return for_spreadsheets(out) if format == "csv" and request.method != "HEAD" else out

    return _job_file_page(request, principal, job_id, format in ("csv", "parquet"), answer)


def _job_file_page(request, principal, job_id: str, known_format: bool, answer):
    """A job's file for HR through the API's handler (`answer()`); a mistyped address is the 404 page and
    the API's refusal (not finished, purged, cannot be made) is said on the jobs list."""
    if "hr" not in principal.roles:
        return _forbidden(request, principal, ("hr",))
    if len(job_id) != 32 or any(c not in "0123456789abcdef" for c in job_id) or not known_format:
        return render(request, "error.html", principal, 404, kind="not_found", rep_id=job_id[:40])
    try:
        return answer()
    except ApiError as exc:
        return RedirectResponse("/org?error=" + quote(exc.detail) + "#jobs", 303)


@router.get("/org/jobs/{job_id}/report")
def job_report_page(
    request: Request,
    job_id: str,
    principal: WebUser,
    session: SessionDep,
    rid: RequestIdDep,
    format: str = "html",
):
    """The job's report in the page's language (the API's handler: same checks, same audit event)."""
    return _job_file_page(
        request,
        principal,
        job_id,
        format in ("html", "pdf"),
        lambda: jobs_api.report(
            request, job_id, principal, session, rid, lang=lang_of(request), format=format
        ),  # type: ignore[arg-type]
    )


@router.get("/org/audit.csv")
def audit_csv(request: Request, principal: WebUser, session: SessionDep, rid: RequestIdDep):
    if "hr" not in principal.roles:
        return _forbidden(request, principal, ("hr",))
    return for_spreadsheets(audit_api.export_audit(request, principal, session, rid))


# -- data scientist: models ----------------------------------------------------------------------
@router.get("/models", response_class=HTMLResponse)
def models_page(
    request: Request, principal: WebUser, settings: SettingsDep, model: ModelDep, version: str | None = None
):
    return _models(request, principal, settings, model, show=version)


def _series_label(lang: str, name: str) -> str:
    return i18n.t(lang, f"models.series_{name}", default=name)


def _series_order(names) -> list[str]:
    """The model first, then the baselines (and the oracle) by name."""
    return sorted(names, key=lambda n: (n != "model", n))


def lead_chart(lead: dict | None, measure: str, lang: str):
    """AUC or Brier by week of the period, one line per model (the model and its baselines)."""
    data = (lead or {}).get(measure)
    if not data:
        return None
    weeks = sorted({w for pts in data.values() for w, _ in pts})
    values = [v for pts in data.values() for _, v in pts]
    if measure == "auc":
        y_range = (min(0.4, math.floor(min(values) * 10) / 10), 1.0)
    else:
        y_range = (0.0, max(0.05, math.ceil(max(values) * 1.1 * 20) / 20))
    series = [
        (
            name,
            _series_label(lang, name),
            [(w, v, i18n.t(lang, "models.point_week", week=w, value=f"{v:.3f}")) for w, v in data[name]],
        )
        for name in _series_order(data)
    ]
    step = max(1, math.ceil(len(weeks) / 13))
    title = i18n.t(lang, f"models.lead_{measure}")
    table = charts.data_table(
        i18n.t(lang, "chart.data"),
        title,
        [i18n.t(lang, f"chart.col_{c}") for c in ("series", "week", "value")],
        [(_series_label(lang, name), w, f"{v:.3f}") for name in _series_order(data) for w, v in data[name]],
    )
    return (
        _boxed(title)
        + charts.lines(
            series,
            i18n.t(lang, f"models.lead_{measure}"),
            x_label=i18n.t(lang, "models.week"),
            y_label=measure.upper() if measure == "auc" else "Brier",
            x_range=(weeks[0], weeks[-1]),
            y_range=y_range,
            x_ticks=weeks[::step],
            colon=i18n.t(lang, "punct.colon"),
        )
        + Markup("</div>")
        + table
    )


def calibration_chart(bins: dict | None, lang: str):
    """Observed miss rate against mean predicted risk per risk bin, one line per model, and the diagonal."""
    if not bins:
        return None
    series = [
        (
            name,
            _series_label(lang, name),
            [
                (p, o, i18n.t(lang, "models.point_bin", predicted=f"{p:.2f}", observed=f"{o:.2f}", n=n))
                for p, o, n in bins[name]
            ],
        )
        for name in _series_order(bins)
    ]
    title = i18n.t(lang, "models.calibration")
    table = charts.data_table(
        i18n.t(lang, "chart.data"),
        title,
        [i18n.t(lang, f"chart.col_{c}") for c in ("series", "predicted", "observed", "rows")],
        [
            (_series_label(lang, name), f"{p:.2f}", f"{o:.2f}", n)
            for name in _series_order(bins)
            for p, o, n in bins[name]
        ],
    )
    return (
        _boxed(title)
        + charts.lines(
            series,
            title,
            x_label=i18n.t(lang, "models.predicted"),
            y_label=i18n.t(lang, "models.observed"),
            x_range=(0.0, 1.0),
            y_range=(0.0, 1.0),
            diagonal=i18n.t(lang, "models.perfect"),
            width=380,
            height=400,
            colon=i18n.t(lang, "punct.colon"),
        )
        + Markup("</div>")
        + table
    )


def _boxed(label: str) -> Markup:
    """The opening of a chart's box: it scrolls sideways on a narrow screen, so the keyboard reaches it."""
    return Markup('<div class="scroll chart-box" role="region" tabindex="0" aria-label="{}">').format(label)


def _shown_version(out, wanted: str | None):
    """The version whose curves the page draws: the one asked for, else the champion, else the newest."""
    by = {v.version: v for v in out.versions}
    for v in (wanted, out.champion):
        if v in by:
            return by[v]
    return out.versions[0] if out.versions else None


def _models(
    request,
    principal,
    settings,
    model,
    *,
    result=None,
    error=None,
    status=200,
    show=None,
    error_field=None,
    form=None,
):
    if not {"data_scientist", "hr", "admin"} & principal.roles:
        return _forbidden(request, principal, ("data_scientist", "hr", "admin"))
    lang = lang_of(request)
    out = models_api.list_models(principal, settings, model)
    auc_items = [(v.version, v.metrics["test_auc"]) for v in out.versions if "test_auc" in v.metrics][-12:]
    auc = charts.bars(auc_items, i18n.t(lang, "models.chart"))
    auc_table = charts.data_table(
        i18n.t(lang, "chart.data"),
        i18n.t(lang, "models.chart"),
        [i18n.t(lang, "chart.col_version"), i18n.t(lang, "chart.col_auc")],
        [(v, f"{a:.3f}") for v, a in auc_items],
    )
    with request.app.state.sessions() as session:
        track = [
            track_row(models_api.track_record_out(rec, job), lang)
            for rec, job in store.track_records(session, limit=TRACK_ROWS)
        ]
    shown = _shown_version(out, show)
    curves = None
    if shown is not None:
        logged = runs.curves(settings, shown.run_id)
        curves = {
            "version": shown.version,
            "lead": [c for c in (lead_chart(logged.lead, m, lang) for m in runs.MEASURES) if c is not None],
            "calibration": calibration_chart(logged.calibration, lang),
        }
    return render(
        request,
        "models.html",
        principal,
        status,
        out=out,
        auc_chart=auc,
        auc_table=auc_table,
        result=result,
        verdicts=_verdicts(lang, (result or {}).get("figures") or {}, settings),
        error=error,
        error_field=error_field,
        form=form or {},
        may_promote="data_scientist" in principal.roles,
        curves=curves,
        track=track,
    )


TRACK_ROWS = 20  # the newest lists judged, on the models page (the API gives up to 100)


def track_row(t, lang: str) -> dict:
    """A judged list as the models page writes it: rates as whole percents, AUCs with 3 decimals, counts."""

    def pct(v):
        return "–" if v is None else f"{v * 100:.0f}%"

    def auc(v):
        return "–" if v is None else f"{v:.3f}"

    def of(x: int, n: int) -> str:
        return i18n.t(lang, "models.track_of", x=x, n=n)

    return {
        "job_id": t.job_id,
        "as_of": t.as_of.isoformat(),
        "version": t.model_version,
        "known": f"{t.n_known:,}",
        "pending": f"{t.n_pending:,}",
        "missed": pct(t.missed_share),
        "auc": auc(t.auc) + (f" [{t.auc_low:.2f}, {t.auc_high:.2f}]" if t.auc_low is not None else ""),
        "pace": auc(t.pacing_auc),
        "ece": auc(t.ece),
        "precision": pct(t.precision) + (f" ({of(t.high_missed, t.n_high)})" if t.n_high else ""),
        "recall": pct(t.recall) + (f" ({of(t.high_missed, t.n_missed)})" if t.n_missed else ""),
        "judged": t.judged_as_of.isoformat(),
        "in_sample": bool(t.in_sample),
    }


def _verdicts(lang: str, figures: dict, settings) -> list[str]:
    """The gate's judgement per measure in the page's language (models.gate.measure_checks)."""
    from models.gate import Figures, measure_checks

    ch, cp = figures.get("challenger"), figures.get("champion")
    if not isinstance(ch, dict) or not isinstance(cp, dict):
        return []
    try:
        a, b = Figures(**ch), Figures(**cp)
    except TypeError:
        return []
    tol = {"auc": settings.gate_tol_auc, "brier": settings.gate_tol_brier, "auc_early": settings.gate_tol_auc}
    share = f"{a.early_share:.0%}" if a.early_share is not None else "?"
    return [
        i18n.t(
            lang,
            f"models.verdict_{m}_{'ok' if ok else 'bad'}",
            challenger=f"{getattr(a, m):.4f}",
            champion=f"{getattr(b, m):.4f}",
            tol=f"{tol[m]:g}",
            share=share,
        )
        for m, ok in measure_checks(a, b, tol["auc"], tol["brier"])
    ]


@router.post("/models/promote", response_class=HTMLResponse)
async def promote(
    request: Request,
    principal: WebUser,
    settings: SettingsDep,
    model: ModelDep,
    rid: RequestIdDep,
    version: Annotated[str, Form()] = "",
    force: Annotated[str, Form()] = "",
    reason: Annotated[str, Form()] = "",
    dry_run: Annotated[str, Form()] = "",
):
    import anyio.to_thread

    if "data_scientist" not in principal.roles:  # the refusal is audited: off the event loop
        return await anyio.to_thread.run_sync(_forbidden, request, principal, ("data_scientist",))
    failed: tuple[str, int] | None = None
    error_field = None
    try:
        body = PromoteIn(
            version=version.strip() or None,
            force=bool(force),
            reason=reason.strip() or None,
            dry_run=bool(dry_run),
        )
        res = await models_api.promote(request, body, principal, settings, model, rid)
    except ValidationError as exc:
        field, text = field_error(lang_of(request), exc.errors()[0])
        failed, error_field = (text, 422), field
    except ApiError as exc:
        failed = (exc.detail, exc.status)
    if failed is not None:
        error, code = failed
        return await anyio.to_thread.run_sync(
            lambda: _models(
                request,
                principal,
                settings,
                model,
                error=error,
                status=code,
                error_field=error_field,
                form={"version": version, "force": bool(force), "reason": reason, "dry_run": bool(dry_run)},
            )
        )
    if isinstance(res, Response):  # a refusal: 409 with the figures
        result, status = json.loads(res.body), res.status_code
    else:
        result, status = res.model_dump(mode="json"), 200
    # The page then draws the curves of the version the gate judged.
    return await anyio.to_thread.run_sync(
        lambda: _models(
            request, principal, settings, model, result=result, status=status, show=result.get("version")
        )
    )


# -- any other address -----------------------------------------------------------------------------
class _DashboardPath(Convertor):
    """Any path outside the API, health, metrics, documents and static files: the dashboard's own."""

    regex = r"(?!(?:api|health|static|docs|redoc)(?:/|$)|metrics(?:/|$)|openapi\.json$).+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


class _DashboardSlashPath(_DashboardPath):
    """A dashboard path ending with a slash: no page or form has one, so it is mistyped for any method."""

    regex = _DashboardPath.regex + "/"


register_url_convertor("dashboard_path", _DashboardPath())
register_url_convertor("dashboard_slash_path", _DashboardSlashPath())


@router.get("/{path:dashboard_path}", response_class=HTMLResponse)
# The other methods only with a trailing slash: the GET route alone would answer `POST /logout/` with a 405
# naming its own methods, where `GET /logout/` names `/logout`; without the slash, a page or form's own
# route must answer its other methods (its 405 and Allow), which a route taking them for every path would hide.
@router.api_route(
    "/{path:dashboard_slash_path}",
    methods=[m for m in METHODS if m not in ("GET", "HEAD")],
    response_class=HTMLResponse,
)
@catch_all
def unknown_page(request: Request, path: str, session: SessionDep, settings: SettingsDep):
    """A mistyped dashboard address: the dashboard's 404 page for a browser (signed in or not, nothing is
    named), or its 405 page for a form's address; a client not asking for HTML gets the API's JSON 404
    (naming the address a trailing slash meant) or 405. A trailing-slash path is a 404 for any method."""
    from starlette.routing import Match

    allowed = set()
    for route in router.routes:  # a dashboard path is served by this router or by none
        if getattr(route, "endpoint", None) is unknown_page:
            continue
        match, _ = route.matches({**request.scope, "method": "\0"})
        if match is not Match.NONE and getattr(route, "methods", None):
            allowed |= set(route.methods)
    browser = "text/html" in request.headers.get("accept", "")
    if allowed and not browser:
        request.scope[ALLOW_KEY] = ", ".join(sorted(allowed))  # the probe would count this route's GET
        raise HTTPException(405)
    pages = [r for r in router.routes if getattr(r, "endpoint", None) is not unknown_page]
    if not browser:  # the API's 404, naming the address as the API's routes do (any method)
        request.scope[SLASHLESS_KEY] = slashless_address(request, pages, METHODS)
        raise HTTPException(404, "Not Found")
    principal = _signed_in(request, session, settings)
    if principal is not None:
        request.state.user_lang = store.user_lang(session, principal.user_id)
        request.state.session_ends = _session_ends(
            session, request.cookies.get(SESSION_COOKIE, ""), SessionLimits.of(settings)
        )
    if allowed:  # a form's address opened as a page (a bookmark, a reload): a page saying so, not JSON
        page = render(request, "error.html", principal, 405, kind="form_only")
        page.headers["Allow"] = ", ".join(sorted(allowed))
        return page
    # `/team/`: the page is at `/team`. A link to it, never a redirect (one address per page, as the API's
    # 404 names its address); the page-message parameters stay behind, as after a sign-in.
    meant = slashless_address(request, pages, ("GET",))
    if meant is not None:
        q = request.url.query
        meant = _safe_next(_after_sign_in(meant + (f"?{q}" if q else "")))
    return render(request, "error.html", principal, 404, kind="no_page", meant=meant)
