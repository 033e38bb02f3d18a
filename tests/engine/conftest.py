"""The engine every engine test module uses unless it needs other options: the test node types
registered, closed after each test; and ``place``, a fresh database a crash test's child
process can open too."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from crashkit import Place
from enginekit import registry
from pgkit import POSTGRES_URL, drop_postgres_schema, make_postgres_database

from flowloom.engine import Engine
from flowloom.storage.database import Database
from flowloom.storage.migrate import upgrade_database


@pytest.fixture
async def engine(db: Database) -> AsyncIterator[Engine]:
    engine = Engine(db, registry())
    yield engine
    await engine.close()


@pytest.fixture
async def place(db_kind: str, tmp_path: Path) -> AsyncIterator[Place]:
    if db_kind == "sqlite":
        url = f"sqlite:///{tmp_path / 'crash.db'}"
        db = Database(url)
        await upgrade_database(db)
        yield Place(db, url, "-")
        await db.dispose()
        return

    schema = f"t_{secrets.token_hex(6)}"
    db = await make_postgres_database(schema)
    await upgrade_database(db)
    yield Place(db, POSTGRES_URL, schema)
    await db.dispose()
    await drop_postgres_schema(schema)
