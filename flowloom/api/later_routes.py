"""The API's route modules loaded once the server answers: ``RoutesLoadedLater``.

Importing the route modules (their schemas, services and FastAPI's analysis of every route's
signature) is some 0.2 s of CPU, a fifth of a server's start. ``flowloom serve`` includes at
once only what a probe or a webhook needs (``/healthz``, ``/metrics``, the webhook routes),
imports the others while it would wait for its database anyway (``flowloom.cli.serve``), and
those still left on a thread as soon as the app has started, while the loop already answers.
A request for anything else that arrives before they are in waits for them: it is never
answered 404 for a route that is still loading, and then goes through the routes as any
request does (a wrong slash is redirected, an unknown path gets the usual fallback). If the
modules cannot be loaded, every such request fails with that error (500) instead of waiting.

The route modules are imported through :mod:`flowloom.heavy_imports`, as the warm-up and the
nodes' own lazy imports are, so no two threads interleave the import of one package.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
from collections.abc import Callable, Sequence

from fastapi import APIRouter, FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from flowloom.heavy_imports import ensure_imported

__all__ = ["RoutesLoadedLater", "include_routes"]

_log = logging.getLogger(__name__)


def include_routes(app: FastAPI, modules: Sequence[str], *, prefix: str) -> None:
    """Include the ``router`` of each module named in ``modules`` (imported here if it is not
    yet), in that order, under ``prefix``."""
    for name in modules:
        router = getattr(importlib.import_module(name), "router", None)
        if not isinstance(router, APIRouter):
            raise TypeError(f"{name} has no APIRouter named router")
        app.include_router(router, prefix=prefix)


class RoutesLoadedLater:
    """``modules``' routes, included in ``app`` by :meth:`start` (see the module docstring).

    Until then the app's router falls back to waiting for them. The routes ``app`` has when
    this is made (FastAPI's own: the OpenAPI document, which must list every route, and its
    docs page) are held back with them and put after them. Once they are in, ``then`` is
    called with the app (what must come after every route: the web UI's fallback), and
    ``finally_`` whether they loaded or not.
    """

    def __init__(
        self,
        app: FastAPI,
        modules: Sequence[str],
        *,
        prefix: str,
        then: Callable[[FastAPI], None],
        finally_: Callable[[], None],
    ) -> None:
        self._app = app
        self._modules = tuple(modules)
        self._prefix = prefix
        self._then = then
        self._finally = finally_
        self._loading: asyncio.Task[None] | None = None
        self._fallback: ASGIApp = app.router.default
        self._held = list(app.router.routes)
        app.router.routes.clear()
        app.router.default = self._wait_then_route

    @property
    def loaded(self) -> bool:
        """Whether the routes are in (False while loading, and when loading failed)."""
        loading = self._loading
        return (
            loading is not None
            and loading.done()
            and not loading.cancelled()
            and loading.exception() is None
        )

    def start(self) -> asyncio.Task[None]:
        """Begin loading on a thread, if it has not begun; the task ends once they are in."""
        if self._loading is None:
            self._loading = asyncio.get_running_loop().create_task(
                self._load(), name="flowloom route loading"
            )
        return self._loading

    async def _load(self) -> None:
        try:
            await asyncio.to_thread(ensure_imported, *self._modules)
            include_routes(self._app, self._modules, prefix=self._prefix)
            self._app.router.routes.extend(self._held)
            self._app.router.default = self._fallback
            self._then(self._app)
        except Exception:
            _log.exception("the API's routes could not be loaded")
            raise
        finally:
            self._finally()

    async def _wait_then_route(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The router's fallback while loading: wait, then route the request again."""
        await asyncio.shield(self.start())
        await self._app.router(scope, receive, send)
