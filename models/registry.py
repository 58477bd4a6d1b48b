"""MLflow plumbing shared by training, the gate, scoring and the service: URIs, client, aliases.

Embedded by default: a sqlite tracking store and file artifacts under REPRADAR_HOME. Any tracking
or registry URI can come from settings (an MLflow server), in which case the server decides where
artifacts go unless `mlflow_artifact_location` says otherwise.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import urllib.request
import warnings
from pathlib import Path
from urllib.parse import urlsplit

from repradar.errors import UserError

CHAMPION = "champion"
CHALLENGER = "challenger"


def is_embedded(settings) -> bool:
    """True when tracking is the default sqlite store under home."""
    return not settings.mlflow_tracking_uri


def registry_uri(settings) -> str:
    return settings.mlflow_registry_uri or settings.tracking_uri


def artifact_location(settings) -> str | None:
    """Where a new experiment stores artifacts: the setting, else under home when embedded."""
    explicit = getattr(settings, "mlflow_artifact_location", None)
    if explicit:
        return explicit
    return settings.artifact_root if is_embedded(settings) else None


def quiet_mlflow() -> None:
    """MLflow's INFO lines and progress bars are noise on a command line."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", module="mlflow")
    warnings.filterwarnings("ignore", category=UserWarning, message=".*pip version.*")


_REACHED: set[tuple[str, int]] = set()
# The store URI schemes MLflow accepts for tracking and the registry (a SQLAlchemy driver after '+').
_SCHEMES = {
    "",
    "file",
    "http",
    "https",
    "sqlite",
    "postgresql",
    "mysql",
    "mssql",
    "databricks",
    "databricks-uc",
    "uc",
}


# Database stores MLflow opens with SQLAlchemy, which retries a refused connection for minutes too.
_DATABASE_PORTS = {"postgresql": 5432, "mysql": 3306, "mssql": 1433}


def check_reachable(uri: str, setting: str, timeout: float = 5.0) -> None:
    """UserError at once when an http(s) MLflow server or a database store cannot be reached, instead
    of minutes of retries ending in a connection traceback. Only a first success is remembered (the
    service polls the alias every few seconds), so a server that later goes away is MLflow's to retry."""
    parts = urlsplit(uri)
    if parts.scheme.split("+")[0] not in _SCHEMES:
        raise UserError(
            f"{setting}={uri!r} is not an MLflow store address; use http(s)://HOST:PORT for a server "
            "(or sqlite:///PATH, postgresql://...), or unset it to use the embedded store under REPRADAR_HOME"
        )
    opted_in = os.environ.get("MLFLOW_ALLOW_FILE_STORE", "").lower() in ("true", "1")
    if parts.scheme in ("", "file") and not opted_in:
        # MLflow 3 refuses its folder store unless opted in, with an exception that would surface as an
        # internal error of whatever command ran first.
        raise UserError(
            f"{setting}={uri!r} is a folder (MLflow's file store), which MLflow no longer opens; use "
            "sqlite:///PATH/mlflow.db or http(s)://HOST:PORT for a server, or unset it to use the embedded "
            "store under REPRADAR_HOME (MLFLOW_ALLOW_FILE_STORE=true opts into the folder store)"
        )
    base = parts.scheme.split("+")[0]
    if base == "sqlite":
        # sqlite:///rel/path, sqlite:////abs/path. MLflow would create a mistyped folder and an empty
        # store in it, and the commands would report "no versions yet" from there.
        path = parts.path[1:]
        if path and path != ":memory:" and not Path(path).parent.is_dir():
            raise UserError(
                f"{setting}={uri!r}: the folder {str(Path(path).parent)!r} does not exist; check the path "
                "(sqlite:////ABSOLUTE/PATH/mlflow.db has four slashes), create the folder for a new store, "
                "or unset it to use the embedded store under REPRADAR_HOME"
            )
        if path and path != ":memory:":
            _check_sqlite_store(Path(path), uri, setting)
        return
    if parts.scheme not in ("http", "https") and base not in _DATABASE_PORTS:
        return
    try:
        default_port = _DATABASE_PORTS.get(base) or (443 if parts.scheme == "https" else 80)
        host, port = parts.hostname, parts.port or default_port
    except ValueError as exc:  # a port that is not a number
        raise UserError(f"{setting}={uri!r} is not a valid address ({exc})") from None
    if not host:
        if base in _DATABASE_PORTS:
            return  # a local socket: SQLAlchemy's to open
        raise UserError(f"{setting}={uri!r} names no host; use e.g. http://mlflow.internal:5000")
    if (host, port) in _REACHED:
        return
    if base not in _DATABASE_PORTS and urllib.request.getproxies().get(parts.scheme):
        if not urllib.request.proxy_bypass(host):
            return  # reached through a proxy (HTTP(S)_PROXY): a direct connection proves nothing
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as exc:
        # A database address may hold a password: name only its host and port.
        what = (
            f"the {base} database at {host}:{port}"
            if base in _DATABASE_PORTS
            else f"the MLflow server at {uri}"
        )
        raise UserError(
            f"cannot reach {what} ({exc.strerror or exc}); check {setting} "
            "(unset it to use the embedded store under REPRADAR_HOME) and that the server is running"
        ) from None
    _REACHED.add((host, port))


