"""MLflow plumbing shared by training, the gate, scoring and the service: URIs, client, aliases.

Embedded by default: a sqlite tracking store and file artifacts under REPRADAR_HOME. Any tracking
or registry URI can come from settings (an MLflow server), in which case the server decides where
artifacts go unless `mlflow_artifact_location` says otherwise.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import logging
import os
import socket
import urllib.request
import warnings
from pathlib import Path
from urllib.parse import unquote, urlsplit

from repradar.errors import Unavailable, UserError

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
    # A new sqlite store says "Creating initial MLflow database tables..." at INFO. MLflow's first import
    # (which may come after this) sets the "mlflow" logger back to INFO, but not these children's levels:
    # their warnings and errors still show.
    for name in ("mlflow.store.db", "mlflow.store.db_migrations", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", module="mlflow")
    warnings.filterwarnings("ignore", category=UserWarning, message=".*pip version.*")


_REACHED: set[tuple[str, int]] = set()
# The store URI schemes MLflow accepts for tracking and the registry.
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
# Database stores MLflow opens with SQLAlchemy (a driver may follow a '+'), which retries a refused
# connection for minutes too.
_DATABASE_PORTS = {"postgresql": 5432, "mysql": 3306, "mssql": 1433}
_DATABASES = {"sqlite", *_DATABASE_PORTS}
# Addresses MLflow reads without '://': a Databricks workspace (its default profile) or Unity Catalog.
_BARE = {"databricks", "databricks-uc", "uc"}
# Unity Catalog holds registered models only: MLflow refuses it as a tracking store.
_UNITY_CATALOG = {"databricks-uc", "uc"}


def check_reachable(uri: str, setting: str, timeout: float = 5.0, *, registry: bool = False) -> None:
    """UserError at once when an http(s) MLflow server, a database store or a Databricks workspace
    cannot be reached (or a Databricks address has no credentials), instead of minutes of retries or
    an internal error. `registry`: the address is the model registry's (Unity Catalog is allowed).
    Only a first success is remembered (the service polls the alias every few seconds), so a server
    that later goes away is MLflow's to retry."""
    parts = urlsplit(uri)
    base, plus, _ = parts.scheme.partition("+")
    if uri.strip().lower() in _BARE:
        base = uri.strip().lower()
    if base not in _SCHEMES or (plus and base not in _DATABASES):
        raise UserError(
            f"{setting}={uri!r} is not an MLflow store address; use http(s)://HOST:PORT for a server "
            "(or sqlite:///PATH, postgresql://..., databricks), or unset it to use the embedded store under "
            "REPRADAR_HOME"
        )
    if base in _UNITY_CATALOG and not registry:
        raise UserError(
            f"{setting}={uri!r} is Unity Catalog, which keeps registered models but not training runs; "
            "point REPRADAR_MLFLOW_TRACKING_URI at the workspace (databricks) or a server, and set "
            f"REPRADAR_MLFLOW_REGISTRY_URI={uri}"
        )
    if base in ("databricks", "databricks-uc"):
        _check_databricks(uri, setting, timeout)
        return
    if base == "uc":
        # MLflow's open-source Unity Catalog: uc:http(s)://HOST:PORT, or uc:databricks-uc
        inner = uri.strip()[3:]
        if inner.lower() == "databricks-uc":
            _check_databricks(inner, setting, timeout)
        elif urlsplit(inner).scheme in ("http", "https"):
            _check_connection(inner, setting, timeout)
        else:
            raise UserError(
                f"{setting}={uri!r} names no Unity Catalog server; write uc:http(s)://HOST:PORT "
                "(or databricks-uc for Databricks' own)"
            )
        return
    opted_in = os.environ.get("MLFLOW_ALLOW_FILE_STORE", "").lower() in ("true", "1")
    if parts.scheme in ("", "file") and not opted_in:
        # MLflow 3 refuses its folder store unless opted in, with an exception that would surface as an
        # internal error of whatever command ran first.
        raise UserError(
            f"{setting}={uri!r} is a folder (MLflow's file store), which MLflow no longer opens; use "
            "sqlite:///PATH/mlflow.db or http(s)://HOST:PORT for a server, or unset it to use the embedded "
            "store under REPRADAR_HOME (MLFLOW_ALLOW_FILE_STORE=true opts into the folder store)"
        )
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
    if parts.scheme in ("http", "https") or base in _DATABASE_PORTS:
        _check_connection(uri, setting, timeout)


