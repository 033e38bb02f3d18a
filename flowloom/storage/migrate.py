"""Bring a database's schema to the newest migration (placeholder until Alembic lands)."""

from __future__ import annotations

from flowloom.storage.database import Database
from flowloom.storage.tables import metadata

__all__ = ["upgrade_database"]


async def upgrade_database(db: Database) -> None:
    async with db.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
