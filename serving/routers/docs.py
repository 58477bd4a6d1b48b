"""The API's reference pages, /docs (Swagger UI) and /redoc, served with their scripts from this service.

FastAPI's defaults load Swagger UI and ReDoc from a CDN (and ReDoc's fonts from Google): on a company
network without internet access the pages stay blank, and every reader's browser would tell a third
party which internal service they read. The files ship in the `fastapi-offline` package.
"""

from __future__ import annotations

import base64
import hashlib
import re
from functools import cache
from importlib.resources import files
from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

ASSETS = "/docs/assets"
# ReDoc's sidebar shows Redocly's logo from their CDN: the one outside address in its script
REDOC_LOGO = b"https://cdn.redoc.ly/redoc/logo-mini.svg"
router = APIRouter(include_in_schema=False)


def _static() -> Path:
    return Path(str(files("fastapi_offline") / "static"))


@router.get("/docs", response_class=HTMLResponse)
def swagger_ui() -> HTMLResponse:
    return get_swagger_ui_html(
        openapi_url="/openapi.json",
        title="RepRadar API",
        swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
        swagger_css_url=f"{ASSETS}/swagger-ui.css",
        swagger_favicon_url=f"{ASSETS}/favicon.png",
        # validatorUrl: Swagger UI would otherwise send the spec's address to validator.swagger.io
        # for a badge; tokens typed into "Authorize" stay in the page, not in the browser's storage
        swagger_ui_parameters={"validatorUrl": None, "persistAuthorization": False},
    )


@router.get("/redoc", response_class=HTMLResponse)
def redoc() -> HTMLResponse:
    return get_redoc_html(
        openapi_url="/openapi.json",
        title="RepRadar API",
        redoc_js_url=f"{ASSETS}/redoc.standalone.js",
        redoc_favicon_url=f"{ASSETS}/favicon.png",
        with_google_fonts=False,
    )


@cache
def _redoc_script() -> bytes:
    return (
        (_static() / "redoc.standalone.js").read_bytes().replace(REDOC_LOGO, f"{ASSETS}/favicon.png".encode())
    )


@router.get(f"{ASSETS}/redoc.standalone.js")
def redoc_script() -> Response:
    """ReDoc's script with its logo taken from here rather than from Redocly's CDN."""
    return Response(
        _redoc_script(), media_type="text/javascript", headers={"Cache-Control": "public, max-age=86400"}
    )


@cache
def content_security_policy() -> bytes:
    """The pages' CSP: their own files only, and of inline script just the two pages' own (by hash)."""
    hashes = []
    for page in (swagger_ui(), redoc()):
        for body in re.findall(rb"<script>(.*?)</script>", page.body, flags=re.S):
            hashes.append(f"'sha256-{base64.b64encode(hashlib.sha256(body).digest()).decode()}'")
    return (
        "default-src 'self'; "
        f"script-src 'self' {' '.join(hashes)}; "
        # both inject their own styles, and ReDoc runs its search in a worker made from a blob
        "style-src 'self' 'unsafe-inline'; img-src 'self' data:; worker-src 'self' blob:; "
        "object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ).encode()


def mount(app: FastAPI) -> None:
    """Add /docs, /redoc and their files to `app` (built with docs_url=None and redoc_url=None)."""
    from serving.routing import with_head

    app.include_router(with_head(router))
    app.mount(ASSETS, StaticFiles(directory=str(_static())), name="docs-assets")
