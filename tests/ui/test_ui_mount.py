"""The built web UI is served at ``/`` without shadowing anything of the API."""

from __future__ import annotations

import secrets
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from flowloom.api import create_app
from flowloom.settings import Settings
from flowloom.webui import mount_web_ui


def tiny_app(static_dir: Path) -> FastAPI:
    app = FastAPI()

    @app.get("/api/v1/things")
    async def things() -> dict[str, str]:
        return {"kind": "api"}

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    mount_web_ui(app, static_dir=static_dir)
    return app


def client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ui.test")


@pytest.fixture
def built(tmp_path: Path) -> Path:
    static = tmp_path / "static"
    (static / "assets").mkdir(parents=True)
    (static / "index.html").write_text("<!doctype html><title>flowloom</title>")
    (static / "assets" / "app-1234.js").write_text("console.log('hi')")
    (tmp_path / "secret.txt").write_text("not for the web")
    return static


async def test_client_routes_get_the_app_and_assets_are_cached_for_good(built: Path) -> None:
    async with client(tiny_app(built)) as http:
        for path in ("/", "/workflows/wf_123", "/api-keys"):
            page = await http.get(path)
            assert page.status_code == 200, path
            assert "<title>flowloom</title>" in page.text
            assert page.headers["cache-control"] == "no-cache"
        asset = await http.get("/assets/app-1234.js")
        assert asset.text == "console.log('hi')"
        assert "immutable" in asset.headers["cache-control"]
        assert (await http.get("/assets/gone-0000.js")).status_code == 404


async def test_the_api_and_operations_paths_are_never_the_app(built: Path) -> None:
    async with client(tiny_app(built)) as http:
        assert (await http.get("/api/v1/things")).json() == {"kind": "api"}
        assert (await http.get("/healthz")).json() == {"status": "ok"}
        for path in ("/api/v1/nothing-here", "/api", "/metrics"):
            missing = await http.get(path)
            assert missing.status_code == 404, path
            assert "flowloom</title>" not in missing.text
        # A wrong method on an API path stays 405, and no method but GET gets the app.
        assert (await http.post("/api/v1/things")).status_code == 405
        assert (await http.post("/workflows/wf_1")).status_code == 404


async def test_no_file_outside_the_build_is_served(built: Path) -> None:
    async with client(tiny_app(built)) as http:
        for path in ("/../secret.txt", "/%2e%2e/secret.txt", "/assets/../../secret.txt"):
            answer = await http.get(path)
            assert "not for the web" not in answer.text, path


async def test_without_a_build_the_root_says_how_to_make_one(tmp_path: Path) -> None:
    async with client(tiny_app(tmp_path / "nothing")) as http:
        root = await http.get("/")
        assert root.status_code == 503
        assert "make install" in root.text
        assert (await http.get("/api/v1/things")).status_code == 200


async def test_the_real_app_keeps_problem_json_for_unknown_api_paths(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, secret_key=secrets.token_urlsafe(32))
    async with client(create_app(settings)) as http:
        missing = await http.get("/api/v1/no-such-thing")
        assert missing.status_code == 404
        assert missing.headers["content-type"].startswith("application/problem+json")
        schema = await http.get("/api/v1/openapi.json")
        assert schema.json()["info"]["title"] == "flowloom"
