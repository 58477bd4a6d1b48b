"""The CSV downloads' snapshot session (serving.exports.snapshot) on a real database of each kind."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from repradar.settings import Settings
from serving import exports
from serving.db.engine import make_engine, make_sessionmaker


def test_a_download_whose_client_stalls_does_not_hold_a_connection_without_end(db_url, tmp_path):
    """Between chunks a download's transaction is idle while its client reads; a client that stopped reading
    kept a PostgreSQL connection 'idle in transaction' (and its snapshot) for as long as it stalled, and a
    few dozen such clients would leave the pool empty. Past `export_idle_timeout_s` the server ends it."""
    engine = make_engine(Settings(home=tmp_path, database_url=db_url))
    sessions = make_sessionmaker(engine)
    try:
        with exports.snapshot(sessions, idle_timeout_s=0.5) as s:
            assert s.execute(text("SELECT 1")).scalar() == 1  # a working snapshot on either database
            if engine.dialect.name != "postgresql":
                s.close()
                return
            shown = s.execute(text("SELECT current_setting('idle_in_transaction_session_timeout')")).scalar()
            assert shown == "500ms", shown
            time.sleep(1.5)  # the client reads nothing
            with pytest.raises(DBAPIError):
                s.execute(text("SELECT 1"))
            s.close()
        # set for the download's transaction only: the pool's other sessions keep the server's default
        with sessions() as other:
            assert (
                other.execute(text("SELECT current_setting('idle_in_transaction_session_timeout')")).scalar()
                == "0"
            )
    finally:
        engine.dispose()
