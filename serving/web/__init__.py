"""The HTML dashboard: server-rendered pages at `/` on the same app, service layer and audit trail as the API."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from serving.web.pages import router

STATIC_DIR = Path(__file__).parent.parent / "static"

__all__ = ["mount", "router"]


def mount(app: FastAPI) -> None:
    """Add the dashboard's static files and its pages to `app` (the pages end with a catch-all for
    mistyped dashboard addresses, so they come after every other route)."""
    app.mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static")
    from serving.routing import with_head

    app.include_router(with_head(router))
