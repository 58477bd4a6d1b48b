"""MLflow plumbing: a wrong tracking or registry address is a user error at once, not minutes of retries."""

from __future__ import annotations

import contextlib
import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from repradar.cli import app
from repradar.settings import get_settings


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(tmp_path, *args, **env):
    get_settings.cache_clear()
    try:
        return CliRunner().invoke(app, list(args), env={"REPRADAR_HOME": str(tmp_path), **env})
    finally:
        get_settings.cache_clear()


@pytest.mark.parametrize(
    ("uri", "says"),
    [
        ("http://127.0.0.1:{closed}", "cannot reach the MLflow server"),  # a closed port, found in the test
        ("http://no-such-host.invalid:5000", "cannot reach the MLflow server"),
        ("http://127.0.0.1:port", "not a valid address"),
        ("mlflow.internal:5000", "not an MLflow store address"),
        # a folder is MLflow's file store, which MLflow 3 refuses: it was an internal error (exit 1)
        ("{tmp}/mlruns", "is a folder (MLflow's file store)"),
        ("file://{tmp}/mlruns", "is a folder (MLflow's file store)"),
        # a sqlite store in a folder that is not there: MLflow created the folder and an empty store
        ("sqlite:///{tmp}/typo/mlflow.db", "does not exist"),
        # a database store that is not there: SQLAlchemy retried for minutes (the password is not echoed)
        (
            "postgresql://ds:secret@127.0.0.1:{closed}/mlflow",
            "cannot reach the postgresql database at 127.0.0.1:",
        ),
        (
            "mysql+pymysql://ds:secret@127.0.0.1:{closed}/mlflow",
            "cannot reach the mysql database at 127.0.0.1:",
        ),
    ],
)
@pytest.mark.parametrize("command", [["models"], ["promote"], ["promote", "--version", "1"]])
def test_wrong_tracking_uri_is_a_user_error(tmp_path, uri, says, command):
    # found here, not at collection: xdist's workers must collect the same test ids
    uri = uri.replace("{closed}", str(_closed_port())).replace("{tmp}", str(tmp_path))
    r = _run(tmp_path, *command, REPRADAR_MLFLOW_TRACKING_URI=uri)
    assert r.exit_code == 2, (r.exit_code, r.stdout, r.stderr, r.exception)
    assert says in r.stderr and "REPRADAR_MLFLOW_TRACKING_URI" in r.stderr
    assert not (tmp_path / "mlruns").exists() and not (tmp_path / "typo").exists()  # nothing stored
    assert "secret" not in r.stderr


def test_a_sqlite_file_that_is_not_an_mlflow_store_is_refused_and_left_alone(tmp_path):
    # a text file was an internal error (exit 1); another application's database got MLflow's tables
    import sqlite3

    text = tmp_path / "notes.db"
    text.write_text("rules: []\n")
    other = tmp_path / "crm.db"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE accounts (id INTEGER)")
    before = other.read_bytes()
    for path, says in ((text, "not a sqlite database"), (other, "a sqlite database of something else")):
        r = _run(tmp_path / "home", "models", REPRADAR_MLFLOW_TRACKING_URI=f"sqlite:///{path}")
        assert r.exit_code == 2, (r.exit_code, r.stdout, r.stderr, r.exception)
        assert says in r.stderr and "REPRADAR_MLFLOW_TRACKING_URI" in r.stderr
    assert other.read_bytes() == before
    # an MLflow store, and a new file, are opened as before
    store = tmp_path / "mlflow.db"
    assert _run(tmp_path / "home", "models", REPRADAR_MLFLOW_TRACKING_URI=f"sqlite:///{store}").exit_code == 0
    assert _run(tmp_path / "home", "models", REPRADAR_MLFLOW_TRACKING_URI=f"sqlite:///{store}").exit_code == 0


def test_wrong_registry_uri_names_its_setting(tmp_path):
    r = _run(
        tmp_path,
        "models",
        REPRADAR_MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path / 'mlflow.db'}",
        REPRADAR_MLFLOW_REGISTRY_URI=f"http://127.0.0.1:{_closed_port()}",
    )
    assert r.exit_code == 2 and "REPRADAR_MLFLOW_REGISTRY_URI" in r.stderr, (r.stdout, r.stderr)