_STORES_SEEN: set[Path] = set()


def _check_sqlite_store(path: Path, uri: str, setting: str) -> None:
    """UserError for an existing file that is not an MLflow store: not a database (MLflow fails with
    an internal error) or another application's database (MLflow would add its tables to it)."""
    if path in _STORES_SEEN or not path.is_file() or path.stat().st_size == 0:
        return  # known good (the service opens the store every few seconds), or a new store
    with path.open("rb") as f:
        is_sqlite = f.read(16) == b"SQLite format 3\x00"
    tables: set[str] = set()
    if is_sqlite:
        import sqlite3

        try:
            with contextlib.closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as db:
                tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        except sqlite3.Error:
            is_sqlite = False
    if not is_sqlite or (tables and not {"experiments", "alembic_version"} <= tables):
        what = "not a sqlite database" if not is_sqlite else "a sqlite database of something else"
        raise UserError(
            f"{setting}={uri!r}: {path} is {what}, not an MLflow store; point it at the store's "
            "mlflow.db (or a new file), or unset it to use the embedded store under REPRADAR_HOME"
        )
    _STORES_SEEN.add(path)


def configure(settings):
    """Point the mlflow module at this installation; returns an MlflowClient for it."""
    quiet_mlflow()
    import mlflow
    from mlflow import MlflowClient

    if is_embedded(settings):
        Path(settings.resolved_home).mkdir(parents=True, exist_ok=True)
    check_reachable(settings.tracking_uri, "REPRADAR_MLFLOW_TRACKING_URI")
    if settings.mlflow_registry_uri:
        check_reachable(settings.mlflow_registry_uri, "REPRADAR_MLFLOW_REGISTRY_URI")
    mlflow.set_tracking_uri(settings.tracking_uri)
    mlflow.set_registry_uri(registry_uri(settings))
    return MlflowClient(tracking_uri=settings.tracking_uri, registry_uri=registry_uri(settings))


def scratch_dir(settings) -> str:
    """A folder for temporary files under home (same disk as the artifacts, out of shared /tmp)."""
    path = Path(settings.resolved_home) / "tmp"
    path.mkdir(parents=True, exist_ok=True)
    return str(path)


def store_exists(settings) -> bool:
    """False when the embedded store was never created (nothing trained yet): no need to open it."""
    if not is_embedded(settings):
        return True
    return (Path(settings.resolved_home) / "mlflow.db").exists()


def ensure_experiment(client, settings) -> str:
    exp = client.get_experiment_by_name(settings.experiment_name)
    if exp is not None:
        return exp.experiment_id
    return client.create_experiment(settings.experiment_name, artifact_location=artifact_location(settings))


def _not_found(exc) -> bool:
    code = getattr(exc, "error_code", "")
    return code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND")


def version_by_alias(client, name: str, alias: str):
    """The ModelVersion an alias points at, or None when the model or the alias does not exist."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException as exc:
        if _not_found(exc):
            return None
        raise


def get_version(client, name: str, version: str):
    """The ModelVersion, or None when it does not exist."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version(name, str(version))
    except MlflowException as exc:
        if _not_found(exc):
            return None
        raise


def aliases_by_version(client, name: str) -> dict[str, list[str]]:
    """{version: [aliases]} for a registered model (empty if it does not exist)."""
    from mlflow.exceptions import MlflowException

    try:
        rm = client.get_registered_model(name)
    except MlflowException as exc:
        if _not_found(exc):
            return {}
        raise
    out: dict[str, list[str]] = {}
    for alias, version in (rm.aliases or {}).items():
        out.setdefault(str(version), []).append(alias)
    return {v: sorted(a) for v, a in out.items()}


def list_versions(client, name: str) -> list:
    """All versions of the registered model, newest first ([] if it does not exist)."""
    from mlflow.exceptions import MlflowException

    try:
        versions = client.search_model_versions(f"name='{name}'")
    except MlflowException as exc:
        if _not_found(exc):
            return []
        raise
    return sorted(versions, key=lambda v: int(v.version), reverse=True)
