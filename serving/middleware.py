"""One pure-ASGI middleware for every request: model snapshot, request id, security headers, the dashboard's
same-origin check, body cap, bounded concurrency, and Prometheus metrics. Pure ASGI (not BaseHTTPMiddleware)
to keep the per-request cost small."""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from dataclasses import dataclass, field
from html import escape
from typing import Any
from urllib.parse import urlsplit

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

EXEMPT = frozenset({"/health/live", "/health/ready", "/metrics"})
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
RID_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
HTML_HINT_EN = "Go back and try again (shorter, or in a moment)."
HTML_HINT_ZH = "请返回重试（缩短内容，或稍后再试）。"


def wants_page(path: str, accept: str) -> bool:
    """A browser asking for a dashboard page or form (not the API, not the probes): refusals come as a page."""
    return not path.startswith(("/api/", "/health/", "/metrics")) and "text/html" in accept


def plain_page(status: int, detail: str) -> bytes:
    """A refusal as a small page, for when the page's language (or the database behind it) is unknown:
    English, with the hint also in Chinese."""
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{status} · RepRadar</title>'
        f"</head><body><main><h1>{status}</h1><p>{escape(detail)}</p><p>{escape(HTML_HINT_EN)}</p>"
        f'<p lang="zh-CN">{escape(HTML_HINT_ZH)}</p><p><a href="/">RepRadar</a></p></main></body></html>'
    ).encode()


API_PREFIX = "/api/v1"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
DEFAULT_PORTS = {"http": 80, "https": 443}

