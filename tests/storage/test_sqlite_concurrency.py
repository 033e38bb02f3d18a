"""SQLite under many writers at once: no "database is locked", no lost update, every row lands.

Writers in one process run on both databases; separate processes sharing one file are SQLite's
own problem and run on SQLite only. Each writer reads a counter, writes it back plus one and
inserts a row, so a transaction that was not really exclusive shows up as a lost increment.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import sys
import textwrap
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from loopticks import LoopTicks
from sqlalchemy import func, select

from flowloom.ids import PREFIXES, new_id
from flowloom.storage.database import Database
from flowloom.storage.migrate import upgrade_database
from flowloom.storage.sqlite_driver import InlineConnection
from flowloom.storage.tables import AuditEntry, User

BUSY_TIMEOUT_MS = 20_000


@pytest.fixture
async def sqlite_db(tmp_path: Path) -> AsyncIterator[Database]:
    db = Database(f"sqlite:///{tmp_path / 'flowloom.db'}", sqlite_busy_timeout_ms=BUSY_TIMEOUT_MS)
    await upgrade_database(db)
    yield db
    await db.dispose()


async def _counter(db: Database) -> str:
    user_id = new_id(PREFIXES["users"])
    async with db.write() as session:
        session.add(User(id=user_id, email=f"{user_id}@example.com", credits=0))
    return user_id


async def _credits(db: Database, user_id: str) -> int:
    async with db.read() as session:
        return int(await session.scalar(select(User.credits).where(User.id == user_id)) or 0)


async def _audit_rows(db: Database, action: str) -> int:
    async with db.read() as session:
        count = await session.scalar(
            select(func.count()).select_from(AuditEntry).where(AuditEntry.action == action)
        )
    return int(count or 0)


async def test_connections_carry_the_pragmas(sqlite_db: Database) -> None:
    async with sqlite_db.engine.connect() as conn:
        pragmas = {
            name: (await conn.exec_driver_sql(f"PRAGMA {name}")).scalar_one()
            for name in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")
        }
        driver = (await conn.get_raw_connection()).driver_connection
    assert pragmas == {
        "journal_mode": "wal",
        "synchronous": 1,  # NORMAL
        "foreign_keys": 1,
        # Statements run on the event loop never wait for a lock there...
        "busy_timeout": 0,
    }
    # ...one that meets a lock waits this long on a worker thread instead.
    assert isinstance(driver, InlineConnection)
    assert driver.patient_ms == BUSY_TIMEOUT_MS


async def test_a_write_waiting_for_another_process_lock_leaves_the_loop_free(
    sqlite_db: Database, tmp_path: Path
) -> None:
    holder = sqlite3.connect(tmp_path / "flowloom.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")

    async def release_later() -> None:
        await asyncio.sleep(0.3)
        holder.execute("COMMIT")

    releasing = asyncio.create_task(release_later())
    began = time.perf_counter()
    async with LoopTicks() as ticks:
        user_id = await _counter(sqlite_db)
    waited_s = time.perf_counter() - began
    await releasing
    holder.close()

    assert waited_s >= 0.25, "the write waited for the other connection's lock"
    assert ticks.count >= 15, "the event loop kept running while it waited"
    assert await _credits(sqlite_db, user_id) == 0


async def test_200_concurrent_writers_in_one_process(db: Database) -> None:
    # Runs on PostgreSQL too, where the row lock (FOR UPDATE) keeps the increments apart and the
    # 200 writers queue for the connection pool; SQLite ignores FOR UPDATE and needs no lock.
    counter = await _counter(db)

    async def writer(n: int) -> None:
        async with db.write() as session:
            user = await session.get(User, counter, with_for_update=True)
            assert user is not None
            await asyncio.sleep(0)  # let the other writers try to get in meanwhile
            user.credits += 1
            session.add(AuditEntry(id=new_id("aud"), action="in-process", details={"n": n}))

    await asyncio.gather(*(writer(n) for n in range(200)))

    assert await _credits(db, counter) == 200
    assert await _audit_rows(db, "in-process") == 200


# Runs in a separate interpreter: says it is ready, then waits for "go" on stdin, so that every
# process starts writing at the same moment rather than as soon as its imports finish.
WRITER_SCRIPT = textwrap.dedent(
    """
    import asyncio, sys

    from flowloom.ids import new_id
    from flowloom.storage.database import Database
    from flowloom.storage.tables import AuditEntry, User

    url, counter, worker, count, busy_timeout_ms = sys.argv[1:6]

    async def main() -> None:
        db = Database(url, sqlite_busy_timeout_ms=int(busy_timeout_ms))
        print("ready", flush=True)
        sys.stdin.readline()
        for n in range(int(count)):
            async with db.write() as session:
                user = await session.get(User, counter)
                user.credits += 1
                session.add(
                    AuditEntry(id=new_id("aud"), action="processes", details={"w": worker, "n": n})
                )
        await db.dispose()

    asyncio.run(main())
    """
)


@pytest.mark.slow
async def test_four_processes_write_at_once_while_others_read(sqlite_db: Database) -> None:
    processes, writes_each = 4, 100
    counter = await _counter(sqlite_db)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    writers = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            WRITER_SCRIPT,
            sqlite_db.url,
            counter,
            str(worker),
            str(writes_each),
            str(BUSY_TIMEOUT_MS),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
        for worker in range(processes)
    ]
    for writer in writers:
        assert writer.stdout is not None
        assert await writer.stdout.readline() == b"ready\n"
    done = asyncio.Event()

    async def reader() -> list[int]:
        # A Database of its own: these readers share no connection with anything else.
        own = Database(sqlite_db.url)
        seen = []
        try:
            while not done.is_set():
                seen.append(await _audit_rows(own, "processes"))
                await asyncio.sleep(0.001)
        finally:
            await own.dispose()
        return seen

    readers = [asyncio.create_task(reader()) for _ in range(2)]
    results = await asyncio.gather(*(w.communicate(b"go\n") for w in writers))
    done.set()
    reads = await asyncio.gather(*readers)

    errors = [stderr.decode() for _, stderr in results if stderr]
    assert errors == []
    assert [w.returncode for w in writers] == [0] * processes
    total = processes * writes_each
    assert await _credits(sqlite_db, counter) == total
    assert await _audit_rows(sqlite_db, "processes") == total
    # Readers kept reading while the writers wrote, and saw the count only grow.
    for seen in reads:
        assert seen == sorted(seen)
        assert any(0 < count < total for count in seen), seen
