"""Alembic, driven from code: the migrations ship inside the package, no alembic.ini needed."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from repradar.errors import UserError
from serving.db.engine import check_connection

MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the database to `revision` (idempotent)."""
    if revision == "head":
        check_not_newer(*revisions(engine))
    command.upgrade(alembic_config(engine), revision)


def downgrade(engine: Engine, revision: str) -> None:
    command.downgrade(alembic_config(engine), revision)


def is_current(engine: Engine) -> bool:
    """True when the database is at the newest migration."""
    head = ScriptDirectory.from_config(alembic_config(engine)).get_current_head()
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision() == head


def revisions(engine: Engine) -> tuple[str | None, str]:
    """(the database's revision, or None when it has none yet; the newest this code knows)."""
    head = ScriptDirectory.from_config(alembic_config(engine)).get_current_head()
    check_connection(engine)
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision(), head


def is_newer(current: str | None) -> bool:
    """True when `current` is a revision this code does not know: a newer version has migrated the database."""
    if current is None:
        return False
    script = ScriptDirectory(str(MIGRATIONS))
    return current not in {s.revision for s in script.walk_revisions()}


def check_not_newer(current: str | None, head: str) -> None:
    """Refuse a database a newer version has migrated, saying what to do: Alembic cannot upgrade from a
    revision it does not know (its error was an internal one), and this code's queries may not fit it."""
    if is_newer(current):
        raise UserError(
            f"the service's database is at revision {current}, which this version does not know (its newest "
            f"is {head}): a newer RepRadar has upgraded it; run that version, or restore the backup taken "
            "before the upgrade (an older version cannot undo a migration)"
        )


def ensure_current(engine: Engine, auto_migrate: bool) -> None:
    """Upgrade when allowed (`REPRADAR_DB_AUTO_MIGRATE`, default true); otherwise refuse a database that
    is not at this code's revision, rather than fail on its first query. A database that cannot be opened
    is a UserError saying so."""
    check_connection(engine)
    if auto_migrate:
        upgrade(engine)
        return
    current, head = revisions(engine)
    check_not_newer(current, head)
    if current != head:
        raise UserError(
            f"the service's database is at revision {current or 'none (empty)'} and this version needs {head}; "
            "REPRADAR_DB_AUTO_MIGRATE is false, so run `repradar db upgrade` (after a backup) first"
        )