def _check_connection(uri: str, setting: str, timeout: float, what: str | None = None) -> None:
    """Open (and close) a TCP connection to the host and port of an http(s) or database address.
    `what` names the target in the message instead of the address (which may hold a secret)."""
    parts = urlsplit(uri)
    base = parts.scheme.split("+")[0]
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
        if what is None:
            what = (
                f"the {base} database at {host}:{port}"
                if base in _DATABASE_PORTS
                else f"the MLflow server at {uri}"
            )
        raise Unavailable(
            f"cannot reach {what} ({exc.strerror or exc}); check {setting} "
            "(unset it to use the embedded store under REPRADAR_HOME) and that the server is running"
        ) from None
    _REACHED.add((host, port))


# What, besides a host, lets the Databricks SDK sign in (a token, a service principal, a user's
# password, a chosen auth type or a cloud's own credentials); env names and ~/.databrickscfg keys.
_DATABRICKS_AUTH_ENV = (
    "DATABRICKS_TOKEN",
    "DATABRICKS_CLIENT_SECRET",
    "DATABRICKS_PASSWORD",
    "DATABRICKS_AUTH_TYPE",
    "DATABRICKS_AZURE_CLIENT_SECRET",
    "ARM_CLIENT_SECRET",
    "ARM_USE_MSI",
    "DATABRICKS_GOOGLE_SERVICE_ACCOUNT",
    "GOOGLE_CREDENTIALS",
    "DATABRICKS_METADATA_SERVICE_URL",
)
_DATABRICKS_AUTH_KEYS = (
    "token",
    "client_secret",
    "password",
    "auth_type",
    "azure_client_secret",
    "azure_use_msi",
    "google_service_account",
    "google_credentials",
    "metadata_service_url",
)


def _check_databricks(uri: str, setting: str, timeout: float) -> None:
    """A Databricks address (databricks, databricks://PROFILE, databricks-uc ...) needs a workspace and
    credentials from the environment (DATABRICKS_HOST and DATABRICKS_TOKEN ...) or a profile of the
    Databricks config file, and the workspace must answer. Without them MLflow fails with an internal
    error (after probing every sign-in method). On a Databricks cluster the runtime signs in itself."""
    if os.environ.get("DATABRICKS_RUNTIME_VERSION"):
        return
    import configparser

    netloc = urlsplit(uri).netloc
    if ":" in netloc:  # databricks://SCOPE:PREFIX reads a secret scope, which exists on Databricks only
        raise UserError(
            f"{setting}: a Databricks secret scope (databricks://SCOPE:PREFIX) is read only on a Databricks "
            "cluster; elsewhere use databricks with DATABRICKS_HOST and DATABRICKS_TOKEN, or databricks://PROFILE"
        )
    profile = netloc or os.environ.get("DATABRICKS_CONFIG_PROFILE")
    host, signed, token = None, False, None
    token_from = "DATABRICKS_TOKEN"
    if not profile:
        host = os.environ.get("DATABRICKS_HOST")
        signed = any(os.environ.get(k) for k in _DATABRICKS_AUTH_ENV)
        token = os.environ.get("DATABRICKS_TOKEN")
    cfg_file = Path(os.environ.get("DATABRICKS_CONFIG_FILE") or Path.home() / ".databrickscfg")
    if not (host and signed):
        cfg = configparser.ConfigParser(default_section="__none__", interpolation=None)
        with contextlib.suppress(OSError, configparser.Error):
            cfg.read(cfg_file)
        section = profile or "DEFAULT"
        if cfg.has_section(section):
            host = cfg.get(section, "host", fallback=None) or None
            signed = any(cfg.get(section, k, fallback=None) for k in _DATABRICKS_AUTH_KEYS)
            token = cfg.get(section, "token", fallback=None) or None
            token_from = f"the token of the profile {section!r} in {cfg_file}"
        elif profile:
            raise UserError(
                f"{setting}={uri!r}: the Databricks profile {profile!r} is not in {cfg_file}; add it "
                "(databricks auth login --profile NAME) or name a profile that is there"
            )
    if not (host and signed):
        missing = "no workspace (host)" if not host else "no credentials (a token or another sign-in)"
        where = f"the profile {profile!r} of {cfg_file}" if profile else f"DATABRICKS_HOST or {cfg_file}"
        raise UserError(
            f"{setting}={uri!r} is a Databricks workspace, but {where} gives {missing}; set DATABRICKS_HOST "
            "and DATABRICKS_TOKEN (or a profile: databricks auth login), or unset it to use the embedded "
            "store under REPRADAR_HOME"
        )
    host = host.strip()
    address = host if "://" in host else f"https://{host}"
    name = urlsplit(address).hostname or host
    _check_connection(address, setting, timeout, what=f"the Databricks workspace {name}")
    if token:
        _check_token(address, name, token.strip(), token_from, uri, setting, timeout)


