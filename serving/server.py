"""`repradar serve`: uvicorn with uvloop/httptools, graceful SIGTERM, and N processes on one port.

Several workers are separate processes, each with its own SO_REUSEPORT listening socket (the kernel
spreads connections), not `uvicorn --workers`: on uvicorn 0.54 that shared socket lacks the TCP
protocol number, TCP_NODELAY is never set and keep-alive requests wait ~40 ms for delayed ACKs
(see shared/notes/performance.md).
"""

from __future__ import annotations

import errno
import logging
import multiprocessing
import os
import signal
import socket
import sys
import warnings

from repradar.settings import Settings

log = logging.getLogger("repradar.serving")


# One format for uvicorn's and the service's own lines, with the time (UTC offset included): the
# service's INFO lines (model swaps, jobs) and warnings (refused sign-ins) reach the log too.
def one_line(text: str) -> str:
    """`text` with its control characters (line breaks above all) escaped, `\\n` for a line break."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


class OneLineFormatter(logging.Formatter):
    """One line per event: a message's control characters are escaped, so that text from outside (a value
    of the data in a failed job's reason, a path) cannot forge a line of the log; a traceback keeps its lines."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = one_line(record.message)
        return super().formatMessage(record)


LOG_CONFIG = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "default": {
            "()": "serving.server.OneLineFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s [%(process)d] %(message)s",
            "datefmt": "%Y-%m-%dT%H:%M:%S%z",
        }
    },
    "handlers": {
        "default": {"class": "logging.StreamHandler", "formatter": "default", "stream": "ext://sys.stderr"}
    },
    "loggers": {
        "uvicorn": {"handlers": ["default"], "level": "INFO", "propagate": False},
        "repradar": {"handlers": ["default"], "level": "INFO", "propagate": False},
        # Python warnings (logging.captureWarnings in _config): one line each, like every other event
        "py.warnings": {"handlers": ["default"], "level": "WARNING", "propagate": False},
    },
}


def _config(settings: Settings, host: str, port: int):
    import uvicorn

    # Sync endpoints run in worker threads: a 5 ms GIL switch interval (the default) would let a
    # busy thread hold the event loop off for that long at every hand-over.
    sys.setswitchinterval(0.0005)

    from serving.app import create_app

    config = uvicorn.Config(
        create_app(settings),
        host=host,
        port=port,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        log_config=LOG_CONFIG,
        log_level="info",
        timeout_keep_alive=5,
        timeout_graceful_shutdown=settings.graceful_timeout_s,  # SIGTERM: in-flight requests finish
        server_header=False,
        # X-Forwarded-Proto/-For count only from these proxies: the scheme decides the cookie's Secure flag
        # (unless REPRADAR_COOKIE_SECURE says) and the dashboard's same-origin check.
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
    )
    # uvicorn.Config has just configured logging. Warnings (a library's, on the first batch job) would go
    # to stderr as they are, several lines without a time; a worker process (spawned: it never ran the
    # console script's main) would also print the known PySpark one on every job: silenced as
    # repradar.cli.quiet_known_warnings does (an import of pyspark.pandas warns; RepRadar never uses it).
    warnings.filterwarnings(
        "ignore", message="PySpark does not yet fully support pandas", category=FutureWarning
    )
    logging.captureWarnings(True)
    return config


def reuseport_socket(host: str, port: int) -> socket.socket:
    # IPPROTO_TCP given explicitly: uvicorn sets TCP_NODELAY only on sockets that name it. The family is the
    # host's (an IPv6 address such as ::1 or :: needs AF_INET6).
    family, _, _, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(address)
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def check_port(host: str, port: int) -> None:
    """Refuse (UserError) an address that is in use or not this host's, before anything starts: with
    SO_REUSEPORT a second `serve --workers N` on a busy port would otherwise share it with the first,
    silently, and one worker would fail only after migrating and starting up."""
    from repradar.errors import UserError

    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        # no SO_REUSEPORT here: a listener holding the port, with it or without, makes bind fail
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
    except OSError as exc:  # gaierror included: a host name that does not resolve
        if exc.errno == errno.EADDRINUSE:
            what = (
                "another `repradar serve` or another program holds the port: stop it, or choose another "
                "with --port (REPRADAR_API_PORT)"
            )
        else:
            what = "give --host (REPRADAR_API_HOST) an address of this host, e.g. 127.0.0.1 or 0.0.0.0"
        raise UserError(f"cannot listen on {host}:{port}: {exc.strerror or exc}; {what}") from None


