"""A fresh database for one benchmark, gone afterwards: SQLite in a temporary file, or
PostgreSQL in a new schema of the server at ``postgres_url``, dropped at the end."""

from __future__ import annotations

import secrets
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from flowloom.storage.database import Database

__all__ = ["KINDS", "scratch_database"]

KINDS = ("sqlite", "postgresql", "postgresql-nosync")
"""``postgresql-nosync``: PostgreSQL with the engine's commits not waiting for the disk flush
(``Database(postgres_synchronous_commit=False)``)."""


@asynccontextmanager
async def scratch_database(kind: str, postgres_url: str) -> AsyncIterator[Database]:
    """A new, empty database of ``kind`` (one of ``KINDS``); ValueError for another kind."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            db = Database(f"sqlite:///{Path(folder) / 'bench.db'}")
            try:
                yield db
            finally:
                await db.dispose()
        return
    if kind not in KINDS:
        raise ValueError(f"unknown database {kind!r}; one of {', '.join(KINDS)}")
    schema = f"bench_{secrets.token_hex(4)}"
    admin = Database(postgres_url)
    try:
        async with admin.engine.connect() as conn:
            await conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
            await conn.commit()
        db = Database(
            postgres_url,
            connect_args={"server_settings": {"search_path": schema}},
            postgres_synchronous_commit=kind == "postgresql",
        )
        try:
            yield db
        finally:
            await db.dispose()
            async with admin.engine.connect() as conn:
                await conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
                await conn.commit()
    finally:
        await admin.dispose()
