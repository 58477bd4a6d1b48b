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


def test_user_language_migration_keeps_users_and_tokens_both_ways(tmp_path, db_url):
    """0002 adds `users.lang` to a database with users in it, and takes it away again without losing them."""
    import datetime as dt

    from sqlalchemy import text

    from serving.auth import authenticate, hash_token, new_token
    from serving.db.engine import make_sessionmaker
    from serving.store import set_user_lang, user_lang

    engine = make_engine(Settings(home=tmp_path, database_url=db_url))
    upgrade(engine, "0001")
    assert "lang" not in {c["name"] for c in inspect(engine).get_columns("users")}
    sessions = make_sessionmaker(engine)
    token = new_token()
    with engine.begin() as conn:  # written as 0001 knows them (the code's User has the new column)
        now = dt.datetime.now(dt.UTC)
        conn.execute(
            text(
                "INSERT INTO users (name, roles, manager_id, created_at) VALUES ('mo', 'manager', 'M1', :now)"
            ),
            {"now": now},
        )
        uid = conn.execute(text("SELECT id FROM users WHERE name = 'mo'")).scalar_one()
        conn.execute(
            text("INSERT INTO tokens (user_id, token_hash, prefix, created_at) VALUES (:u, :h, :p, :now)"),
            {"u": uid, "h": hash_token(token), "p": token[:8], "now": now},
        )
    upgrade(engine)
    assert is_current(engine)
    with sessions.begin() as s:
        who = authenticate(s, token)
        assert who is not None and user_lang(s, who.user_id) is None  # existing users have not chosen
        set_user_lang(s, who.user_id, "zh-CN")
    with sessions() as s:
        assert user_lang(s, who.user_id) == "zh-CN"
    engine.dispose()  # PostgreSQL: no pooled connection may hold the table during ALTER
    downgrade(engine, "0001")
    assert "lang" not in {c["name"] for c in inspect(engine).get_columns("users")}
    with engine.connect() as conn:
        assert conn.execute(text("SELECT name FROM users")).scalars().all() == ["mo"]
    with sessions() as s:
        assert authenticate(s, token) is not None  # the token still works on the old schema
    upgrade(engine)
    with sessions() as s:
        assert user_lang(s, who.user_id) is None
    engine.dispose()


def test_without_auto_migrate_nothing_upgrades_the_database_by_itself(tmp_path, db_url, monkeypatch):
    """REPRADAR_DB_AUTO_MIGRATE=false: the service and the commands refuse an old database (and leave it
    as it is) until `repradar db upgrade` is run."""
    import pytest
    from fastapi.testclient import TestClient
    from typer.testing import CliRunner

    from repradar.cli import app as cli
    from repradar.errors import UserError
    from repradar.settings import get_settings
    from serving.admin import users_list
    from serving.app import create_app
    from serving.db.migrate import revisions

    settings = Settings(home=tmp_path, database_url=db_url, db_auto_migrate=False)
    engine = make_engine(settings)
    upgrade(engine, "0001")
    head = revisions(engine)[1]
    with pytest.raises(UserError, match="repradar db upgrade"):
        users_list(settings)
    with pytest.raises(UserError, match="at revision 0001"), TestClient(create_app(settings)):
        pass
    assert revisions(engine)[0] == "0001"

    monkeypatch.setenv("REPRADAR_HOME", str(tmp_path))
    monkeypatch.setenv("REPRADAR_DATABASE_URL", db_url)
    monkeypatch.setenv("REPRADAR_DB_AUTO_MIGRATE", "false")
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        r = runner.invoke(cli, ["users", "list"])
        assert r.exit_code == 2 and "repradar db upgrade" in r.output
        r = runner.invoke(cli, ["db", "status"])
        assert r.exit_code == 0 and f"revision 0001; this version needs {head}: needs" in r.output
        engine.dispose()  # PostgreSQL: no pooled connection may hold a table during ALTER
        r = runner.invoke(cli, ["db", "upgrade"])
        assert r.exit_code == 0 and f"from revision 0001 to {head}" in r.output
        r = runner.invoke(cli, ["users", "list"])
        assert r.exit_code == 0
        assert "already at revision" in runner.invoke(cli, ["db", "upgrade"]).output
    finally:
        get_settings.cache_clear()
    assert is_current(engine)
    engine.dispose()


