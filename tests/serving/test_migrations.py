"""Alembic: the migrations build exactly the tables the code declares, and go down and up again."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from repradar.settings import Settings
from serving.db.engine import make_engine
from serving.db.migrate import downgrade, is_current, upgrade
from serving.db.schema import Base


def test_upgrade_matches_the_models_and_downgrades(tmp_path, db_url):
    engine = make_engine(Settings(home=tmp_path, database_url=db_url))
    upgrade(engine)
    upgrade(engine)  # idempotent
    assert is_current(engine)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    assert diff == []
    downgrade(engine, "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    upgrade(engine)
    assert "audit_log" in inspect(engine).get_table_names()
    engine.dispose()


def test_default_database_lives_under_home(tmp_path):
    s = Settings(home=tmp_path / "h")
    assert s.db_url == f"sqlite:///{(tmp_path / 'h').resolve() / 'repradar.db'}"
    engine = make_engine(s)
    upgrade(engine)
    assert (tmp_path / "h" / "repradar.db").exists()
    engine.dispose()
