"""Shared fixtures: a real database per test module, on SQLite and on PostgreSQL.

The ``db`` fixture is parametrised over both databases; every storage test runs twice. Each
module gets a fresh SQLite file or a fresh PostgreSQL schema, migrated to head. PostgreSQL is
at ``FLOWLOOM_TEST_POSTGRES_URL`` (default ``postgresql://postgres@127.0.0.1:5432/postgres``);
when it is unreachable its tests skip, except under ``CI``, where they fail.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from flowloom.storage.database import Database
from flowloom.storage.migrate import upgrade_database

POSTGRES_URL = os.environ.get(
    "FLOWLOOM_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def _postgres_reachable() -> bool:
    async def probe() -> None:
        db = Database(POSTGRES_URL)
        try:
            await db.ping()
        finally:
            await db.dispose()

    try:
        asyncio.run(asyncio.wait_for(probe(), timeout=5))
    except Exception:
        return False
    return True


_PG_OK: bool | None = None


def require_postgres() -> None:
    """Skip (or, under CI, fail) the calling test when PostgreSQL cannot be reached."""
    global _PG_OK
    if _PG_OK is None:
        _PG_OK = _postgres_reachable()
    if not _PG_OK:
        message = f"PostgreSQL unreachable at {POSTGRES_URL}"
        if os.environ.get("CI"):
            pytest.fail(message + " (CI is set, so this is an error)")
        pytest.skip(message)


async def _admin_sql(sql: str) -> None:
    admin = Database(POSTGRES_URL)
    try:
        async with admin.engine.connect() as conn:
            await conn.exec_driver_sql(sql)
            await conn.commit()
    finally:
        await admin.dispose()


async def make_postgres_database(schema: str) -> Database:
    """A Database whose connections live in a fresh schema of the test PostgreSQL."""
    await _admin_sql(f'CREATE SCHEMA "{schema}"')
    return Database(POSTGRES_URL, connect_args={"server_settings": {"search_path": schema}})


async def drop_postgres_schema(schema: str) -> None:
    await _admin_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


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