def test_a_version_whose_files_are_gone_is_a_user_error(tmp_path):
    """The registry knows the champion but its artifact store was moved or cleaned."""
    from models import registry
    from models.loading import load_model
    from repradar.errors import UserError
    from repradar.settings import Settings

    settings = Settings(home=tmp_path / "home")
    client = registry.configure(settings)
    client.create_registered_model(settings.model_name)
    gone = tmp_path / "gone" / "model"
    mv = client.create_model_version(settings.model_name, source=gone.as_uri())
    client.set_registered_model_alias(settings.model_name, registry.CHAMPION, mv.version)
    with pytest.raises(UserError, match=r"version 1 of 'repradar-risk' is registered but its model files"):
        load_model(settings)


def test_a_server_behind_a_proxy_is_left_to_mlflow(monkeypatch):
    from models.registry import check_reachable

    monkeypatch.setenv("HTTP_PROXY", "http://proxy.internal:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    check_reachable("http://mlflow.behind-proxy.invalid:5000", "REPRADAR_MLFLOW_TRACKING_URI")  # no error


_DATABRICKS_ENV = (
    "DATABRICKS_HOST",
    "DATABRICKS_TOKEN",
    "DATABRICKS_CONFIG_PROFILE",
    "DATABRICKS_CONFIG_FILE",
    "DATABRICKS_RUNTIME_VERSION",
    "DATABRICKS_CLIENT_SECRET",
    "DATABRICKS_AUTH_TYPE",
)


@pytest.mark.parametrize(
    ("uri", "config", "env", "says"),
    [
        # no workspace anywhere: MLflow probed every sign-in method and ended in an internal error (exit 1)
        ("databricks", None, {}, "gives no workspace (host)"),
        ("databricks://ds", None, {}, "the Databricks profile 'ds' is not in"),
        ("databricks://ds", "[ds]\nhost = https://adb-1.invalid\n", {}, "gives no credentials"),
        ("databricks://ds:prefix", None, {}, "secret scope"),
        # credentials, but the workspace does not answer: named by its host, the token never echoed
        (
            "databricks://ds",
            "[ds]\nhost = https://127.0.0.1:{closed}\ntoken = dapi-secret\n",
            {},
            "cannot reach the Databricks workspace 127.0.0.1",
        ),
        (
            "databricks",
            None,
            {"DATABRICKS_HOST": "https://127.0.0.1:{closed}", "DATABRICKS_TOKEN": "dapi-secret"},
            "cannot reach the Databricks workspace 127.0.0.1",
        ),
        # Unity Catalog keeps models, not runs (a bare 'databricks-uc' was called a folder)
        ("databricks-uc", None, {}, "is Unity Catalog"),
        ("uc:http://127.0.0.1:{closed}", None, {}, "is Unity Catalog"),
        # a driver after '+' only means something to a database store
        ("https+foo://mlflow.internal", None, {}, "not an MLflow store address"),
    ],
)
@pytest.mark.parametrize("command", [["models"], ["promote"], ["train", "--data", "{tmp}/org"]])
def test_a_databricks_address_it_cannot_use_is_a_user_error(
    tmp_path, monkeypatch, uri, config, env, says, command
):
    for name in _DATABRICKS_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # ~/.databrickscfg: this test's, if any
    closed = str(_closed_port())
    if config is not None:
        (tmp_path / ".databrickscfg").write_text(config.replace("{closed}", closed))
    for k, v in env.items():
        monkeypatch.setenv(k, v.replace("{closed}", closed))
    command = [c.replace("{tmp}", str(tmp_path)) for c in command]
    r = _run(tmp_path / "home", *command, REPRADAR_MLFLOW_TRACKING_URI=uri.replace("{closed}", closed))
    assert r.exit_code == 2, (r.exit_code, r.stdout, r.stderr, r.exception)
    assert says in r.stderr and "REPRADAR_MLFLOW_TRACKING_URI" in r.stderr, r.stderr
    assert "secret" not in r.stderr.replace("secret scope", "")
    assert not (tmp_path / "home" / "mlflow.db").exists()  # no store made (promote audits the request)


def test_a_unity_catalog_registry_needs_databricks_credentials(tmp_path, monkeypatch):
    for name in _DATABRICKS_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    r = _run(
        tmp_path,
        "models",
        REPRADAR_MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path / 'mlflow.db'}",
        REPRADAR_MLFLOW_REGISTRY_URI="databricks-uc",
    )
    assert r.exit_code == 2, (r.exit_code, r.stdout, r.stderr, r.exception)
    assert "REPRADAR_MLFLOW_REGISTRY_URI='databricks-uc' is a Databricks workspace" in r.stderr, r.stderr


