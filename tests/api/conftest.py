"""A real app per test module, on SQLite and on PostgreSQL (the ``db`` fixture), its lifespan
running (migrations checked, engine started), reached through httpx's ASGI transport."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import httpx
import pytest
from apikit import client_for, make_settings
from fastapi import FastAPI

from flowloom.api import create_app
from flowloom.settings import Settings
from flowloom.storage.database import Database


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return make_settings(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="module")
async def app(db: Database, settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings, db=db)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture(scope="module")
def new_client(
    app: FastAPI,
) -> Callable[[], AbstractAsyncContextManager[httpx.AsyncClient]]:
    """Makes clients with their own cookie jars (one per browser, so to speak)."""
    return lambda: client_for(app)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(app) as c:
        yield c


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path
