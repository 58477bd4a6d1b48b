"""The FastAPI application: `create_app(settings)` builds it; importing this module starts nothing.

The lifespan migrates the database (when allowed), starts the job runner, loads the champion and
keeps watching its alias. The HTML dashboard (a later issue) mounts its own routers at `/`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import APIRouter, Depends, FastAPI
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from repradar.settings import Settings
from serving import http_errors
from serving.auth import FailureLimit
from serving.db.engine import make_engine, make_sessionmaker
from serving.deps import reject_duplicate_keys, reject_nul, reject_unknown_query
from serving.jobs import JobRunner
from serving.middleware import API_PREFIX, Limiter, Metrics, Runtime, ServiceMiddleware
from serving.modelholder import ModelHolder, ModelSource, RegistrySource
from serving.routers import audit, docs, early_warning, health, interventions, jobs, me, models, reps, users
from serving.routing import with_head
from serving.store import ChartCache

log = logging.getLogger("repradar.serving")
WORKER_THREADS = 8
FIRST_LOAD_WAIT_S = 2.0  # a quick first load is waited for (no 503 at start); a slow one goes on behind

DESCRIPTION = """Early warning for sales reps drifting off target: risk, reasons, interventions.

Every route under `/api/v1` needs `Authorization: Bearer <token>` (tokens come from
`repradar users add`). Roles: `manager` (own reporting subtree), `hr` (everything, batch jobs, audit),
`data_scientist` (models), `admin` (users). Every response carries `X-Model-Version`, the champion
that served it, and `X-Request-ID`. Every GET operation also answers `HEAD` (the same status and headers,
no body); those are not listed separately.
"""


def api_router() -> APIRouter:
    api = APIRouter(
        prefix=API_PREFIX, dependencies=[Depends(reject_unknown_query), Depends(reject_duplicate_keys)]
    )
    for module in (me, early_warning, reps, interventions, jobs, models, audit, users):
        api.include_router(with_head(module.router))
    return api


def create_app(settings: Settings | None = None, *, model_source: ModelSource | None = None) -> FastAPI:
    """The service for `settings` (default: from the environment); `model_source` replaces the registry in tests."""
    if settings is None:
        from repradar.settings import get_settings

        settings = get_settings()
    engine = make_engine(settings)
    sessions = make_sessionmaker(engine)
    holder = ModelHolder(model_source or RegistrySource(settings))
    runner = JobRunner(settings, sessions)
    metrics = Metrics()
    runtime = Runtime(settings=settings, holder=holder, metrics=metrics)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        from serving.db.migrate import ensure_current

        await asyncio.to_thread(ensure_current, engine, settings.db_auto_migrate)
        runtime.limiter = Limiter(settings.max_in_flight, settings.max_waiting, settings.queue_timeout_s)
        # Sync endpoints share one GIL: a few threads give the same throughput as many, with less
        # contention (requests beyond them wait in order, bounded by the limiter above).
        anyio.to_thread.current_default_thread_limiter().total_tokens = WORKER_THREADS
        await asyncio.to_thread(runner.start)
        # The first load takes seconds to a minute (registry, artifacts, SHAP): serve meanwhile, so
        # that /health/live answers and /health/ready says 503 until the champion is in.
        first = asyncio.create_task(_load(holder, metrics))
        await asyncio.wait({first}, timeout=FIRST_LOAD_WAIT_S)
        tasks = [
            first,
            asyncio.create_task(_watch_model(holder, metrics, settings.model_poll_s)),
            asyncio.create_task(_beat(runner, settings.job_heartbeat_s)),
        ]
        try:
            yield
        finally:
            for t in tasks:
                t.cancel()
            for t in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await t
            await asyncio.to_thread(runner.stop)
            engine.dispose()

    app = FastAPI(
        title="RepRadar",
        version="1",
        description=DESCRIPTION,
        lifespan=lifespan,
        dependencies=[Depends(reject_nul)],
        docs_url=None,  # served by serving.routers.docs, without a CDN
        redoc_url=None,
        # one address per resource: a trailing slash is a 404 naming the address (serving.http_errors), not
        # a 307 that some clients do not follow for a POST and whose Location says http:// behind a proxy
        redirect_slashes=False,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessions = sessions
    app.state.holder = holder
    app.state.runner = runner
    app.state.metrics = metrics
    app.state.charts = ChartCache()
    # counted in the database: every worker process (`serve --workers N`) shares one allowance per address
    app.state.signin_limit = FailureLimit(
        sessions, "signin", settings.signin_max_failures, settings.signin_window_s
    )
    app.state.token_limit = FailureLimit(
        sessions, "api", settings.api_max_token_failures, settings.signin_window_s
    )
    http_errors.install(app)
    app.include_router(with_head(health.router))
    docs.mount(app)
    app.include_router(api_router())
    from serving import web  # the HTML dashboard: pages at `/`, static files at `/static`

    web.mount(app)
    app.add_middleware(ServiceMiddleware, runtime=runtime)
    return app


async def _load(holder: ModelHolder, metrics: Metrics) -> None:
    if await holder.refresh():
        metrics.model_swaps.inc()


async def _watch_model(holder: ModelHolder, metrics: Metrics, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        await _load(holder, metrics)


async def _beat(runner: JobRunner, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            await asyncio.to_thread(runner.beat)
        except (OperationalError, PoolTimeout) as exc:  # an outage, said once a beat on one line, not a bug
            log.error("job heartbeat failed: the database is unavailable (%s)", _first_line(exc))
        except Exception:  # a database hiccup must not end the heartbeat for good
            log.exception("job heartbeat failed")


def _first_line(exc: Exception) -> str:
    """The driver's own message, without SQLAlchemy's statement and parameters."""
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def app_from_env() -> FastAPI:
    """Factory for `uvicorn --factory serving.app:app_from_env` (settings from REPRADAR_* variables)."""
    return create_app(Settings())
