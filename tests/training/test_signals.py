"""`repradar train` stopped by Ctrl-C or SIGTERM ends its MLflow run as KILLED, registers nothing and
exits 128 + the signal's number; a real process on the small simulated organisation, a real sqlite store."""

from __future__ import annotations

import contextlib
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def _running_run(db: Path) -> str | None:
    """The id of a RUNNING run in the store, read without MLflow (which would create the store's tables
    itself if it got there first)."""
    if not db.exists():
        return None
    with (
        contextlib.suppress(sqlite3.Error),
        contextlib.closing(sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True, timeout=1)) as con,
    ):
        row = con.execute("SELECT run_uuid FROM runs WHERE status = 'RUNNING'").fetchone()
        return row[0] if row else None
    return None


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_stopped_training_ends_its_run_as_killed_and_registers_nothing(tmp_path, sim_org, signum, code):
    from mlflow import MlflowClient

    home = tmp_path / "home"
    db = home / "mlflow.db"
    cli = Path(sys.executable).parent / "repradar"
    env = {"PATH": str(cli.parent), "REPRADAR_HOME": str(home), "HOME": str(tmp_path)}
    proc = subprocess.Popen(
        [str(cli), "train", "--data", str(sim_org)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 300
        run_id = None
        while run_id is None and proc.poll() is None and time.monotonic() < deadline:
            run_id = _running_run(db)
            time.sleep(0.05)
        assert run_id is not None, "the training run never showed as RUNNING"
        proc.send_signal(signum)  # while it logs and registers
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == code, (proc.returncode, out, err)
    name = signal.Signals(signum).name
    assert f"training stopped by {name}: the MLflow run {run_id} is ended as KILLED" in err, err
    assert "Traceback" not in err and "registered" not in out

    # Both addresses given: another test in this worker may have set MLflow's process-wide registry URI.
    uri = f"sqlite:///{db}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    assert client.get_run(run_id).info.status == "KILLED"
    assert client.search_model_versions("name='repradar-risk'") == []  # nothing half-registered