def test_idempotency_key_migration_keeps_the_intervention_log_both_ways(tmp_path, db_url):
    """0006 adds `idempotency_keys` to a database with entries in it, and drops it again without losing them."""
    import datetime as dt

    from sqlalchemy import text

    engine = make_engine(Settings(home=tmp_path, database_url=db_url))
    upgrade(engine, "0005")
    assert "idempotency_keys" not in inspect(engine).get_table_names()
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO intervention_log (rep_id, intervention, started_on, recorded_by, recorded_at) "
                "VALUES ('R1', 'mentoring', :day, 'mo', :now)"
            ),
            {"day": dt.date(2024, 1, 16), "now": dt.datetime.now(dt.UTC)},
        )
    upgrade(engine)
    assert is_current(engine)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO idempotency_keys (user_id, key, fingerprint, rep_id, entry_id, status, response, "
                "created_at) VALUES (1, 'k', :fp, 'R1', 1, 201, :body, :now)"
            ),
            {"fp": "0" * 64, "body": '{"id": 1}', "now": dt.datetime.now(dt.UTC)},
        )
        again = text(
            "INSERT INTO idempotency_keys (user_id, key, fingerprint, rep_id, entry_id, status, response, "
            "created_at) VALUES (1, 'k', :fp, 'R1', 2, 201, :body, :now)"
        )
    import pytest
    from sqlalchemy.exc import IntegrityError

    with pytest.raises(IntegrityError), engine.begin() as conn:  # one answer per user and key
        conn.execute(again, {"fp": "1" * 64, "body": "{}", "now": dt.datetime.now(dt.UTC)})
    engine.dispose()  # PostgreSQL: no pooled connection may hold the table during DROP
    downgrade(engine, "0005")
    assert "idempotency_keys" not in inspect(engine).get_table_names()
    with engine.connect() as conn:
        assert conn.execute(text("SELECT rep_id FROM intervention_log")).scalars().all() == ["R1"]
    upgrade(engine)
    assert "idempotency_keys" in inspect(engine).get_table_names()
    engine.dispose()


def test_a_database_a_newer_version_migrated_is_refused_saying_so(tmp_path, db_url, monkeypatch):
    """A database at a revision this code does not know (a newer RepRadar upgraded it, then was rolled
    back): the commands and the service refuse it with exit 2 naming what to do, not Alembic's internal
    error, `db status` does not suggest `db upgrade`, and the database is left as it is."""
    import pytest
    from fastapi.testclient import TestClient
    from sqlalchemy import text
    from typer.testing import CliRunner

    from repradar.cli import app as cli
    from repradar.errors import UserError
    from repradar.settings import get_settings
    from serving.admin import users_list
    from serving.app import create_app
    from serving.db.migrate import revisions

    settings = Settings(home=tmp_path, database_url=db_url)
    engine = make_engine(settings)
    upgrade(engine)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0099_future'"))
    for auto in (True, False):
        with pytest.raises(UserError, match="revision 0099_future, which this version does not know"):
            users_list(settings.model_copy(update={"db_auto_migrate": auto}))
    with pytest.raises(UserError, match="a newer RepRadar has upgraded it"), TestClient(create_app(settings)):
        pass

    monkeypatch.setenv("REPRADAR_HOME", str(tmp_path))
    monkeypatch.setenv("REPRADAR_DATABASE_URL", db_url)
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        r = runner.invoke(cli, ["db", "status"])
        assert r.exit_code == 0 and "newer than this version" in r.output and "db upgrade" not in r.output
        for args in (["db", "upgrade"], ["users", "list"]):
            r = runner.invoke(cli, args)
            assert r.exit_code == 2 and "a newer RepRadar has upgraded it" in r.output, r.output
    finally:
        get_settings.cache_clear()
    assert revisions(engine)[0] == "0099_future"
    engine.dispose()