_TOKENS_ACCEPTED: set[tuple[str, str]] = set()


def _check_token(
    address: str, name: str, token: str, token_from: str, uri: str, setting: str, timeout: float
):
    """UserError when the workspace answers but refuses the personal access token (HTTP 401/403): MLflow
    ended that in an internal error after seconds of retries. Asks who the token belongs to (SCIM Me,
    which every valid token may read); any other answer is left to MLflow. Only an acceptance is
    remembered (by the token's hash), as for `_check_connection`."""
    import hashlib
    import urllib.error

    key = (address, hashlib.sha256(token.encode()).hexdigest())
    if key in _TOKENS_ACCEPTED:
        return
    request = urllib.request.Request(
        address.rstrip("/") + "/api/2.0/preview/scim/v2/Me",
        headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout):
            pass
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code in (401, 403):
            raise UserError(
                f"{setting}={uri!r}: the Databricks workspace {name} refused the token (HTTP {exc.code}); "
                f"{token_from} is wrong, expired or revoked, or belongs to another workspace: create a new "
                "token in the workspace (Settings > Developer > Access tokens, or databricks auth login) "
                "and set DATABRICKS_TOKEN or the profile's token to it"
            ) from None
        return  # another answer (a proxy's, a missing API): MLflow's to deal with
    except (OSError, ValueError):
        return  # reached a moment ago; a flaky answer now is MLflow's to retry
    _TOKENS_ACCEPTED.add(key)


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


def check_addresses(settings) -> None:
    """UserError when the tracking or registry address cannot serve (`check_reachable`): `configure`
    runs it, and `train` before any data is read (the embedded store's folder may not exist yet then)."""
    if not is_embedded(settings) or Path(settings.resolved_home).is_dir():
        check_reachable(settings.tracking_uri, "REPRADAR_MLFLOW_TRACKING_URI")
    if settings.mlflow_registry_uri:
        check_reachable(settings.mlflow_registry_uri, "REPRADAR_MLFLOW_REGISTRY_URI", registry=True)


def configure(settings):
    """Point the mlflow module at this installation; returns an MlflowClient for it."""
    quiet_mlflow()
    import mlflow
    from mlflow import MlflowClient

    if is_embedded(settings):
        Path(settings.resolved_home).mkdir(parents=True, exist_ok=True)
    check_addresses(settings)
    mlflow.set_tracking_uri(settings.tracking_uri)
    mlflow.set_registry_uri(registry_uri(settings))
    with _store_created_in_turn(settings) as first:
        client = MlflowClient(tracking_uri=settings.tracking_uri, registry_uri=registry_uri(settings))
        if first and registry_uri(settings) == settings.tracking_uri:
            client.search_registered_models(max_results=1)  # the registry's store is made on first use
    return client


_STORES_READY: set[str] = set()


