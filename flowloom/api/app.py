"""The FastAPI application: ``create_app(settings)``.

The lifespan migrates an embedded SQLite database (a PostgreSQL one must already be at the
newest revision: ``flowloom db upgrade``), starts the engine in process and resumes every run
left unfinished, and on shutdown closes the engine (running nodes are cancelled and left
resumable: the next start runs them again as attempt + 1) and the database.

A ``db`` or ``engine`` passed in belongs to the caller (tests share one database across apps):
the app uses them and leaves them open.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator, Callable
from typing import Final

from fastapi import FastAPI

import flowloom
from flowloom.api.audit_trail import AuditTrail
from flowloom.api.errors import install_error_handlers
from flowloom.api.external_auth import ExternalVerifier
from flowloom.api.input_guard import InputGuard
from flowloom.api.later_routes import RoutesLoadedLater, include_routes
from flowloom.api.limits import BodySizeLimit
from flowloom.api.metrics import Metrics
from flowloom.api.routes import health, hooks, models
from flowloom.api.routes.blobs import UPLOAD_FORM_BYTES
from flowloom.api.security import LoginLimiter
from flowloom.api.state import AppState
from flowloom.engine import Engine
from flowloom.nodes.registry import NodeRegistry, default_registry
from flowloom.nodes.warm import start_warm_up
from flowloom.settings import Settings
from flowloom.storage.blobs import FileBlobStore
from flowloom.storage.database import Database
from flowloom.storage.maintenance.daily import MaintenanceLoop
from flowloom.storage.startup import prepare_database
from flowloom.triggers import ScheduleLoop
from flowloom.webui import mount_web_ui

__all__ = ["API_PREFIX", "create_app"]

API_PREFIX = "/api/v1"

LATER_ROUTE_MODULES: Final = tuple(
    f"flowloom.api.routes.{name}"
    for name in (
        "runs",
        "auth",
        "identity_webhooks",
        "api_keys",
        "workflows",
        "debug",
        "generation",
        "node_types",
        "node_templates",
        "models",
        "users",
        "triggers",
        "integrations",
        "admin",
        "admin_accounts",
        "admin_audit",
        "admin_health",
        "memory",
        "usage",
        "billing",
        "credentials",
        "blobs",
        "agents",
        "oauth",
    )
)
"""The API's route modules after the webhooks', in the order their routes are matched; with
``routes_after_start`` they are loaded once the app answers (``flowloom.api.later_routes``)."""


def _engine_class(settings: Settings) -> type[Engine]:
    """The embedded engine, or with ``executor = "celery"`` the one that queues runs for
    ``flowloom worker`` processes (imported only then: it needs Redis)."""
    if settings.executor == "celery":
        from flowloom.worker.remote import RemoteEngine

        return RemoteEngine
    return Engine


def _after(
    loading: asyncio.Task[None] | None, then: Callable[[Database], None], database: Database
) -> None:
    """``then(database)`` once ``loading`` has ended (at once without it)."""
    if loading is None:
        then(database)
    else:
        loading.add_done_callback(lambda _: then(database))


def create_app(
    settings: Settings,
    *,
    db: Database | None = None,
    engine: Engine | None = None,
    registry: NodeRegistry | None = None,
    freeze_gc: bool = False,
    routes_after_start: bool = False,
) -> FastAPI:
    """The flowloom HTTP API for ``settings``; nothing is opened until the lifespan starts.

    ``freeze_gc`` (what ``flowloom serve`` asks for): once started, move every object made so
    far (modules, routes, schemas, the registry: they live as long as the server) out
    of the garbage collector's reach, so its full passes stay short and do not show in the
    slowest answers, and turn the collector on (the ``flowloom`` command starts with it off:
    ``flowloom.cli.entry``). Not for processes that make many apps (tests).

    ``routes_after_start`` (``flowloom serve`` too): include the health and webhook routes at
    once and the rest of the API (``LATER_ROUTE_MODULES``) once started, those not imported
    yet imported on a thread while the app already answers; a request for them waits until
    they are in (``flowloom.api.later_routes``). With ``freeze_gc``, the collector is turned
    on only once they are in, what loading them left unreachable collected and the rest
    frozen."""
    owns_db = db is None
    database = db if db is not None else Database.from_settings(settings)
    state = AppState(
        settings=settings,
        db=database,
        registry=registry or (engine.registry if engine is not None else default_registry()),
        secret_key=settings.load_secret_key(),
        limiter=LoginLimiter(
            max_per_account=settings.login_max_failures_per_account,
            max_per_address=settings.login_max_failures_per_address,
            window_s=settings.login_failure_window_s,
        ),
        verifier=ExternalVerifier(settings),
        metrics=Metrics(),
    )

    def freeze_at_start() -> None:
        if freeze_gc:
            # Without a collection first: what the start left unreachable is some 1,600
            # objects, not worth a full pass over 190,000 (0.2 s of the start).
            gc.freeze()
            if later is None:
                gc.enable()

    def collect_after_later_routes() -> None:
        if freeze_gc:
            # What loading the routes left unreachable is collected first (frozen, it kept
            # some 0.3 MiB resident for good): a pass over the 40,000 objects made since the
            # start's freeze alone, some 15 ms, once the first answers are out.
            gc.collect()
            gc.freeze()
            gc.enable()

    later: RoutesLoadedLater | None = None

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        loading: asyncio.Task[None] | None = None
        await prepare_database(database, settings)
        await models.seed_model_table(database)
        owns_engine = engine is None
        running = engine or _engine_class(settings).from_settings(
            database, settings, state.registry
        )
        state.engine = running
        state.metrics.start(running.bus)
        warming = start_warm_up()
        schedules = ScheduleLoop(
            database,
            running,
            interval_s=settings.schedule_interval_s,
            grace_s=settings.schedule_grace_s,
        )
        if settings.maintenance_interval_s > 0:
            state.maintenance = MaintenanceLoop(
                database,
                interval_s=settings.maintenance_interval_s,
                blob_store=FileBlobStore(settings.blob_dir),
                archive_dir=settings.retention_archive_dir,
            )
        try:
            await running.resume_unfinished()
            schedules.start()
            if state.maintenance is not None:
                state.maintenance.start()
            freeze_at_start()
            if later is not None:
                loading = later.start()
            if state.first_password is not None:
                # Not beside the first answers: a sign-in waits for the routes first anyway.
                _after(loading, state.first_password.start, database)
            yield
        finally:
            warming.cancel()
            if loading is not None:
                # A thread cannot be stopped; the routes it loads are not left half in.
                await asyncio.gather(loading, return_exceptions=True)
            if state.first_password is not None:
                await state.first_password.finish()  # begun once the routes are in
            if state.maintenance is not None:
                await state.maintenance.stop()
            await schedules.stop()
            await state.metrics.stop()
            if owns_engine:
                await running.close()
            state.engine = None
            if owns_db:
                await database.dispose()

    app = FastAPI(
        title="flowloom",
        version=flowloom.__version__,
        summary="Build AI workflows as graphs, run them, and read every run back.",
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.flowloom = state
    if routes_after_start:
        later = RoutesLoadedLater(
            app,
            LATER_ROUTE_MODULES,
            prefix=API_PREFIX,
            then=mount_web_ui,
            finally_=collect_after_later_routes,
        )
    install_error_handlers(app)
    # The last added runs first: the size limit, then what the body, query, path and headers
    # hold (unstorable text, JSON nested too deep), before any route.
    app.add_middleware(AuditTrail)
    app.add_middleware(InputGuard)
    app.add_middleware(
        BodySizeLimit,
        max_bytes=settings.max_request_body_bytes,
        larger={f"{API_PREFIX}/blobs": settings.max_upload_bytes + UPLOAD_FORM_BYTES},
    )

    # The operations routes (/healthz, /metrics) first: two patterns to try, and FastAPI builds
    # a router's handlers at the first request that tries it, so a health probe answers
    # without building the whole API's.
    app.include_router(health.router)
    # Then routes are matched in this order, one after another: the hottest paths first
    # (webhooks, runs and their history), so their requests do not try a hundred patterns
    # before theirs. Each router is included into the app itself: FastAPI builds every
    # route's dependencies and models again for each level of inclusion, and a shared /api/v1
    # router in between made that three times per route (a fifth of the start-up).
    app.include_router(hooks.router, prefix=API_PREFIX)
    if later is None:
        include_routes(app, LATER_ROUTE_MODULES, prefix=API_PREFIX)
        # The web UI answers only what no route above answers.
        mount_web_ui(app)
    return app
