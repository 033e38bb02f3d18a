"""PostgreSQL for tests: where it is, whether it answers, and fresh schemas to test in.

Imported by tests/conftest.py and by tests that need a schema of their own (crash tests, a
second database). Under ``CI`` an unreachable PostgreSQL fails the test instead of skipping it.
"""

from __future__ import annotations

import asyncio
import os

import pytest

from flowloom.storage.database import Database

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