@contextlib.contextmanager
def _store_created_in_turn(settings):
    """Open the embedded store first under a lock in the home: MLflow creates (migrates) a new database when
    it opens it, and two commands doing it at once (two `train` on a new home) ended in an internal error (a
    duplicate column, an alembic version row not found). Once per store and process; yields whether now."""
    if not is_embedded(settings) or settings.tracking_uri in _STORES_READY:
        yield False
        return
    from models.locking import file_lock

    with contextlib.ExitStack() as turn:
        with contextlib.suppress(OSError):  # a home that cannot be written (read-only): nothing is made there
            lock = Path(settings.resolved_home) / "tmp" / "store.lock"
            lock.parent.mkdir(exist_ok=True)
            turn.enter_context(
                file_lock(
                    lock, "waiting for another command to open the MLflow store (a new one is created once)"
                )
            )
        yield True
    _STORES_READY.add(settings.tracking_uri)


def unreachable(exc: BaseException) -> bool:
    """Whether an MLflow call failed because its server could not be reached or did not answer in time
    (MLflow raises its own exception, with the network error as its context), rather than for a bug."""
    if not type(exc).__module__.startswith("mlflow"):
        return False
    import requests

    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, (requests.ConnectionError, requests.Timeout, requests.exceptions.RetryError)):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


@contextlib.contextmanager
def server_calls():
    """MLflow calls whose server is down end in `Unavailable` (the service's 503, the command line's exit 2)
    saying so, not in MLflow's exception after its retries (an internal error)."""
    try:
        yield
    except Exception as exc:
        if not unreachable(exc):
            raise
        raise Unavailable(
            "the model registry (the MLflow server of REPRADAR_MLFLOW_TRACKING_URI) cannot be reached; "
            "retry in a moment, and check that the server is running"
        ) from None


def scratch_dir(settings) -> str:
    """A folder for temporary files under home (same disk as the artifacts, out of shared /tmp); a home
    that cannot be written (a read-only volume) is a UserError saying so, not an internal OSError."""
    import tempfile

    path = Path(settings.resolved_home) / "tmp"
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        raise UserError(
            f"cannot write temporary files in {path} ({exc.strerror or exc}): training, promotion and the "
            "report download MLflow artifacts there; make REPRADAR_HOME a folder this user may write to"
        ) from None
    return str(path)


def store_exists(settings) -> bool:
    """False when the embedded store was never created (nothing trained yet): no need to open it."""
    if not is_embedded(settings):
        return True
    return (Path(settings.resolved_home) / "mlflow.db").exists()


def moved_from(settings, client) -> Path | None:
    """The home an embedded store was copied or moved from, else None. MLflow records absolute artifact
    paths, so such a copy loads its models from the old home (until it is gone) and trains into it."""
    if not is_embedded(settings) or getattr(settings, "mlflow_artifact_location", None):
        return None
    if not store_exists(settings):
        return None
    exp = client.get_experiment_by_name(settings.experiment_name)
    parts = urlsplit(exp.artifact_location if exp is not None and exp.artifact_location else "")
    if parts.scheme not in ("", "file") or not parts.path:
        return None
    recorded = Path(unquote(parts.path))
    # a folder not named as a home's (REPRADAR_MLFLOW_ARTIFACT_LOCATION at the time) was chosen, not moved
    home = Path(settings.resolved_home)
    if recorded.name != "mlartifacts" or recorded.parent == home:
        return None
    with contextlib.suppress(OSError):  # the same folder by another spelling (a symbolic link) is not a move
        if recorded.parent.samefile(home):
            return None
    return recorded.parent


def moved_home_message(settings, old: Path) -> str:
    """What to do with a home copied or moved from `old` (see `moved_from`)."""
    state = "which is gone" if not old.exists() else "which still exists"
    return (
        f"the MLflow store in REPRADAR_HOME {settings.resolved_home} records its model files under "
        f"{old / 'mlartifacts'}, not under this home: the home was copied or moved from {old} ({state}), and "
        "MLflow keeps absolute paths, so its models load from there and new training would be written there. "
        "Run `repradar relocate-home` with this REPRADAR_HOME to make its store use this home's own files "
        "(the whole home, mlartifacts included, must have been copied)"
        + ("" if not old.exists() else f", or set REPRADAR_HOME={old} to keep using the old home")
        + " (docs/model.md#moving-or-copying-a-home)"
    )


