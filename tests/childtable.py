"""A ``parent``/``child`` pair of tables whose foreign key is checked only at COMMIT, for the
tests of SQLite's write transactions: a child naming no parent fails its transaction's COMMIT."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlalchemy import text

from flowloom.storage.database import Database


async def create_child_tables(db: Database) -> None:
    async with db.write() as session:
        await session.execute(text("CREATE TABLE parent (id INTEGER PRIMARY KEY)"))
        await session.execute(
            text(
                "CREATE TABLE child (value INTEGER NOT NULL, parent_id INTEGER REFERENCES"
                " parent (id) DEFERRABLE INITIALLY DEFERRED)"
            )
        )


def committed_values(path: Path) -> list[int]:
    """The values of ``child`` that another connection sees: what was committed."""
    other = sqlite3.connect(path)
    try:
        return sorted(value for (value,) in other.execute("SELECT value FROM child"))
    finally:
        other.close()
