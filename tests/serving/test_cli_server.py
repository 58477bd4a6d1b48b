"""`repradar users ...` and `repradar serve`: tokens from the command line work against the running
service, and SIGTERM stops it cleanly."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from typer.testing import CliRunner

from repradar.cli import app

ROOT = Path(__file__).resolve().parents[2]


def test_users_add_list_revoke(tmp_path, monkeypatch):
    from repradar.settings import get_settings

    monkeypatch.setenv("REPRADAR_HOME", str(tmp_path / "home"))
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        r = runner.invoke(app, ["users", "add", "ann", "--role", "manager", "--manager-id", "M42"])
        assert r.exit_code == 0, r.output
        token = r.output.strip().splitlines()[-1]
        assert token.startswith("rr_")
        r = runner.invoke(app, ["users", "add", "bob", "--role", "hr", "--role", "data_scientist"])
        assert r.exit_code == 0
        r = runner.invoke(app, ["users", "list"])
        assert "ann" in r.output and "manager_id=M42" in r.output and "data_scientist,hr" in r.output
        assert token not in r.output
        r = runner.invoke(app, ["users", "add", "cy", "--role", "manager"])
        assert r.exit_code == 2 and "--manager-id" in r.output
        r = runner.invoke(app, ["users", "add", "cy", "--role", "manager", "--manager-id", "M\x01"])
        assert r.exit_code == 2 and "control character" in r.output
        r = runner.invoke(app, ["users", "add", "dee", "--role", "boss"])
        assert r.exit_code == 2 and "unknown role" in r.output
        r = runner.invoke(app, ["users", "revoke", "ann"])
        assert r.exit_code == 0
        r = runner.invoke(app, ["users", "revoke", "nobody"])
        assert r.exit_code == 2 and "no user named" in r.output
        r = runner.invoke(app, ["users", "list"])
        assert "revoked" in r.output
        # a revoked name stays with its audit trail: both ways point to another name, not to each other
        for args in (["users", "add", "ann", "--role", "hr"], ["users", "token", "ann"]):
            r = runner.invoke(app, args)
            assert r.exit_code == 2 and "add the person under another name" in r.output, r.output
        r = runner.invoke(app, ["users", "add", "bob", "--role", "hr"])
        assert r.exit_code == 2 and "repradar users token bob" in r.output
        r = runner.invoke(app, ["users", "add", "eve", "--role", "hr", "--manager-id", "M42"])
        assert r.exit_code == 2 and "only for the manager role" in r.output
        # a manager id no rep reports to: created, with a note (once the rep directory is filled)
        from serving import admin, store

        engine, sessions = admin._sessions(get_settings())
        with sessions.begin() as s:
            store.upsert_reps(s, [{"rep_id": "R1", "manager_id": "M42"}])
        engine.dispose()
        r = runner.invoke(app, ["users", "add", "fay", "--role", "manager", "--manager-id", "M999"])
        assert r.exit_code == 0 and "no rep in the service's rep directory reports to 'M999'" in r.output
        r = runner.invoke(app, ["users", "add", "gus", "--role", "manager", "--manager-id", "M42"])
        assert r.exit_code == 0 and "note:" not in r.output
    finally:
        get_settings.cache_clear()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_answers_and_stops_on_sigterm(tmp_path):
    home = tmp_path / "home"
    env = {**os.environ, "REPRADAR_HOME": str(home)}
    add = subprocess.run(
        [sys.executable, "-m", "repradar.cli", "users", "add", "hr1", "--role", "hr"],
        env=env,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert add.returncode == 0, add.stderr
    token = add.stdout.strip().splitlines()[-1]
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "repradar.cli", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=ROOT,
    )
    try:
        deadline = time.time() + 60
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/health/live", timeout=1)
                break
            except httpx.TransportError:
                assert proc.poll() is None and time.time() < deadline, (
                    proc.stdout.read() if proc.poll() else ""
                )
                time.sleep(0.2)
        assert r.json()["status"] == "ok"
        me = httpx.get(f"http://127.0.0.1:{port}/api/v1/me", headers={"Authorization": f"Bearer {token}"})
        assert me.json()["name"] == "hr1" and me.headers["x-model-version"] == "none"
        assert httpx.get(f"http://127.0.0.1:{port}/health/ready").status_code == 503  # nothing trained
        refused = httpx.get(
            f"http://127.0.0.1:{port}/api/v1/me", headers={"Authorization": "Bearer rr_wrong"}
        )
        assert refused.status_code == 401
        proc.send_signal(signal.SIGTERM)
        # uvicorn drains, runs the lifespan shutdown, then re-raises the signal (status -15)
        assert proc.wait(30) in (0, -signal.SIGTERM)
        out = proc.stdout.read()
        assert (
            "Shutting down" in out
            and "Application shutdown complete" in out
            and "Finished server process" in out
        )
        # every line has its time; the service's own warnings reach the log, the token never does
        import re

        lines = [line for line in out.splitlines() if line.strip()]
        assert all(re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4} ", line) for line in lines), lines
        assert any(
            "repradar.serving.auth" in line and "API token refused from 127.0.0.1" in line for line in lines
        )
        assert "rr_wrong" not in out and token not in out
    finally:
        if proc.poll() is None:
            proc.kill()


def test_the_log_keeps_one_line_per_event():
    """Text from outside in a message (a data value in a failed job's reason) cannot forge a log line; the
    configuration `serve` gives uvicorn uses this formatter."""
    import logging

    from serving.server import LOG_CONFIG, OneLineFormatter

    conf = dict(LOG_CONFIG["formatters"]["default"])
    assert conf.pop("()") == "serving.server.OneLineFormatter"
    formatter = OneLineFormatter(**conf)
    record = logging.LogRecord(
        "repradar.serving.jobs",
        logging.WARNING,
        __file__,
        1,
        "job failed: %s",
        ("Y\r\n2026 CRITICAL x",),
        None,
    )
    line = formatter.format(record)
    assert "\n" not in line and "\r" not in line
    assert line.endswith(
        f"WARNING repradar.serving.jobs [{record.process}] job failed: Y\\r\\n2026 CRITICAL x"
    )
    chinese = logging.LogRecord("repradar", logging.INFO, __file__, 1, "模型 %s", ("已加载",), None)
    assert formatter.format(chinese).endswith("模型 已加载")


def test_wrong_settings_and_an_unreachable_database_are_refused_with_the_reason(tmp_path, monkeypatch):
    """What an operator mistypes is exit 2 with the variable and what to do, never an internal error or a
    traceback; a password in the database URL is not repeated."""
    from repradar.settings import get_settings

    monkeypatch.setenv("REPRADAR_HOME", str(tmp_path / "home"))
    closed = _free_port()
    cases = [
        ({"REPRADAR_API_WORKERS": "two"}, ["serve"], "REPRADAR_API_WORKERS: Input should be a valid integer"),
        ({"REPRADAR_DATABASE_URL": "not a url pw0rd"}, ["users", "list"], "is not a database URL"),
        (
            {"REPRADAR_DATABASE_URL": f"postgresql://ops:pw0rd@127.0.0.1:{closed}/repradar"},
            ["serve", "--port", str(_free_port())],
            f"cannot open the service's database postgresql+psycopg://ops:***@127.0.0.1:{closed}/repradar",
        ),
        (
            {"REPRADAR_DATABASE_URL": f"postgresql://ops:pw0rd@127.0.0.1:{closed}/repradar"},
            ["db", "status"],
            "and that the database server is running",
        ),
        ({"REPRADAR_HOME": "/proc/no-such-folder"}, ["users", "list"], "set REPRADAR_HOME to a folder"),
    ]
    for env, args, expected in cases:
        with monkeypatch.context() as m:
            for k, v in env.items():
                m.setenv(k, v)
            get_settings.cache_clear()
            try:
                r = CliRunner().invoke(app, args)
            finally:
                get_settings.cache_clear()
        assert r.exit_code == 2, (args, r.output, r.exception)
        assert expected in r.output and "pw0rd" not in r.output, r.output
        assert "internal error" not in r.output and "Traceback" not in r.output


def test_a_port_in_use_is_refused_before_anything_starts(tmp_path):
    """A port another `serve --workers N` holds (SO_REUSEPORT) was silently shared by a second one; a port
    another program holds made the one-process service start up, then exit 3. Both are now exit 2 at once."""
    env = {**os.environ, "REPRADAR_HOME": str(tmp_path / "home")}
    with socket.socket() as held:
        held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)  # as serve's own workers listen
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        for workers in ("2", "1"):
            r = subprocess.run(
                [sys.executable, "-m", "repradar.cli", "serve", "--port", str(port), "--workers", workers],
                env=env,
                capture_output=True,
                text=True,
                cwd=ROOT,
                timeout=120,
            )
            assert r.returncode == 2, (workers, r.stderr)
            assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in r.stderr
            assert "Traceback" not in r.stderr and "Started server process" not in r.stderr
    assert not (tmp_path / "home" / "repradar.db").exists()  # refused before the database was touched


def test_warnings_reach_the_log_as_one_line_in_every_worker(tmp_path):
    """Every worker process of `serve` (spawned, so without the console script's set-up) logs a Python
    warning as one timed line, and leaves out the known PySpark one that every batch job used to print."""
    script = f"""
import warnings
from repradar.settings import Settings
from serving import server
server._config(Settings(home={str(tmp_path / "home")!r}), "127.0.0.1", 0)  # what each worker does first
warnings.warn("first line\\nsecond line", UserWarning)
warnings.warn("PySpark does not yet fully support pandas >= 3.0.0.", FutureWarning)
"""
    r = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=120, env=os.environ
    )
    assert r.returncode == 0, r.stderr
    import re

    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4} WARNING py.warnings ", lines[0]), lines
    assert "first line\\nsecond line" in lines[0] and "PySpark" not in r.stderr


def _ipv6_loopback_port() -> int | None:
    """A free port on ::1, or None when this host has no IPv6 loopback."""
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
            return s.getsockname()[1]
    except OSError:
        return None


def test_a_worker_that_dies_is_logged_and_replaced(tmp_path):
    """`serve --workers 2`: a worker killed from outside (out of memory, say) was neither logged nor replaced,
    and the service went on with one process; the supervisor now says so and starts another. SIGTERM
    still stops them all. On an IPv6 address (::1) where the host has one: the workers' sockets were IPv4
    only, so each failed with a traceback; they now take the address's family."""
    import re

    env = {**os.environ, "REPRADAR_HOME": str(tmp_path / "home")}
    port6 = _ipv6_loopback_port()
    host, port = ("::1", port6) if port6 else ("127.0.0.1", _free_port())
    base = f"http://[::1]:{port}" if port6 else f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "repradar.cli",
                "serve",
                "--host",
                host,
                "--port",
                str(port),
                "--workers",
                "2",
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=ROOT,
        )

    def wait_for(pattern: str, timeout: float = 120):
        deadline = time.time() + timeout
        while time.time() < deadline:
            found = re.search(pattern, log.read_text())
            if found:
                return found
            assert proc.poll() is None, log.read_text()
            time.sleep(0.2)
        raise AssertionError(f"{pattern!r} not in the log:\n{log.read_text()}")

    try:
        start = rf"(?m)^\S+T\S+ INFO repradar.serving \[{proc.pid}\] 2 workers on {re.escape(base)} "
        pids = [int(p) for p in wait_for(start + r"\(pids (\d+), (\d+)\)").groups()]
        for pid in pids:
            wait_for(rf"\[{pid}\] Application startup complete")
        os.kill(pids[0], signal.SIGKILL)
        line = wait_for(
            rf"ERROR repradar.serving \[{proc.pid}\] worker {pids[0]} ended with signal 9; "
            r"started worker (\d+) in its place"
        )
        new = int(line.group(1))
        wait_for(rf"\[{new}\] Application startup complete")
        assert httpx.get(f"{base}/health/live", timeout=5).status_code == 200
        proc.send_signal(signal.SIGTERM)
        assert (
            proc.wait(60) == 0
        )  # a stop asked for is a success (it was 241, -15 as a byte, for systemd a failure)
        text = log.read_text()
        assert f"[{new}] Finished server process" in text and f"[{pids[1]}] Finished server process" in text
        assert "Traceback" not in text, text
        for pid in (new, pids[1]):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                continue
            raise AssertionError(f"worker {pid} still runs after SIGTERM")
    finally:
        if proc.poll() is None:
            proc.kill()


def test_workers_stop_when_their_supervisor_is_killed(tmp_path):
    """SIGKILL to the `serve --workers 2` process (a supervisor's last resort) left its workers serving the
    port on their own, unsupervised; now they get SIGTERM and stop."""
    import re

    env = {**os.environ, "REPRADAR_HOME": str(tmp_path / "home")}
    port = _free_port()
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "repradar.cli", "serve", "--port", str(port), "--workers", "2"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=ROOT,
            start_new_session=True,  # the test can clean up every process it started
        )
    try:
        deadline = time.time() + 120
        while (
            not (found := re.search(r"\(pids (\d+), (\d+)\)", log.read_text()))
            or log.read_text().count("Application startup complete") < 2
        ):
            assert proc.poll() is None and time.time() < deadline, log.read_text()
            time.sleep(0.2)
        workers = [int(p) for p in found.groups()]
        proc.kill()
        proc.wait(10)
        deadline = time.time() + 60
        while True:
            alive = []
            for pid in workers:
                try:
                    os.kill(pid, 0)
                    alive.append(pid)
                except ProcessLookupError:
                    pass
            if not alive:
                break
            assert time.time() < deadline, f"workers {alive} still run without their supervisor"
            time.sleep(0.2)
        text = log.read_text()
        assert all(f"[{pid}] Finished server process" in text for pid in workers), text
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_serve_refuses_report_and_alert_settings_that_do_not_read(tmp_path, monkeypatch):
    """A REPRADAR_REPORT_ or (with job alerts on) REPRADAR_ALERTS_ value that does not read stops the start
    (exit 2, naming the variable), rather than failing each report or each batch's alerts later."""
    from repradar.settings import get_settings

    monkeypatch.setenv("REPRADAR_HOME", str(tmp_path / "home"))
    # were the values not checked first, the start would stop later, at the database it may not migrate
    monkeypatch.setenv("REPRADAR_DB_AUTO_MIGRATE", "false")
    cases = [
        ({"REPRADAR_REPORT_PSI_BINS": "many"}, "REPRADAR_REPORT_PSI_BINS: Input should be a valid integer"),
        (
            {"REPRADAR_JOB_ALERTS": "true", "REPRADAR_ALERTS_LANG": "fr"},
            "REPRADAR_ALERTS_LANG: Value error, 'fr': RepRadar writes en or zh-CN",
        ),
    ]
    for env, said in cases:
        get_settings.cache_clear()
        try:
            r = CliRunner().invoke(app, ["serve", "--port", str(_free_port())], env=env)
        finally:
            get_settings.cache_clear()
        assert r.exit_code == 2 and said in r.stderr, r.output
        assert "Traceback" not in r.stderr
