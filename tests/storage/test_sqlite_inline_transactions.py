"""SQLite's inline connections (sqlite_driver.py) and the held writer never keep a
transaction their caller gave up on: not when the caller is cancelled while its BEGIN waits
for another process's lock, not when COMMIT itself fails."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from childtable import committed_values, create_child_tables
from outagekit import outage_database
from sqlalchemy import text
from sqlalchemy.engine import Connection

from flowloom.storage.database import Database


@pytest.fixture
async def sqlite_db(tmp_path: Path) -> AsyncIterator[tuple[Database, Path]]:
    async with outage_database("sqlite", tmp_path) as outage:
        await create_child_tables(outage.db)
        yield outage.db, tmp_path / "flowloom.db"


def _write_lock_is_free(path: Path) -> bool:
    """Whether another connection gets the write lock at once: no connection of the Database
    holds a transaction open."""
    other = sqlite3.connect(path, isolation_level=None, timeout=0)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        other.close()


async def test_a_write_cancelled_while_its_begin_waits_for_the_lock_leaves_nothing_open(
    sqlite_db: tuple[Database, Path],
) -> None:
    db, path = sqlite_db
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN EXCLUSIVE")

    async def write() -> None:
        async with db.write() as session:
            await session.execute(text("INSERT INTO child (value) VALUES (1)"))

    task = asyncio.ensure_future(write())
    await asyncio.sleep(0.05)  # its BEGIN IMMEDIATE now waits on a worker thread
    # The lock comes free while that BEGIN still waits: it succeeds after its caller is gone.
    threading.Timer(0.05, lambda: holder.execute("ROLLBACK")).start()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task  # before the fix: the process crashed here (the connection in two threads)
    holder.close()

    assert _write_lock_is_free(path), "a connection kept the cancelled write's transaction"
    async with db.write() as session:
        await session.execute(text("INSERT INTO child (value) VALUES (2)"))
    assert committed_values(path) == [2]
    assert _write_lock_is_free(path)


async def test_an_orm_write_whose_commit_fails_is_rolled_back(
    sqlite_db: tuple[Database, Path],
) -> None:
    db, path = sqlite_db
    # A deferred foreign key fails at COMMIT, and SQLite leaves the transaction open then.
    with pytest.raises(Exception, match="FOREIGN KEY"):
        async with db.write() as session:
            await session.execute(text("INSERT INTO child (value, parent_id) VALUES (1, 99)"))
    assert _write_lock_is_free(path), "the failed COMMIT's transaction is still open"
    async with db.write() as session:
        await session.execute(text("INSERT INTO child (value) VALUES (2)"))
    assert committed_values(path) == [2]


@pytest.mark.parametrize("inline", [True, False], ids=["inline", "writer-thread"])
async def test_a_fast_path_write_whose_commit_fails_is_rolled_back(
    sqlite_db: tuple[Database, Path], inline: bool
) -> None:
    db, path = sqlite_db

    def orphan(conn: Connection) -> None:
        conn.exec_driver_sql("INSERT INTO child (value, parent_id) VALUES (1, 99)")

    def fine(conn: Connection) -> None:
        conn.exec_driver_sql("INSERT INTO child (value) VALUES (2)")

    with pytest.raises(Exception, match="FOREIGN KEY"):
        await db.run_write(orphan, inline=inline)
    assert _write_lock_is_free(path), "the failed COMMIT's transaction is still open"
    await db.run_write(fine, inline=inline)
    assert committed_values(path) == [2]
    assert _write_lock_is_free(path)
