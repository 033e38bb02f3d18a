"""Shared fixtures: a real database per test module, on SQLite and on PostgreSQL; and ``fake``,
a local server speaking the LLM providers' protocols (``providers/fake_servers.py``).

The ``db`` fixture is parametrised over both databases; every storage test runs twice. Each
module gets a fresh SQLite file or a fresh PostgreSQL schema, migrated to head. PostgreSQL is
at ``FLOWLOOM_TEST_POSTGRES_URL`` (default ``postgresql://postgres@127.0.0.1:5432/postgres``);
when it is unreachable its tests skip, except under ``CI``, where they fail.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from outagekit import Outage, outage_database
from pgkit import drop_postgres_schema, make_postgres_database, require_postgres
from providers.fake_servers import FakeServer, running_server

from flowloom.storage.database import Database
from flowloom.storage.migrate import upgrade_database


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def db_kind(request: pytest.FixtureRequest) -> str:
    if request.param == "postgresql":
        require_postgres()
    return str(request.param)


@pytest.fixture(scope="module")
async def empty_db(
    db_kind: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Database]:
    """A fresh, empty database (no tables) of the parametrised kind."""
    if db_kind == "sqlite":
        path: Path = tmp_path_factory.mktemp("db") / "flowloom.db"
        database = Database(f"sqlite:///{path}")
        yield database
        await database.dispose()
        return
    schema = f"t_{secrets.token_hex(6)}"
    database = await make_postgres_database(schema)
    yield database
    await database.dispose()
    await drop_postgres_schema(schema)


@pytest.fixture(scope="module")
async def db(empty_db: Database) -> AsyncIterator[Database]:
    """A fresh database of the parametrised kind, migrated to head."""
    await upgrade_database(empty_db)
    return empty_db


@pytest.fixture
def blob_dir(tmp_path: Path) -> Path:
    path = tmp_path / "blobs"
    path.mkdir()
    return path


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeServer]:
    """One fake provider server per test module; call ``fake.reset()`` between tests."""
    with running_server() as server:
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
def outage_kind(request: pytest.FixtureRequest) -> str:
    if request.param == "postgresql":
        require_postgres()  # outside the event loop: it runs one of its own
    return str(request.param)


@pytest.fixture
async def outage(outage_kind: str, tmp_path: Path) -> AsyncIterator[Outage]:
    """A database of either kind that the test can take away and give back (outagekit.py)."""
    async with outage_database(outage_kind, tmp_path) as found:
        yield found
