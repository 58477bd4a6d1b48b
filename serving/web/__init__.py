"""The HTML dashboard: server-rendered pages at `/` on the same app, service layer and audit trail as the API."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from serving.web.pages import router

STATIC_DIR = Path(__file__).parent.parent / "static"

__all__ = ["demo_signins", "mount", "router"]


def mount(app: FastAPI) -> None:
    """Add the dashboard's pages and its static files to `app`."""
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static")


def demo_signins(sessions, manager_id: str | None = None) -> list[tuple[str, str, str]]:
    """Create one user per dashboard role for a demo and return [(role, user name, token)].

    `sessions` is the app's sessionmaker (`app.state.sessions`); the manager gets the manager id with the
    most reps under them unless one is given. Users that exist already get a fresh token.
    """
    from sqlalchemy import func, select

    from serving.auth import add_user, issue_token
    from serving.db.schema import Rep, User

    out = []
    with sessions.begin() as s:
        if manager_id is None:
            manager_id = s.scalar(
                select(Rep.manager_id).group_by(Rep.manager_id).order_by(func.count().desc(), Rep.manager_id).limit(1)
            )
        wanted = [("manager", "demo-manager", manager_id), ("hr", "demo-hr", None), ("data_scientist", "demo-ds", None)]
        for role, name, mid in wanted:
            if role == "manager" and not mid:
                continue
            if s.scalar(select(User.id).where(User.name == name)) is not None:
                token = issue_token(s, name)
            else:
                token = add_user(s, name, [role], mid)[1]
            out.append((role, name, token))
    return out