# Where the embedded store records absolute artifact paths (MLflow 3's sqlite schema): (table, column, kind,
# an SQL condition on the rows, or None). Traces keep theirs in a tag.
_RECORDED_PATHS = (
    ("experiments", "artifact_location", "experiment", None),
    ("runs", "artifact_uri", "run", None),
    ("logged_models", "artifact_location", "logged model", None),
    ("model_versions", "source", "model version", None),
    ("model_versions", "storage_location", "model version", None),
    ("trace_tags", "value", "trace", "key = 'mlflow.artifactLocation'"),
)


@dataclasses.dataclass
class Relocation:
    """What `relocate_home` changed (or would change): rows per kind, and the store's backup copy."""

    old: Path | None
    new: Path
    changed: dict[str, int] = dataclasses.field(default_factory=dict)
    backup: Path | None = None


def _rebased(value: str, prefixes: list[tuple[str, str]]) -> str | None:
    """`value` with a recorded prefix replaced by the new home's, or None when it is not under one."""
    for old, new in prefixes:
        if value == old or value.startswith(old + "/"):
            return new + value[len(old) :]
    return None


def _local_path(value: str) -> Path:
    parts = urlsplit(value)
    return Path(unquote(parts.path)) if parts.scheme == "file" else Path(value)


def _training_now(db) -> str | None:
    """A RUNNING run whose training process on this host is alive (it may write to this store), else None."""
    here = run_owner_tags()
    for (run_id,) in db.execute("SELECT run_uuid FROM runs WHERE status = 'RUNNING'"):
        tags = dict(db.execute("SELECT key, value FROM tags WHERE run_uuid = ?", (run_id,)))
        if _checkable_here(tags, here) and stale_reason(tags, here) is None:
            return f"the MLflow run {run_id} is training now (process {tags[RUN_PID_TAG]} on this host)"
    return None