# Sent with every response: no MIME sniffing, no Referer to other sites, never framed (clickjacking).
COMMON_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
)
# The dashboard is self-contained (tests/web/test_pages.py): its own CSS, inline SVG charts, no script at all.
DASHBOARD_CSP = (
    b"default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; "
    b"object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
API_CSP = b"default-src 'none'; frame-ancestors 'none'"  # JSON, CSV, files: nothing to run or load
DOCS_PATHS = ("/docs", "/redoc")  # Swagger UI and ReDoc: their CSP allows their own inline script


def content_security_policy(path: str) -> bytes:
    """The CSP for a path: the API docs pages, the machine-facing routes, or the dashboard."""
    if path in DOCS_PATHS or path.startswith("/docs/"):
        from serving.routers import docs

        return docs.content_security_policy()
    if path.startswith(("/api/", "/health/", "/metrics", "/openapi.json")):
        return API_CSP
    return DASHBOARD_CSP


def _origin(url: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of an http(s) URL, default port filled in; None for anything else ("null", junk)."""
    try:
        parts = urlsplit(url.strip())
        scheme, host, port = parts.scheme.lower(), parts.hostname, parts.port
    except ValueError:  # a port that is not a number, a bad IPv6 literal
        return None
    if scheme not in DEFAULT_PORTS or not host:
        return None
    return scheme, host.lower(), port or DEFAULT_PORTS[scheme]


def own_origin(scope: dict) -> tuple[str, str, int] | None:
    """This request's own origin: its scheme (after uvicorn's trusted-proxy rewrite) and its Host header."""
    scheme = scope.get("scheme", "http")
    host = _header(scope, b"host")
    if host:
        return _origin(f"{scheme}://{host.decode('latin-1')}")
    server = scope.get("server")
    return (scheme, str(server[0]).lower(), int(server[1])) if server and server[1] else None


def foreign_origin(scope: dict) -> str | None:
    """For a state-changing request to the dashboard (not the API, whose bearer tokens no browser sends by
    itself): the other site it came from, by its Origin header, else by its Referer; None when it came from
    this site or says nothing (non-browser clients, privacy settings)."""
    if scope["method"] not in UNSAFE_METHODS or scope["path"].startswith("/api/"):
        return None
    own = own_origin(scope)
    origin = _header(scope, b"origin")
    if origin is not None:
        text = origin.decode("latin-1")
        return None if own is not None and _origin(text) == own else text or "(empty)"
    referer = _header(scope, b"referer")
    if referer is not None:
        text = referer.decode("latin-1")
        theirs = _origin(text)
        if own is not None and theirs == own:
            return None
        if theirs is None:
            return "(unreadable Referer)"
        scheme, host, port = theirs  # the site only: the page's path is none of our business
        return f"{scheme}://{host}" + ("" if DEFAULT_PORTS[scheme] == port else f":{port}")
    return None


class Metrics:
    """Per-app registry (several apps in one test process must not collide)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "repradar_http_requests",
            "HTTP requests answered",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "repradar_http_request_seconds",
            "Time to answer",
            ["route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.in_flight = Gauge("repradar_http_in_flight", "Requests being handled", registry=self.registry)
        self.rejected = Counter(
            "repradar_http_rejected", "Requests refused before handling", ["reason"], registry=self.registry
        )
        self.model_swaps = Counter(
            "repradar_model_swaps", "Champion models swapped in", registry=self.registry
        )
        self.model_info = Gauge(
            "repradar_model_info", "The champion being served", ["version"], registry=self.registry
        )


class Limiter:
    """At most `max_in_flight` requests at once; up to `max_waiting` more wait `timeout` seconds; the rest get 503."""

    def __init__(self, max_in_flight: int, max_waiting: int, timeout: float):
        self.max_waiting = max_waiting
        self.timeout = timeout
        self.waiting = 0
        self._sem = asyncio.Semaphore(max_in_flight)

    async def acquire(self) -> bool:
        if not self._sem.locked():
            await self._sem.acquire()
            return True
        if self.waiting >= self.max_waiting:
            return False
        self.waiting += 1
        try:
            await asyncio.wait_for(self._sem.acquire(), self.timeout)
            return True
        except TimeoutError:
            return False
        finally:
            self.waiting -= 1

    def release(self) -> None:
        self._sem.release()


@dataclass
class Runtime:
    """What the middleware needs from the app; the limiter is made in the lifespan (inside the event loop)."""

    settings: Any
    holder: Any
    metrics: Metrics
    limiter: Limiter | None = None
    extra: dict = field(default_factory=dict)

    def get_limiter(self) -> Limiter:
        if self.limiter is None:
            s = self.settings
            self.limiter = Limiter(s.max_in_flight, s.max_waiting, s.queue_timeout_s)
        return self.limiter


def route_label(scope: dict) -> str:
    """The route's path template for metrics. FastAPI hands over the route as declared in its router,
    without the prefix it was included under, so the API's prefix is put back (API and pages differ)."""
    path = getattr(scope.get("route"), "path", None)
    if not path:
        return "unmatched"
    if scope.get("path", "").startswith(API_PREFIX + "/") and not path.startswith(API_PREFIX + "/"):
        return API_PREFIX + path
    return path


def _header(scope: dict, name: bytes) -> bytes | None:
    for k, v in scope.get("headers", ()):
        if k == name:
            return v
    return None


class ServiceMiddleware:
    def __init__(self, app, runtime: Runtime):
        self.app = app
        self.rt = runtime

    async def _reply(
        self,
        send,
        status: int,
        detail: str,
        code: str,
        headers: list[tuple[bytes, bytes]],
        html: bool = False,
    ) -> None:
        if html:  # a browser's form or page: a page, in both languages, not JSON
            body = plain_page(status, detail)
            kind = b"text/html; charset=utf-8"
        else:
            body = json.dumps({"detail": detail, "code": code}).encode()
            kind = b"application/json"
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", kind),
                    (b"content-length", str(len(body)).encode()),
                    *headers,
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rt = self.rt
        model = rt.holder.current
        scope["repradar.model"] = model
        version = "none" if model is None else str(model.version)
        rid_in = _header(scope, b"x-request-id")
        rid = (
            rid_in.decode("latin-1")
            if rid_in and RID_RE.match(rid_in.decode("latin-1"))
            else uuid.uuid4().hex[:16]
        )
        scope["repradar.request_id"] = rid
        # the dashboard's pages and forms (not the API, not the probes) get their refusals as a page
        html = wants_page(scope["path"], (_header(scope, b"accept") or b"").decode("latin-1"))
        extra = [(b"x-model-version", version.encode("latin-1")), (b"x-request-id", rid.encode())]
        # Pages and answers name people and their risk: no browser or proxy may keep them (the Back
        # button after signing out must not show a rep's page). Static files may be cached.
        private = not scope["path"].startswith(("/static/", "/docs/assets/"))
        extra += [*COMMON_HEADERS, (b"content-security-policy", content_security_policy(scope["path"]))]
        status = [500]

        head = scope["method"] == "HEAD"

        async def send_with_headers(message):
            if head and message["type"] == "http.response.body":  # HEAD: GET's status and headers, no body
                message = {**message, "body": b""}
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                headers = [*message.get("headers", []), *extra]
                if private and not any(k.lower() == b"cache-control" for k, _ in headers):
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        metrics = rt.metrics
        method = scope["method"]
        start = time.perf_counter()
        foreign = foreign_origin(scope)
        if (
            foreign is not None
        ):  # login CSRF and the like: refused before the body is read or any handler runs
            metrics.rejected.labels("cross_origin").inc()
            from serving.web.pages import (
                cross_origin_page,
            )  # the dashboard's own page, in the user's language

            page = await asyncio.to_thread(cross_origin_page, scope, foreign)
            await page(scope, receive, send_with_headers)
            return
        cap = rt.settings.max_body_bytes
        length = _header(scope, b"content-length")
        if length is not None:
            try:
                too_big = int(length) > cap
            except ValueError:
                await self._reply(
                    send_with_headers, 400, "malformed Content-Length header", "bad_request", []
                )
                return
            if too_big:
                metrics.rejected.labels("body_too_large").inc()
                await self._reply(
                    send_with_headers,
                    413,
                    f"request body over {cap} bytes",
                    "body_too_large",
                    [(b"connection", b"close")],
                    html,
                )
                return
        elif method in BODY_METHODS:  # chunked: read it here, within the cap, then hand it on
            chunks, size = [], 0
            while True:
                message = await receive()
                if message["type"] != "http.request":
                    return
                chunks.append(message.get("body", b""))
                size += len(chunks[-1])
                if size > cap:
                    metrics.rejected.labels("body_too_large").inc()
                    await self._reply(
                        send_with_headers,
                        413,
                        f"request body over {cap} bytes",
                        "body_too_large",
                        [(b"connection", b"close")],
                        html,
                    )
                    return
                if not message.get("more_body", False):
                    break
            body = b"".join(chunks)
            sent = False

            async def receive():  # noqa: F811 - replays the buffered body once
                nonlocal sent
                if not sent:
                    sent = True
                    return {"type": "http.request", "body": body, "more_body": False}
                return {"type": "http.disconnect"}

        exempt = scope["path"] in EXEMPT
        limiter = None
        if not exempt:
            limiter = rt.get_limiter()
            if not await limiter.acquire():
                metrics.rejected.labels("overloaded").inc()
                await self._reply(
                    send_with_headers,
                    503,
                    "the service is overloaded; retry shortly",
                    "overloaded",
                    [(b"retry-after", b"1")],
                    html,
                )
                return
        metrics.in_flight.inc()
        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            metrics.in_flight.dec()
            if limiter is not None:
                limiter.release()
            label = route_label(scope)
            metrics.requests.labels(method, label, str(status[0])).inc()
            metrics.latency.labels(label).observe(time.perf_counter() - start)