def _die_with_parent(parent: int) -> None:
    """Linux: this worker gets SIGTERM when the supervising process dies, even by SIGKILL, instead of
    serving the port on its own, unsupervised, for ever."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the supervisor's SIGTERM is the only way
        return
    if os.getppid() != parent:  # it died before the request took effect
        os.kill(os.getpid(), signal.SIGTERM)


def _worker(settings_data: dict, host: str, port: int, parent: int | None = None) -> None:
    import uvicorn

    if parent is not None:
        _die_with_parent(parent)
    settings = Settings(**settings_data)
    try:
        server = uvicorn.Server(_config(settings, host, port))
        sock = reuseport_socket(host, port)
    except Exception:  # logged once; the supervisor stops rather than start the same failure again
        log.exception("worker could not start")
        sys.exit(STARTUP_FAILED)
    server.run(sockets=[sock])
    if not server.started:  # uvicorn has logged why
        sys.exit(STARTUP_FAILED)


def check_other_settings(settings: Settings) -> None:
    """Read REPRADAR_REPORT_* (the reports the service makes) and, with job alerts on, REPRADAR_ALERTS_*
    now: a value that does not read stops the start (exit 2, naming the variable) rather than failing
    each report or each batch's alerts later."""
    from reporting.settings import AlertSettings, ReportSettings

    ReportSettings()
    if settings.job_alerts:
        AlertSettings()


def prepare(settings: Settings) -> None:
    """Migrate the database once, before any worker starts (workers then find it current); with
    REPRADAR_DB_AUTO_MIGRATE=false refuse (exit 2) a database that is not current."""
    from serving.db.engine import make_engine
    from serving.db.migrate import ensure_current

    engine = make_engine(settings)
    try:
        ensure_current(engine, settings.db_auto_migrate)
    finally:
        engine.dispose()


# MLflow's own HTTP client retries a server that is down 7 times with doubling waits and gives each
# request 120 s: several minutes in which a request holds one of the service's few worker threads. The
# service answers 503 sooner instead (an operator's own MLFLOW_HTTP_REQUEST_* settings are kept).
MLFLOW_HTTP_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
}


def bound_mlflow_waits() -> None:
    """Bound how long one call to an MLflow server that is down may take in this process and its workers."""
    for name, value in MLFLOW_HTTP_DEFAULTS.items():
        os.environ.setdefault(name, value)


def run(
    settings: Settings, host: str | None = None, port: int | None = None, workers: int | None = None
) -> int:
    """Serve until SIGTERM/SIGINT; returns the exit status."""
    import uvicorn

    host = host or settings.api_host
    port = port or settings.api_port
    workers = workers or settings.api_workers
    check_port(host, port)
    check_other_settings(settings)
    bound_mlflow_waits()
    prepare(settings)
    if workers == 1:
        server = uvicorn.Server(_config(settings, host, port))
        server.run()
        return 0 if server.started else 1  # a failed start-up: uvicorn has logged why
    return _supervise(settings, host, port, workers)


# A worker's exit status when its start-up failed (the lifespan: the database, the job runner): starting
# another would fail the same way, so the service stops with status 1 for its own supervisor to see.
STARTUP_FAILED = 3


def _supervise(settings: Settings, host: str, port: int, workers: int) -> int:
    """Run `workers` processes until SIGTERM/SIGINT, which is passed on to them. A worker that dies on its
    own (killed, out of memory, a crash) is logged and replaced, so the service keeps its N processes."""
    import logging.config
    from multiprocessing.connection import wait

    logging.config.dictConfig(LOG_CONFIG)  # the supervisor's own lines look like the workers'
    ctx = multiprocessing.get_context("spawn")
    data = settings.model_dump()
    procs: dict[int, multiprocessing.process.BaseProcess] = {}
    stopping = False

    def start() -> int:
        p = ctx.Process(target=_worker, args=(data, host, port, os.getpid()), daemon=False)
        p.start()
        procs[p.pid] = p
        return p.pid

    pids = [start() for _ in range(workers)]
    where = f"[{host}]" if ":" in host else host  # an IPv6 address, as a URL writes it
    # a log line like the workers' (time, level, process), not a bare print among them
    log.info("%s workers on http://%s:%s (pids %s)", workers, where, port, ", ".join(map(str, pids)))

    def forward(signum, _frame):
        nonlocal stopping
        stopping = True
        for p in list(procs.values()):
            if p.is_alive():
                os.kill(p.pid, signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    status = 0
    while procs:
        ready = wait([p.sentinel for p in procs.values()])
        for pid, p in list(procs.items()):
            if p.sentinel not in ready:
                continue
            p.join()
            del procs[pid]
            code = p.exitcode or 0
            if stopping:  # ended by the signal passed on (uvicorn re-raises it) or cleanly: a normal stop
                if code not in (0, -signal.SIGTERM, -signal.SIGINT):
                    status = 1
                continue
            how = f"signal {-code}" if code < 0 else f"status {code}"
            if code == STARTUP_FAILED:
                log.error("worker %s could not start; stopping the service", pid)
                status = 1
                forward(signal.SIGTERM, None)
                continue
            log.error("worker %s ended with %s; started worker %s in its place", pid, how, start())
    return status


if __name__ == "__main__":  # pragma: no cover - `python -m serving.server` for debugging
    sys.exit(run(Settings()))
