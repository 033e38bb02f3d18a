"""``flowloom serve [--host 127.0.0.1] [--port 8000]``: the API and the engine in one process.

Before serving (in a child process, while this one imports the API: ``prepared_app``), the
embedded SQLite database is migrated (a PostgreSQL one must already be at the newest revision),
and the local account (``owner@flowloom.localhost``, an admin) gets a random password the first
time, printed once to the console and stored only as an argon2id hash (made and stored once
the server has started; a sign-in waits for it); never a default password. The example
workflows are loaded into it (those it has not got yet). Then uvicorn serves the app; SIGTERM
or Ctrl-C shuts down cleanly: requests in flight finish, the engine closes (running nodes are
cancelled and left resumable: the next start runs them again), the database is disposed of.
"""

from __future__ import annotations

import asyncio
import secrets
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TextIO, TypeVar

from sqlalchemy.orm import configure_mappers

# What prepare uses is imported with this module, before prepared_app forks: the server imports
# all of it too (the API does), and its child then finds it loaded instead of importing it again.
from flowloom import example_workflows
from flowloom.cli.forked import Forked
from flowloom.heavy_imports import ensure_imported
from flowloom.local_account import local_owner
from flowloom.settings import Settings
from flowloom.storage.database import Database
from flowloom.storage.startup import prepare_database

if TYPE_CHECKING:
    import uvicorn
    from fastapi import FastAPI

__all__ = [
    "FirstStart",
    "import_fastapi",
    "import_while",
    "prepare",
    "prepared",
    "prepared_app",
    "serve",
]

T = TypeVar("T")

_GRACEFUL_SHUTDOWN_S = 10


@dataclass(frozen=True, slots=True)
class FirstStart:
    """What ``prepare`` did: the local account, its new password (None if it had one; stored
    by the server once started), and how many example workflows were loaded."""

    email: str
    user_id: str
    password: str | None
    examples_added: int


async def prepare(settings: Settings) -> FirstStart:
    """Migrate (SQLite, copied aside first) or check (PostgreSQL) the database
    (``prepare_database``); set up the local account and its examples. A new password, when
    the account has none, is only made here: the server hashes and stores it once started
    (``flowloom.api.first_password``)."""
    db = Database.from_settings(settings)
    try:
        await db.ping()
        await prepare_database(db, settings)
        async with db.write() as session:
            owner = await local_owner(session)
            added = await example_workflows.install_examples(session, owner_id=owner.id)
            password = None if owner.password_hash is not None else secrets.token_urlsafe(18)
            return FirstStart(
                email=owner.email, user_id=owner.id, password=password, examples_added=len(added)
            )
    finally:
        await db.dispose()


def announce(first: FirstStart, *, url: str, out: TextIO) -> None:
    """Tell the person at the console where to go and, the first time, how to sign in."""
    print(f"flowloom is starting at {url}", file=out)
    if first.password is not None:
        print(f"first start: sign in as {first.email} with password: {first.password}", file=out)
        print("  (shown this once; only its argon2id hash is stored)", file=out)
    if first.examples_added:
        print(f"loaded {first.examples_added} example workflow(s) into {first.email}", file=out)
    out.flush()


def prepared_app(settings: Settings) -> tuple[FirstStart, FastAPI]:
    """``prepared``, for the app alone."""
    return prepared(settings, lambda app: app)


def prepared(settings: Settings, then: Callable[[FastAPI], T]) -> tuple[FirstStart, T]:
    """``prepare`` the database and build the app, and ``then(app)``: the first in a forked
    child process (``flowloom.cli.forked``) while this one imports FastAPI and the API, makes
    the app, configures the ORM's mappers (which its start-up uses), runs ``then`` (the
    server's own setting up) and, until the child answers, imports the route modules the app
    loads after its start (``import_while``), so a first start's database work (the schema,
    the examples checked with Jinja2) runs on another core instead of before all that. The
    local account's new password, if the child made one, is handed to the app, which stores
    its hash once started (``flowloom.api.first_password``). The child is waited for before
    this returns: nothing serves before the database is ready, and what the child raised is
    raised here, before any error of this side (the child's says more: a data dir that is a
    file fails both, say).
    """
    with Forked.start(lambda: asyncio.run(prepare(settings))) as preparing:
        try:
            import_fastapi()
            from flowloom.api import create_app
            from flowloom.api.app import LATER_ROUTE_MODULES
            from flowloom.api.first_password import FirstPassword

            app = create_app(settings, freeze_gc=True, routes_after_start=True)
            configure_mappers()
            made = then(app)
            import_while(LATER_ROUTE_MODULES, done=preparing.answered)
        except Exception:
            preparing.result()
            raise
        first = preparing.result()
    if first.password is not None:
        app.state.flowloom.first_password = FirstPassword(
            user_id=first.user_id, password=first.password
        )
    return first, made


def import_while(modules: Sequence[str], *, done: Callable[[], bool]) -> list[str]:
    """Import ``modules`` one after another until ``done()``; the names imported here.

    ``prepared`` imports the routes the app would otherwise load once started, in time this
    process would spend waiting for its child: those left are loaded after the start
    (``flowloom.api.later_routes``), and the first answer waits for one module's import at
    most."""
    imported = []
    for name in modules:
        if done():
            break
        ensure_imported(name)
        imported.append(name)
    return imported


def import_fastapi() -> None:
    """Import FastAPI with the pydantic models it defines as it loads (its OpenAPI document's,
    some forty: 35-55 ms of a server's start) deferred, as ``defer_build`` defers flowloom's
    own: each is built when first used, by the first ``/openapi.json``, which takes far longer
    to make in any case. The document is the same. Nothing happens once FastAPI is loaded; with
    a pydantic that keeps its configuration defaults elsewhere, FastAPI is imported as it is.
    """
    if "fastapi" in sys.modules:
        return
    from pydantic._internal import _config

    defaults = getattr(_config, "config_defaults", None)
    if not isinstance(defaults, dict) or "defer_build" not in defaults:
        import fastapi

        return
    before = defaults["defer_build"]
    defaults["defer_build"] = True
    try:
        import fastapi  # noqa: F401
    finally:
        defaults["defer_build"] = before


def serve(
    settings: Settings, *, host: str = "127.0.0.1", port: int = 8000, out: TextIO | None = None
) -> None:
    """Prepare the database, then serve until SIGTERM or Ctrl-C (see the module docstring).

    Raises ConfigurationError (or StorageError) before serving if the database cannot be used.
    """
    from flowloom.native_heap import limit_arenas

    limit_arenas()  # before the first thread (flowloom.native_heap), and the fork

    first, server = prepared(settings, lambda app: _uvicorn_server(app, host=host, port=port))
    stream = out or sys.stdout
    shown_host = f"[{host}]" if ":" in host else host
    announce(first, url=f"http://{shown_host}:{port}/", out=stream)
    server.run()


def _uvicorn_server(app: FastAPI, *, host: str, port: int) -> uvicorn.Server:
    """uvicorn's server for ``app``, its configuration loaded (protocols imported, the app
    wrapped): what ``Server.run`` would do first, done while the database is prepared."""
    import uvicorn

    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        lifespan="on",
        log_level="info",
        access_log=False,
        timeout_graceful_shutdown=_GRACEFUL_SHUTDOWN_S,
        # No route takes a WebSocket: "auto" would load the websockets library all the same
        # (30 modules, 13 ms, 0.9 MiB resident). An upgrade request is answered as plain HTTP.
        ws="none",
    )
    config.load()
    return uvicorn.Server(config)