def relocate_home(settings, *, dry_run: bool = False) -> Relocation:
    """Rewrite the artifact paths an embedded store copied or moved from another home records (`moved_from`)
    to this home's, in one transaction after a backup of mlflow.db, once every folder the models need is
    found here; `dry_run` only counts. A remote store, or a chosen artifact location, is refused."""
    import datetime as dt
    import sqlite3

    home = Path(settings.resolved_home)
    if not is_embedded(settings) or (
        settings.mlflow_registry_uri and settings.mlflow_registry_uri != settings.tracking_uri
    ):
        raise UserError(
            "REPRADAR_MLFLOW_TRACKING_URI / REPRADAR_MLFLOW_REGISTRY_URI name an MLflow store of their own: "
            "relocate-home rewrites only the embedded store under REPRADAR_HOME; a server or database keeps "
            "its paths where its artifact store is (move that with the server's own tools)"
        )
    if getattr(settings, "mlflow_artifact_location", None):
        raise UserError(
            "REPRADAR_MLFLOW_ARTIFACT_LOCATION is set: the model files live where it says, not under "
            "REPRADAR_HOME, so there is nothing of the home's to relocate; unset it to relocate a copied home"
        )
    store = home / "mlflow.db"
    if not store.is_file():
        raise UserError(
            f"there is no MLflow store at {store}: nothing to relocate; set REPRADAR_HOME to the folder the "
            "home was copied or moved to"
        )
    client = configure(settings)
    old = moved_from(settings, client)
    if old is None:
        return Relocation(None, home)
    exp = client.get_experiment_by_name(settings.experiment_name)
    old_root, new_root = old / "mlartifacts", home / "mlartifacts"
    recorded = exp.artifact_location.rstrip("/")
    same_form = new_root.as_uri() if urlsplit(recorded).scheme == "file" else str(new_root)
    prefixes = list(
        dict.fromkeys(
            [(recorded, same_form), (old_root.as_uri(), new_root.as_uri()), (str(old_root), str(new_root))]
        )
    )

    with contextlib.closing(sqlite3.connect(store, timeout=30, isolation_level=None)) as db:
        db.execute("BEGIN IMMEDIATE")  # holds off other writers from the check to the commit
        try:
            if busy := _training_now(db):
                raise UserError(
                    f"{busy}: relocate the home after it ends (if the home was copied while it trained, copy "
                    "it again then); nothing was changed"
                )
            tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            updates, rows, missing = [], {}, []
            for table, column, kind, where in _RECORDED_PATHS:
                if table not in tables:
                    continue
                ended = "status = 'FINISHED' AND lifecycle_stage = 'active'" if table == "runs" else "1"
                query = f"SELECT rowid, {column}, {ended} FROM {table} WHERE {column} IS NOT NULL"
                for rowid, value, finished in db.execute(query + (f" AND {where}" if where else "")):
                    new = _rebased(value, prefixes)
                    if new is None:
                        continue
                    updates.append((table, column, rowid, new))
                    rows.setdefault(kind, set()).add((table, rowid))
                    # MLflow makes a run's folder with its first file: a run that logged none (killed,
                    # failed, or finished without one) has no folder anywhere; one the old home still
                    # holds must have come along. A version's files are needed wherever they are.
                    needed = kind in ("experiment", "model version") or (
                        kind == "run" and finished and _local_path(value).exists()
                    )
                    if needed and not _local_path(new).exists():
                        missing.append(str(_local_path(new)))
            if missing:
                shown = ", ".join(sorted(set(missing))[:5])
                raise UserError(
                    f"REPRADAR_HOME {home} lacks folders its MLflow store records (was it copied in part?): "
                    f"{shown}{' ...' if len(set(missing)) > 5 else ''} ({len(set(missing))} in all). Copy the "
                    f"whole home, mlartifacts included, to {home} (from {old} or the backup it came from) and "
                    "run `repradar relocate-home` again; nothing was changed"
                )
            result = Relocation(old, home, {k: len(v) for k, v in rows.items()})
            if dry_run:
                db.execute("ROLLBACK")
                return result
            stamp = f"mlflow.db.before-relocate-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}"
            # never over an earlier backup (one made in the same second, or copied along with the home)
            result.backup = next(
                path
                for n in itertools.count(1)
                if not (path := store.with_name(stamp if n == 1 else f"{stamp}-{n}")).exists()
            )
            # sqlite's own copy, read by a second connection: no other writer can come in between (the lock
            # above), and a store in WAL mode is copied whole
            with (
                contextlib.closing(sqlite3.connect(store)) as src,
                contextlib.closing(sqlite3.connect(result.backup)) as copy,
            ):
                src.backup(copy)
            for table, column, rowid, new in updates:
                db.execute(f"UPDATE {table} SET {column} = ? WHERE rowid = ?", (new, rowid))
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
    return result


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


# Which process runs a training run: set when the run starts, so that a later command can tell a run
# whose process is gone (SIGKILL, a crashed machine) from one still training (docs/model.md).
RUN_HOST_TAG = "repradar.host"
RUN_PID_TAG = "repradar.pid"
RUN_PID_NAMESPACE_TAG = "repradar.pid_namespace"
RUN_BOOT_TAG = "repradar.boot_id"
ENDED_BY_TAG = "repradar.ended_by"
STALE_RUN_CHECK = "stale-run-check"


def _pid_namespace() -> str:
    """This process's pid namespace ("pid:[4026531836]" on Linux, "" elsewhere): a container sharing the
    host's name (host networking) numbers its processes apart, so its pids cannot be checked from here."""
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return ""