@contextlib.contextmanager
def refusing_server(status: int, body: bytes, content_type: str):
    """A real HTTP server that answers every request `status` with `body`: (its address, the Authorization
    header of each request it saw)."""
    import http.server
    import threading

    seen: list[str] = []

    class Refuse(http.server.BaseHTTPRequestHandler):
        def _refuse(self):
            seen.append(self.headers.get("Authorization", ""))
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PATCH = do_DELETE = _refuse

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Refuse)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", seen
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def refusing_workspace():
    """Answers every request 401, as a Databricks workspace does to a wrong token."""
    body = b'{"error_code": "401", "message": "Invalid access token."}'
    with refusing_server(401, body, "application/json") as served:
        yield served


@pytest.mark.parametrize(
    ("setting", "uri", "profile"),
    [
        ("REPRADAR_MLFLOW_TRACKING_URI", "databricks", False),
        ("REPRADAR_MLFLOW_TRACKING_URI", "databricks://ds", True),
        ("REPRADAR_MLFLOW_REGISTRY_URI", "databricks-uc", False),
    ],
)
@pytest.mark.parametrize("command", [["models"], ["train", "--data", "{tmp}/org"]])
def test_a_databricks_workspace_that_refuses_the_token_is_a_user_error(
    tmp_path, monkeypatch, refusing_workspace, setting, uri, profile, command
):
    # the workspace answered 401/403 and MLflow ended in an internal error (exit 1) after seconds of retries
    host, seen = refusing_workspace
    for name in _DATABRICKS_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    if profile:
        (tmp_path / ".databrickscfg").write_text(f"[ds]\nhost = {host}\ntoken = dapi-secret\n")
    else:
        monkeypatch.setenv("DATABRICKS_HOST", host)
        monkeypatch.setenv("DATABRICKS_TOKEN", "dapi-secret")
    env = {setting: uri}
    if setting == "REPRADAR_MLFLOW_REGISTRY_URI":
        env["REPRADAR_MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp_path / 'mlflow.db'}"
    command = [c.replace("{tmp}", str(tmp_path)) for c in command]
    r = _run(tmp_path / "home", *command, **env)
    assert r.exit_code == 2, (r.exit_code, r.stdout, r.stderr, r.exception)
    assert "the Databricks workspace 127.0.0.1 refused the token (HTTP 401)" in r.stderr, r.stderr
    assert setting in r.stderr and "DATABRICKS_TOKEN" in r.stderr
    assert "secret" not in r.stderr and "Traceback" not in r.stderr
    assert seen and all(a == "Bearer dapi-secret" for a in seen)  # the token was sent, and only there
    assert not (tmp_path / "home" / "mlflow.db").exists()


@pytest.mark.parametrize(
    ("status", "says"),
    [
        (401, "refused the credentials (HTTP 401)"),
        (403, "refused this action to these credentials (HTTP 403)"),
    ],
)
def test_an_mlflow_server_that_refuses_the_credentials_is_a_user_error(tmp_path, status, says):
    # an MLflow server with authentication answered 401 (or 403) and `models` ended in an internal error
    with refusing_server(status, b"You are not authenticated.", "text/plain") as (address, _):
        r = _run(
            tmp_path / "home",
            "models",
            REPRADAR_MLFLOW_TRACKING_URI=address,
            MLFLOW_TRACKING_USERNAME="ds",
            MLFLOW_TRACKING_PASSWORD="hunter2-secret",
        )
    assert r.exit_code == 2, (r.exit_code, r.stdout, r.stderr, r.exception)
    assert (
        f"the MLflow server at REPRADAR_MLFLOW_TRACKING_URI / REPRADAR_MLFLOW_REGISTRY_URI {says}" in r.stderr
    )
    assert "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD" in r.stderr, r.stderr
    assert "secret" not in r.stderr and "internal error" not in r.stderr


def test_a_run_left_running_by_a_killed_training_is_ended_and_others_are_only_named(tmp_path):
    """A SIGKILLed `train` could end nothing: its run stayed RUNNING forever. `repradar models` (as `train`
    does before its run) ends such a run of this host as FAILED, and only names a RUNNING run of another
    host or without the tags; a run whose process lives is training and left alone."""
    import json

    from models import registry
    from repradar.settings import Settings
    from tests.conftest import killed_training_run

    home = tmp_path / "home"
    settings = Settings(home=home)
    client = registry.configure(settings)
    exp_id = registry.ensure_experiment(client, settings)
    killed, pid = killed_training_run(client, exp_id)
    assert client.get_run(killed).info.status == "RUNNING"
    elsewhere = client.create_run(
        exp_id, tags={registry.RUN_HOST_TAG: "build-7.invalid", registry.RUN_PID_TAG: "4242"}
    ).info.run_id
    untagged = client.create_run(exp_id).info.run_id
    training = client.create_run(exp_id, tags=registry.run_owner_tags()).info.run_id  # this process: alive
    # this process's id too, but started in an earlier boot of the machine: that process is gone
    earlier_boot = {**registry.run_owner_tags(), registry.RUN_BOOT_TAG: "00000000-earlier-boot"}
    rebooted = client.create_run(exp_id, tags=earlier_boot).info.run_id

    r = _run(home, "models", "--json")
    assert r.exit_code == 0, (r.exit_code, r.stdout, r.stderr, r.exception)
    assert json.loads(r.stdout) == []  # the notes go to stderr
    run = client.get_run(killed)
    assert run.info.status == "FAILED" and run.info.end_time
    assert run.data.tags[registry.ENDED_BY_TAG] == "stale-run-check"
    assert f"process {pid} on " in run.data.tags["repradar.ended_reason"]
    assert f"note: the MLflow run {killed} (started " in r.stderr and "it is ended as FAILED" in r.stderr
    run = client.get_run(rebooted)
    assert (
        run.info.status == "FAILED"
        and "has restarted since its training process" in run.data.tags["repradar.ended_reason"]
    )
    for left in (elsewhere, untagged, training):
        assert client.get_run(left).info.status == "RUNNING"
        assert registry.ENDED_BY_TAG not in client.get_run(left).data.tags
    assert (
        f"the MLflow run {elsewhere}" in r.stderr
        and "is RUNNING on build-7.invalid (process 4242)" in r.stderr
    )
    assert f"the MLflow run {untagged}" in r.stderr and "does not say which process runs it" in r.stderr
    assert training not in r.stderr
    again = _run(home, "models")
    assert again.exit_code == 0 and killed not in again.stderr and elsewhere in again.stderr

    # a server that lets this user read runs but not end them: named, not an internal error
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    class ReadOnly(MlflowClient):  # the server's permissions, which the product does not own
        def set_tag(self, *args, **kwargs):
            raise MlflowException("Permission denied", error_code="PERMISSION_DENIED")

    another, _ = killed_training_run(client, exp_id)
    notes = registry.end_stale_runs(ReadOnly(settings.tracking_uri), settings)
    assert any(another in n and "could not be ended here (Permission denied)" in n for n in notes), notes
    assert client.get_run(another).info.status == "RUNNING"


def test_a_new_store_is_created_without_mlflows_info_lines(tmp_path):
    """`repradar models` (or train) on a new sqlite store printed MLflow's "Creating initial MLflow
    database tables..." and "Updating database tables" INFO lines on the terminal; its warnings still show.
    A fresh interpreter, as a command is: the lines came from MLflow's first import setting its loggers
    up after repradar had quietened them, which an import in this test process has already done."""
    import subprocess
    import sys

    store = tmp_path / "mlflow.db"
    script = (
        "import logging\n"
        "from repradar.cli import app\n"
        "try:\n"
        "    app(['models'])\n"
        "finally:\n"
        "    logging.getLogger('mlflow.store.db.utils').warning('a warning of the store still shows')\n"
    )
    env = {
        "PATH": str(Path(sys.executable).parent),
        "HOME": str(tmp_path),
        "REPRADAR_HOME": str(tmp_path / "home"),
        "REPRADAR_MLFLOW_TRACKING_URI": f"sqlite+pysqlite:///{store}",
    }
    r = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and store.is_file(), (r.returncode, r.stdout, r.stderr)
    assert " INFO " not in r.stderr + r.stdout and "database tables" not in r.stderr, r.stderr
    assert "WARNING mlflow.store.db.utils: a warning of the store still shows" in r.stderr, r.stderr


def test_a_home_where_temporary_files_cannot_be_written_is_a_user_error(tmp_path):
    """`promote` (the gate's held-out data), `train` and `report` download artifacts into REPRADAR_HOME/tmp:
    a home that cannot be written was an internal error (exit 1, "OSError(30, 'Read-only file system')").
    A file where the folder should be stands for a read-only volume, which root would still write in."""
    from models.registry import scratch_dir
    from repradar.errors import UserError
    from repradar.settings import Settings

    settings = Settings(home=tmp_path)
    assert Path(scratch_dir(settings)) == tmp_path / "tmp"
    (tmp_path / "tmp").rmdir()
    (tmp_path / "tmp").write_text("not a folder")
    with pytest.raises(
        UserError, match=r"cannot write temporary files in .*tmp .*make REPRADAR_HOME a folder"
    ):
        scratch_dir(settings)


def test_a_home_copied_or_moved_from_another_path_is_named_with_what_to_do(tmp_path):
    """The embedded store records absolute artifact paths: a home copied elsewhere (to try a new release
    on a copy, or a release unpacked in a new folder) loaded its models from the old home and trained
    into it, and once the old home was gone its champion failed with MLflow's 'No such artifact'."""
    import shutil

    from models import registry
    from models.loading import load_model
    from repradar.errors import UserError
    from repradar.settings import Settings
    from training.pipeline import preflight

    old = Settings(home=tmp_path / "old")
    client = registry.configure(old)
    registry.ensure_experiment(client, old)
    client.create_registered_model(old.model_name)
    model = tmp_path / "old" / "mlartifacts" / "models" / "m-1" / "artifacts"
    model.mkdir(parents=True)
    mv = client.create_model_version(old.model_name, source=model.as_uri())
    client.set_registered_model_alias(old.model_name, registry.CHAMPION, mv.version)
    preflight(old)  # the home where the store was made is not refused
    # nor a home moved with a symbolic link left at its old path: the recorded paths still lead to it
    (tmp_path / "old").rename(tmp_path / "moved")
    (tmp_path / "old").symlink_to(tmp_path / "moved")
    preflight(Settings(home=tmp_path / "moved"))
    (tmp_path / "old").unlink()
    (tmp_path / "moved").rename(tmp_path / "old")

    shutil.copytree(tmp_path / "old", tmp_path / "new")
    new = Settings(home=tmp_path / "new")
    with pytest.raises(UserError, match=r"copied or moved from .*old \(which still exists\).*REPRADAR_HOME="):
        preflight(new)  # training would write into the old home
    shutil.rmtree(tmp_path / "old")
    with pytest.raises(
        UserError, match=r"version 1 of 'repradar-risk' cannot be loaded: .*old \(which is gone\)"
    ):
        load_model(new)


def test_models_and_the_gate_tell_versions_trained_on_other_feature_definitions(tmp_path):
    """After an upgrade the champion of an older release kept being served on features the new code
    computes differently, and `repradar models` did not show it: a column says which versions were
    trained on this code's definitions (current), on others (older), or before they were recorded (?)."""
    import json

    from features.registry import definitions_fingerprint
    from models import registry
    from models.gate import _other_definitions_note
    from repradar.settings import Settings

    settings = Settings(home=tmp_path)
    client = registry.configure(settings)
    client.create_registered_model(settings.model_name)
    here = definitions_fingerprint()
    for fingerprint in (None, "f" * 64, here):  # versions 1, 2, 3
        mv = client.create_model_version(settings.model_name, source=(tmp_path / "m").as_uri())
        client.set_model_version_tag(settings.model_name, mv.version, "currency", "USD")
        if fingerprint:
            client.set_model_version_tag(settings.model_name, mv.version, "features_sha256", fingerprint)
    client.set_registered_model_alias(settings.model_name, registry.CHAMPION, "2")

    r = _run(tmp_path, "models")
    assert r.exit_code == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    col = lines[1].index("features")
    assert {line.split()[0]: line[col:].split()[0] for line in lines[2:5]} == {
        "3": "current",
        "2": "older",
        "1": "?",
    }, r.stdout
    assert "note: champion v2 was trained on older feature definitions than this release computes" in r.stdout
    listed = {v["version"]: v for v in json.loads(_run(tmp_path, "models", "--json").stdout)}
    assert [listed[v]["features"] for v in "123"] == [None, "older", "current"]
    assert listed["3"]["features_sha256"] == here

    # the gate scores both on the challenger's held-out rows, built by the code that trained it
    v = {n: client.get_model_version(settings.model_name, n) for n in "123"}
    note = _other_definitions_note(v["3"], v["2"])
    assert note and f"different feature definitions (features {here[:8]} against ffffffff)" in note
    assert "champion v2 is judged on inputs computed unlike those it learnt on" in note
    unknown = _other_definitions_note(v["1"], v["3"])  # a rollback to a version of an older release
    assert "v1 was trained before they were recorded: unknown" in unknown and "may be judged" in unknown
    assert _other_definitions_note(v["3"], v["3"]) is None and _other_definitions_note(v["3"], None) is None
