"""flowloom's SQLite driver (``sqlite+flowloom``): a standard async engine whose statements run
inline on the caller's thread, and whose waits for another process's lock leave the event loop
free (on the loop) or block only their own thread (the lanes' threads)."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest
from loopticks import LoopTicks
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from flowloom.settings import normalize_database_url
from flowloom.storage.database import Database
from flowloom.storage.sqlite_driver import PATIENT_MS_ARG, InlineConnection


@pytest.fixture
def path(tmp_path: Path) -> Path:
    file = tmp_path / "driver.db"
    setup = sqlite3.connect(file)
    setup.execute("PRAGMA journal_mode = WAL")
    setup.execute("CREATE TABLE t (n INTEGER NOT NULL)")
    setup.commit()
    setup.close()
    return file


def test_sqlite_urls_name_the_flowloom_driver() -> None:
    for given in ("sqlite:///x.db", "sqlite+aiosqlite:///x.db", "sqlite+pysqlite:///x.db"):
        assert normalize_database_url(given) == "sqlite+flowloom:///x.db"


async def test_every_way_of_the_async_engine_works_without_a_thread(path: Path) -> None:
    engine = create_async_engine(normalize_database_url(f"sqlite:///{path}"))
    threads_before = threading.active_count()
    try:
        async with engine.begin() as conn:
            # AsyncConnection.execute insists that its driver awaited something.
            await conn.execute(text("INSERT INTO t (n) VALUES (1)"))
            await conn.exec_driver_sql("INSERT INTO t (n) VALUES (2)")
            await conn.run_sync(lambda sync: sync.exec_driver_sql("INSERT INTO t (n) VALUES (3)"))
        async with engine.connect() as conn:
            streamed = [row.n async for row in await conn.stream(text("SELECT n FROM t"))]
            raw = (await conn.get_raw_connection()).driver_connection
        async with AsyncSession(engine) as session:
            total = await session.scalar(text("SELECT sum(n) FROM t"))
    finally:
        await engine.dispose()
    assert sorted(streamed) == [1, 2, 3]
    assert total == 6
    assert isinstance(raw, InlineConnection)
    assert threading.active_count() == threads_before, "no thread per connection"


async def test_a_statement_meeting_a_lock_waits_off_the_loop_and_then_runs(path: Path) -> None:
    engine = create_async_engine(
        normalize_database_url(f"sqlite:///{path}"), connect_args={PATIENT_MS_ARG: 5_000}
    )
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    threading.Timer(0.3, lambda: holder.execute("COMMIT")).start()
    began = time.perf_counter()
    try:
        async with LoopTicks() as ticks, engine.begin() as conn:
            await conn.exec_driver_sql("INSERT INTO t (n) VALUES (7)")
        waited_s = time.perf_counter() - began
    finally:
        await engine.dispose()
        holder.close()
    assert waited_s >= 0.25
    assert ticks.count >= 15, "the event loop kept running while the insert waited"
    check = sqlite3.connect(path)
    assert check.execute("SELECT n FROM t").fetchall() == [(7,)]
    check.close()


async def test_a_lock_held_past_the_patient_timeout_is_a_clear_error(path: Path) -> None:
    db = Database(f"sqlite:///{path}", sqlite_busy_timeout_ms=200)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:

        def insert(conn: Connection) -> None:
            conn.exec_driver_sql("INSERT INTO t (n) VALUES (1)")

        for inline in (True, False):
            began = time.perf_counter()
            with pytest.raises(Exception, match="database is locked"):
                await db.run_write(insert, inline=inline)
            assert 0.15 <= time.perf_counter() - began < 5
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    # Nothing was left open: the write goes through once the lock is free.
    await db.run_write(insert, inline=True)
    assert await db.run_read(lambda conn: conn.exec_driver_sql("SELECT n FROM t").all()) == [(1,)]
    await db.dispose()


async def test_in_memory_databases_are_private_and_work_every_way() -> None:
    first, second = Database("sqlite://"), Database("sqlite:///:memory:")
    try:
        for db in (first, second):
            await db.run_write(lambda conn: conn.exec_driver_sql("CREATE TABLE t (n INTEGER)"))
        await first.run_write(lambda conn: conn.exec_driver_sql("INSERT INTO t VALUES (1)"))
        async with first.write() as session:
            await session.execute(text("INSERT INTO t VALUES (2)"))
        count = "SELECT count(*) FROM t"
        assert await first.run_read(lambda conn: conn.exec_driver_sql(count).scalar()) == 2
        assert await second.run_read(lambda conn: conn.exec_driver_sql(count).scalar()) == 0
    finally:
        await first.dispose()
        await second.dispose()