def _boot_id() -> str:
    """This boot of the machine (Linux's /proc/sys/kernel/random/boot_id, "" elsewhere): after a restart
    the same process id may belong to another process, so a run of an earlier boot cannot be training."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def run_owner_tags() -> dict[str, str]:
    """The tags a training run starts with: this host, process id, pid namespace and boot."""
    return {
        RUN_HOST_TAG: socket.gethostname(),
        RUN_PID_TAG: str(os.getpid()),
        RUN_PID_NAMESPACE_TAG: _pid_namespace(),
        RUN_BOOT_TAG: _boot_id(),
    }


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process (EPERM), or a pid this system cannot have
        return True
    return True


def _checkable_here(tags: dict[str, str], here: dict[str, str]) -> bool:
    """Whether a run's process can be checked from here: it names a process of this host and pid namespace."""
    return (
        tags.get(RUN_HOST_TAG) == here[RUN_HOST_TAG]
        and tags.get(RUN_PID_NAMESPACE_TAG, "") == here[RUN_PID_NAMESPACE_TAG]
        and tags.get(RUN_PID_TAG, "").isdigit()
    )


def stale_reason(tags: dict[str, str], here: dict[str, str] | None = None) -> str | None:
    """Why a RUNNING run with these tags cannot be training any more (its process on this host and pid
    namespace is gone, or the machine restarted since it started), else None: it may be training, or it
    runs where this process cannot check (another host or container, or untagged). Reads only."""
    here = here or run_owner_tags()
    if not _checkable_here(tags, here):
        return None
    host, pid = tags[RUN_HOST_TAG], tags[RUN_PID_TAG]
    boot = tags.get(RUN_BOOT_TAG, "")
    if boot and here[RUN_BOOT_TAG] and boot != here[RUN_BOOT_TAG]:
        return f"{host} has restarted since its training process {pid} started"
    if _alive(int(pid)):
        return None
    return f"its training process {pid} on {host} was gone (killed, or the machine restarted)"


def end_stale_runs(client, settings) -> list[str]:
    """End as FAILED the experiment's runs still RUNNING whose training process, on this host, is gone
    (SIGKILL, an out-of-memory kill, a crashed machine: nothing could end them), tagged
    repradar.ended_by=stale-run-check. A RUNNING run of another host, another pid namespace or without
    the tags (an older repradar) is left alone. Returns a line for each of both, to show the user."""
    import datetime as dt

    from mlflow.exceptions import MlflowException

    exp = client.get_experiment_by_name(settings.experiment_name)
    if exp is None:
        return []
    here = run_owner_tags()
    notes = []
    for run in client.search_runs(
        [exp.experiment_id], filter_string="attributes.status = 'RUNNING'", max_results=1000
    ):
        tags, run_id = run.data.tags, run.info.run_id
        started = dt.datetime.fromtimestamp((run.info.start_time or 0) / 1000, dt.UTC)
        what = f"the MLflow run {run_id} (started {started:%Y-%m-%d %H:%M} UTC)"
        host, pid = tags.get(RUN_HOST_TAG), tags.get(RUN_PID_TAG, "")
        if _checkable_here(tags, here):
            reason = stale_reason(tags, here)
            if reason is None:
                continue  # training now
            try:
                client.set_tag(run_id, ENDED_BY_TAG, STALE_RUN_CHECK)
                client.set_tag(run_id, "repradar.ended_reason", reason)
                client.set_terminated(run_id, "FAILED")
            except MlflowException as exc:  # e.g. a server that lets this user read but not write
                notes.append(f"{what} is still RUNNING but {reason}; it could not be ended here ({exc})")
                continue
            notes.append(f"{what} was still RUNNING but {reason}: it is ended as FAILED")
        elif host and host != here[RUN_HOST_TAG]:
            notes.append(
                f"{what} is RUNNING on {host} (process {pid or '?'}): left alone, as only {host} can check "
                f"its process; `repradar models` there ends it as FAILED if the process is gone"
            )
        elif host and pid.isdigit():
            notes.append(
                f"{what} is RUNNING in another container of this host (process {pid}, pid namespace "
                f"{tags.get(RUN_PID_NAMESPACE_TAG) or '?'}): left alone, as its process cannot be checked "
                "from here; `repradar models` in that container ends it as FAILED if the process is gone"
            )
        else:
            notes.append(
                f"{what} is RUNNING but does not say which process runs it (started by an older repradar): "
                f"left alone; if nothing is training, end it with MLflow: "
                f"MlflowClient().set_terminated('{run_id}', 'FAILED')"
            )
    return notes
