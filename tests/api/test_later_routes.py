"""Routes loaded once the app answers (``flowloom.api.later_routes``, what ``flowloom serve``
does with ``create_app(routes_after_start=True)``): a request that arrives while they load
waits and gets its route's answer, never a 404; FastAPI's own document lists every route;
a module that cannot be loaded makes those requests fail instead of hang; the served app's
routes and document are those of an app that includes them at once."""

from __future__ import annotations

import asyncio
import gc
import importlib
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from flowloom.api import API_PREFIX, create_app
from flowloom.api import later_routes as later_module
from flowloom.api.later_routes import RoutesLoadedLater
from flowloom.settings import Settings

_count = 0


@pytest.fixture
def route_module(tmp_path: Path) -> Iterator[str]:
    """The name of a fresh module (not imported yet) with a router answering ``GET /ping``."""
    global _count
    _count += 1
    name = f"later_routes_module_{_count}"
    (tmp_path / f"{name}.py").write_text(
        "from fastapi import APIRouter\n"
        "router = APIRouter()\n"
        "@router.get('/ping')\n"
        "async def ping() -> dict[str, str]:\n"
        "    return {'pong': 'yes'}\n"
    )
    sys.path.insert(0, str(tmp_path))
    try:
        yield name
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop(name, None)


class _Gate:
    """Holds ``ensure_imported`` on its thread until opened; counts what finished."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.open = threading.Event()

    def ensure_imported(self, *names: str) -> None:
        self.entered.set()
        assert self.open.wait(10)
        for name in names:
            importlib.import_module(name)


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch) -> _Gate:
    held = _Gate()
    monkeypatch.setattr(later_module, "ensure_imported", held.ensure_imported)
    return held


def _client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


def _small_app(module: str, calls: list[str]) -> tuple[FastAPI, RoutesLoadedLater]:
    app = FastAPI(openapi_url="/openapi.json", docs_url=None, redoc_url=None)
    later = RoutesLoadedLater(
        app,
        [module],
        prefix="/v1",
        then=lambda _: calls.append("then"),
        finally_=lambda: calls.append("finally"),
    )

    @app.get("/early")
    async def early() -> dict[str, bool]:
        return {"early": True}

    return app, later


async def test_a_request_while_the_routes_load_waits_for_its_route(
    route_module: str, gate: _Gate
) -> None:
    calls: list[str] = []
    app, later = _small_app(route_module, calls)
    async with _client(app) as client:
        loading = later.start()
        waiting = asyncio.ensure_future(client.get("/v1/ping"))
        document = asyncio.ensure_future(client.get("/openapi.json"))
        assert await asyncio.to_thread(gate.entered.wait, 10)
        early = await client.get("/early")  # what is in already answers meanwhile
        await asyncio.sleep(0.05)

        assert early.json() == {"early": True}
        assert not waiting.done()
        assert not document.done()
        assert not later.loaded
        assert calls == []

        gate.open.set()
        answer = await waiting
        await loading

        assert answer.status_code == 200
        assert answer.json() == {"pong": "yes"}
        assert "/v1/ping" in (await document).json()["paths"]
        assert later.loaded
        assert calls == ["then", "finally"]
        assert (await client.get("/v1/nothing")).status_code == 404
        assert (await client.get("/v1/ping/")).status_code == 307  # slashes as usual


async def test_the_first_waiting_request_starts_the_loading_if_nothing_did(
    route_module: str,
) -> None:
    app, later = _small_app(route_module, [])
    async with _client(app) as client:
        answer = await client.get("/v1/ping")

    assert answer.json() == {"pong": "yes"}
    assert later.loaded


async def test_routes_that_cannot_load_fail_their_requests_and_still_run_finally(
    gate: _Gate, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[str] = []
    app, later = _small_app("later_routes_module_that_does_not_exist", calls)
    gate.open.set()
    async with _client(app) as client:
        loading = later.start()
        await asyncio.gather(loading, return_exceptions=True)
        with pytest.raises(ModuleNotFoundError):
            await client.get("/v1/ping")  # the transport raises what the app raised
        early = await client.get("/early")

    assert early.status_code == 200
    assert not later.loaded
    assert calls == ["finally"]
    assert "the API's routes could not be loaded" in caplog.text


@pytest.fixture
async def served(tmp_path: Path, gate: _Gate) -> AsyncIterator[tuple[FastAPI, _Gate]]:
    """The app as ``flowloom serve`` makes it, started, its later routes held at the gate."""
    settings = Settings(data_dir=tmp_path / "data")
    app = create_app(settings, routes_after_start=True)
    async with app.router.lifespan_context(app):
        yield app, gate


async def test_the_served_app_answers_health_at_once_and_every_route_once_loaded(
    served: tuple[FastAPI, _Gate], tmp_path: Path
) -> None:
    app, gate = served
    async with _client(app) as client:
        assert await asyncio.to_thread(gate.entered.wait, 10)
        health = await client.get("/healthz")
        providers = asyncio.ensure_future(client.get(f"{API_PREFIX}/auth/providers"))
        document = asyncio.ensure_future(client.get(f"{API_PREFIX}/openapi.json"))
        page = asyncio.ensure_future(client.get("/workflows/wf_1"))
        await asyncio.sleep(0.05)
        assert health.status_code == 200
        assert not providers.done()
        assert not document.done()
        assert not page.done()

        gate.open.set()
        assert (await providers).status_code == 200
        served_paths = (await document).json()["paths"]
        assert (await page).status_code in (200, 503)  # the web UI, built or not
        assert (await client.get(f"{API_PREFIX}/no-such-thing")).status_code == 404

    eager = create_app(Settings(data_dir=tmp_path / "eager"))
    assert served_paths == eager.openapi()["paths"]
    assert sorted(_described(app)) == sorted(_described(eager))


def _described(app: FastAPI) -> list[str]:
    """Each of the app's routes as its type and path (an included router has none)."""
    return [f"{type(route).__name__} {getattr(route, 'path', '')}" for route in app.router.routes]


async def test_the_served_app_turns_the_collector_on_once_its_later_routes_are_in(
    tmp_path: Path, gate: _Gate
) -> None:
    gc.disable()  # as the flowloom command leaves it (flowloom.cli.entry)
    try:
        app = create_app(
            Settings(data_dir=tmp_path / "data"), freeze_gc=True, routes_after_start=True
        )
        async with app.router.lifespan_context(app), _client(app) as client:
            assert await asyncio.to_thread(gate.entered.wait, 10)
            assert not gc.isenabled()

            gate.open.set()
            assert (await client.get(f"{API_PREFIX}/auth/providers")).status_code == 200
            assert gc.isenabled()
            assert gc.get_freeze_count() > 0
    finally:
        gc.enable()
        gc.unfreeze()
