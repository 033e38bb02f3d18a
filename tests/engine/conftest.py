"""The engine every engine test module uses unless it needs other options: the test node types
registered, closed after each test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from enginekit import registry

from flowloom.engine import Engine
from flowloom.storage.database import Database


@pytest.fixture
async def engine(db: Database) -> AsyncIterator[Engine]:
    engine = Engine(db, registry())
    yield engine
    await engine.close()
