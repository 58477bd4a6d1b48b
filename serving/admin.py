"""User administration for the command line (`repradar users ...`): the same functions as the API, with
the database opened (and migrated) from settings, and every change in the audit trail."""

from __future__ import annotations

import getpass
from collections.abc import Iterable

from repradar.settings import Settings
from serving import audit
from serving.auth import Principal, UserInfo, add_user, issue_token, list_users, revoke_user


def _sessions(settings: Settings):
    from serving.db.engine import make_engine, make_sessionmaker
    from serving.db.migrate import ensure_current

    engine = make_engine(settings)
    try:
        ensure_current(engine, settings.db_auto_migrate)
    except BaseException:
        engine.dispose()
        raise
    return engine, make_sessionmaker(engine)


def db_upgrade(settings: Settings) -> tuple[str | None, str]:
    """`repradar db upgrade`: bring the service's database to this code's revision; (before, after)."""
    from serving.db.engine import make_engine
    from serving.db.migrate import revisions, upgrade

    engine = make_engine(settings)
    try:
        before, head = revisions(engine)
        upgrade(engine)
        return before, head
    finally:
        engine.dispose()


def db_status(settings: Settings) -> tuple[str | None, str]:
    """`repradar db status`: (the database's revision, this code's)."""
    from serving.db.engine import make_engine
    from serving.db.migrate import revisions

    engine = make_engine(settings)
    try:
        return revisions(engine)
    finally:
        engine.dispose()


def _actor() -> Principal:
    try:
        who = getpass.getuser()
    except Exception:  # no login name in some containers
        who = "unknown"
    return Principal(0, f"cli:{who}", frozenset({"cli"}), None)


def users_add(
    settings: Settings, name: str, roles: Iterable[str], manager_id: str | None
) -> tuple[UserInfo, str]:
    engine, sessions = _sessions(settings)
    try:
        with sessions.begin() as s:
            info, token = add_user(s, name, roles, manager_id)
            audit.record(
                s,
                _actor(),
                "user.create",
                "user",
                name,
                detail={"roles": list(info.roles), "manager_id": manager_id},
            )
        return info, token
    finally:
        engine.dispose()


def users_list(settings: Settings) -> list[UserInfo]:
    engine, sessions = _sessions(settings)
    try:
        with sessions() as s:
            return list_users(s)
    finally:
        engine.dispose()


def users_revoke(settings: Settings, name: str) -> UserInfo:
    engine, sessions = _sessions(settings)
    try:
        with sessions.begin() as s:
            info = revoke_user(s, name)
            audit.record(s, _actor(), "user.revoke", "user", name)
        return info
    finally:
        engine.dispose()


def users_token(settings: Settings, name: str) -> str:
    engine, sessions = _sessions(settings)
    try:
        with sessions.begin() as s:
            token = issue_token(s, name)
            audit.record(s, _actor(), "user.token", "user", name)
        return token
    finally:
        engine.dispose()


def unknown_manager_note(settings: Settings, manager_id: str | None) -> str | None:
    """A note when the service's rep directory is filled but no rep reports to `manager_id` (a typo is
    likelier than a manager without reps); None when the id is known or the directory still empty. The
    HTTP API answers the same warning (serving.rules.unknown_manager_warning)."""
    if not manager_id:
        return None
    from serving.rules import unknown_manager_warning
    from serving.store import manager_reports

    engine, sessions = _sessions(settings)
    try:
        with sessions() as s:
            warning = unknown_manager_warning(manager_id, *manager_reports(s, manager_id))
    finally:
        engine.dispose()
    return f"note: {warning}" if warning else None


def purge(settings: Settings, before, dry_run: bool):
    """`repradar purge`: scores, batch files and ended intervention entries before a day (see serving.retention)."""
    from serving import retention
    from serving.db.engine import begin_write

    engine, sessions = _sessions(settings)
    try:
        with begin_write(sessions) as s:
            out = retention.purge_before(
                s, _actor(), before, settings.resolved_home / "jobs", dry_run=dry_run
            )
        if not dry_run:
            retention.delete_files(out.job_files)
        return out
    finally:
        engine.dispose()


def forget(settings: Settings, rep_id: str, dry_run: bool):
    """`repradar forget`: everything the service stores about one rep (see serving.retention)."""
    from serving import retention
    from serving.db.engine import begin_write

    engine, sessions = _sessions(settings)
    try:
        with begin_write(sessions) as s:
            out = retention.forget_rep(s, _actor(), rep_id, settings.resolved_home / "jobs", dry_run=dry_run)
        if not dry_run and out.job_files:
            left = retention.rewrite_files(out.job_files, rep_id)
            with begin_write(sessions) as s:
                retention.set_job_rows(s, left)
        return out
    finally:
        engine.dispose()


def audited_promotion(settings: Settings, version: str | None, force: bool, reason: str | None, promote):
    """`repradar promote` in the service's audit trail, as over HTTP: the request is written before the
    gate runs (the registry and the trail share no transaction), the outcome after it."""
    from models.gate import who
    from serving.db.engine import begin_write

    actor = Principal(0, f"cli:{who(settings)}", frozenset({"cli"}), None)
    engine, sessions = _sessions(settings)
    try:
        with begin_write(sessions) as s:
            audit.promotion_requested(s, actor, version, force, reason)
        result = promote()
        with begin_write(sessions) as s:
            audit.promotion_outcome(s, actor, result, force, reason)
        return result
    finally:
        engine.dispose()


def users_revoke_token(settings: Settings, name: str, prefix: str) -> tuple[UserInfo, str]:
    """`repradar users revoke-token`: one token of a user (by its prefix), and the dashboard sessions it opened."""
    from serving.auth import revoke_token

    engine, sessions = _sessions(settings)
    try:
        with sessions.begin() as s:
            info, revoked = revoke_token(s, name, prefix)
            audit.record(s, _actor(), "user.token_revoke", "user", name, detail={"prefix": revoked})
        return info, revoked
    finally:
        engine.dispose()
