"""The fast path, ``run_write(fn)`` / ``run_read(fn)``: one transaction, all or nothing, no lost
update and no "database is locked" under writers in tasks, threads and processes.

Each writer reads a counter and writes it back plus one, inserting a row beside it, so a
transaction that was not really exclusive shows up as a lost increment.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import sys
import textwrap
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import pytest
from loopticks import LoopTicks
from sqlalchemy import Connection, Table, func, insert, select, update
from sqlalchemy.exc import DBAPIError

from benchmarks.ticks import new_bare_run
from flowloom.engine.ports import Tick
from flowloom.engine.sql.ticks import TickStore, load_slots
from flowloom.exceptions import StorageError
from flowloom.ids import PREFIXES, new_id
from flowloom.storage.database import Database, sqlite_connection
from flowloom.storage.enums import NodeStatus
from flowloom.storage.migrate import upgrade_database
from flowloom.storage.tables import AuditEntry, User, WorkflowRun
from flowloom.storage.tables.base import utcnow

USERS: Table = User.__table__  # type: ignore[assignment]
AUDIT: Table = AuditEntry.__table__  # type: ignore[assignment]


@pytest.fixture(scope="module")
async def sqlite_db(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Database]:
    """A migrated SQLite file, for the tests of what only SQLite has (file locks, threads)."""
    database = Database(f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'flowloom.db'}")
    await upgrade_database(database)
    yield database
    await database.dispose()


def _new_counter(conn: Connection) -> str:
    user_id = new_id(PREFIXES["users"])
    conn.execute(insert(USERS).values(id=user_id, email=f"{user_id}@example.com", credits=0))
    return user_id


def _increment(counter: str, action: str) -> object:
    def write(conn: Connection) -> int:
        # FOR UPDATE keeps PostgreSQL's increments apart; SQLite's BEGIN IMMEDIATE already has.
        credits = conn.scalar(
            select(USERS.c.credits).where(USERS.c.id == counter).with_for_update()
        )
        assert credits is not None
        conn.execute(update(USERS).where(USERS.c.id == counter).values(credits=credits + 1))
        conn.execute(insert(AUDIT).values(id=new_id("aud"), action=action, details={}))
        return int(credits) + 1

    return write


def _credits(counter: str) -> object:
    def read(conn: Connection) -> int:
        return int(conn.scalar(select(USERS.c.credits).where(USERS.c.id == counter)) or 0)

    return read


def _audit_rows(action: str) -> object:
    def read(conn: Connection) -> int:
        query = select(func.count()).select_from(AUDIT).where(AUDIT.c.action == action)
        return int(conn.scalar(query) or 0)

    return read


@pytest.mark.parametrize("inline", [False, True])
async def test_a_write_commits_everything_it_did_and_returns_its_result(
    db: Database, inline: bool
) -> None:
    counter = await db.run_write(_new_counter, inline=inline)
    action = f"commit-{inline}"

    assert await db.run_write(_increment(counter, action), inline=inline) == 1  # type: ignore[arg-type]

    assert await db.run_read(_credits(counter)) == 1  # type: ignore[arg-type]
    assert await db.run_read(_audit_rows(action), inline=True) == 1  # type: ignore[arg-type]
    # The ORM path sees it too: it is one database.
    async with db.read() as session:
        assert await session.scalar(select(User.credits).where(User.id == counter)) == 1


@pytest.mark.parametrize("inline", [False, True])
async def test_a_write_that_raises_leaves_nothing(db: Database, inline: bool) -> None:
    counter = await db.run_write(_new_counter)
    action = f"rollback-{inline}"
    increment = _increment(counter, action)

    def fails_halfway(conn: Connection) -> None:
        increment(conn)  # type: ignore[operator]
        raise LookupError("changed my mind")

    with pytest.raises(LookupError):
        await db.run_write(fails_halfway, inline=inline)

    assert await db.run_read(_credits(counter)) == 0  # type: ignore[arg-type]
    assert await db.run_read(_audit_rows(action)) == 0  # type: ignore[arg-type]
    # The connection is clean afterwards: the next write commits normally.
    assert await db.run_write(increment, inline=inline) == 1  # type: ignore[arg-type]


async def test_writers_in_tasks_never_lose_an_update(db: Database) -> None:
    # Fast-path writers (inline and threaded) and ORM writers all queue for the same lock.
    counter = await db.run_write(_new_counter)
    increment = _increment(counter, "tasks")

    async def orm_writer() -> None:
        async with db.write() as session:
            user = await session.get(User, counter, with_for_update=True)
            assert user is not None
            await asyncio.sleep(0)
            user.credits += 1
            session.add(AuditEntry(id=new_id("aud"), action="tasks", details={}))

    writers = []
    for n in range(150):
        if n % 3 == 2:
            writers.append(orm_writer())
        else:
            writers.append(db.run_write(increment, inline=n % 3 == 1))  # type: ignore[arg-type]
    await asyncio.gather(*writers)

    assert await db.run_read(_credits(counter)) == 150  # type: ignore[arg-type]
    assert await db.run_read(_audit_rows("tasks")) == 150  # type: ignore[arg-type]


async def test_writers_in_threads_with_their_own_databases(db: Database) -> None:
    # Each thread has its own event loop and Database: on SQLite they meet only in the file's
    # lock (busy timeout), on PostgreSQL in the row lock.
    counter = await db.run_write(_new_counter)
    increment = _increment(counter, "threads")
    threads, writes_each = 3, 40
    connect_args = await _connect_args(db)
    errors: list[BaseException] = []

    def thread_main() -> None:
        async def main() -> None:
            own = Database(db.url, connect_args=connect_args)
            try:
                for n in range(writes_each):
                    await own.run_write(increment, inline=n % 2 == 0)  # type: ignore[arg-type]
            finally:
                await own.dispose()

        try:
            asyncio.run(main())
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=thread_main) for _ in range(threads)]
    for worker in workers:
        worker.start()
    await asyncio.to_thread(lambda: [worker.join() for worker in workers])

    assert errors == []
    assert await db.run_read(_credits(counter)) == threads * writes_each  # type: ignore[arg-type]


async def _connect_args(db: Database) -> dict[str, object]:
    """Connect arguments for another Database on the same data (the test's PostgreSQL schema)."""
    if db.is_sqlite:
        return {}
    path = await db.run_read(lambda conn: conn.exec_driver_sql("SHOW search_path").scalar())
    return {"server_settings": {"search_path": str(path)}}


async def test_reads_see_what_was_committed_and_nothing_else(db: Database) -> None:
    counter = await db.run_write(_new_counter)
    async with db.write() as session:
        await session.execute(update(USERS).where(USERS.c.id == counter).values(credits=7))
        await session.flush()
        # Mid-transaction: readers on other connections still see the committed state.
        assert await db.run_read(_credits(counter)) == 0  # type: ignore[arg-type]
        assert await db.run_read(_credits(counter), inline=True) == 0  # type: ignore[arg-type]
    assert await db.run_read(_credits(counter)) == 7  # type: ignore[arg-type]
    assert await db.run_read(_credits(counter), inline=True) == 7  # type: ignore[arg-type]


async def test_reads_after_reads_that_failed_or_began_a_transaction(db: Database) -> None:
    """A read's connection serves the next read as it was: after ``fn`` raised, after the
    database refused a statement, after ``fn`` began (and left) a transaction of its own, and
    with many reads at once."""
    counter = await db.run_write(_new_counter)

    def raises(conn: Connection) -> None:
        conn.execute(select(USERS.c.credits).where(USERS.c.id == counter))
        raise LookupError("from fn")

    def refused(conn: Connection) -> None:
        conn.exec_driver_sql("SELECT no_such_column FROM users")

    def in_a_transaction(conn: Connection) -> int | None:
        with conn.begin():
            return conn.scalar(select(USERS.c.credits).where(USERS.c.id == counter))

    for inline in (False, True):
        with pytest.raises(LookupError):
            await db.run_read(raises, inline=inline)
        # PostgreSQL's reads name it a StorageError; SQLite's pass the driver's error on.
        with pytest.raises((StorageError, DBAPIError)):
            await db.run_read(refused, inline=inline)
        assert await db.run_read(in_a_transaction, inline=inline) == 0
        assert await db.run_read(_credits(counter), inline=inline) == 0  # type: ignore[arg-type]
    reads = [db.run_read(_credits(counter), inline=n % 2 == 0) for n in range(40)]  # type: ignore[arg-type]
    assert await asyncio.gather(*reads) == [0] * 40
    await db.run_write(
        lambda conn: conn.execute(update(USERS).where(USERS.c.id == counter).values(credits=3))
    )
    assert await db.run_read(in_a_transaction) == 3


async def test_a_cancelled_writer_holds_the_lock_until_its_transaction_ends(
    sqlite_db: Database,
) -> None:
    # SQLite only: on PostgreSQL the function runs on the event loop, not in a thread.
    db = sqlite_db
    counter = await db.run_write(_new_counter)
    entered, release = asyncio.Event(), threading.Event()
    loop = asyncio.get_running_loop()
    increment = _increment(counter, "cancelled")

    def slow_write(conn: Connection) -> int:
        loop.call_soon_threadsafe(entered.set)
        release.wait(10)
        return int(increment(conn))  # type: ignore[operator, call-overload]

    writing = asyncio.create_task(db.run_write(slow_write))
    await entered.wait()
    writing.cancel()
    follower = asyncio.create_task(db.run_write(increment, inline=True))  # type: ignore[arg-type]
    await asyncio.sleep(0.05)
    assert not follower.done()  # it waits for the cancelled writer's transaction to end
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await writing
    # The cancelled caller's transaction ran to its end in the writer thread.
    assert await follower == 2


# ---- SQLite only: other processes, and a lock held elsewhere


WRITER_SCRIPT = textwrap.dedent(
    """
    import asyncio, sys

    from sqlalchemy import insert, select, update

    from flowloom.ids import new_id
    from flowloom.storage.database import Database
    from flowloom.storage.tables import AuditEntry, User

    url, counter, count = sys.argv[1:4]
    users, audit = User.__table__, AuditEntry.__table__

    def increment(conn):
        credits = conn.scalar(select(users.c.credits).where(users.c.id == counter))
        conn.execute(update(users).where(users.c.id == counter).values(credits=credits + 1))
        conn.execute(insert(audit).values(id=new_id("aud"), action="processes", details={}))

    async def main():
        db = Database(url, sqlite_busy_timeout_ms=20_000)
        print("ready", flush=True)
        sys.stdin.readline()
        for n in range(int(count)):
            await db.run_write(increment, inline=n % 2 == 0)
        await db.dispose()

    asyncio.run(main())
    """
)


@pytest.mark.slow
async def test_processes_write_at_once_without_database_is_locked(sqlite_db: Database) -> None:
    # SQLite only: several processes on one file is SQLite's own problem.
    db = sqlite_db
    counter = await db.run_write(_new_counter)
    processes, writes_each = 3, 60
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    writers = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            WRITER_SCRIPT,
            db.url,
            counter,
            str(writes_each),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
        for _ in range(processes)
    ]
    for writer in writers:
        assert writer.stdout is not None
        assert await writer.stdout.readline() == b"ready\n"
    ours = _increment(counter, "processes")

    async def own_writes() -> None:
        for n in range(writes_each):
            await db.run_write(ours, inline=n % 2 == 0)  # type: ignore[arg-type]

    results, _ = await asyncio.gather(
        asyncio.gather(*(w.communicate(b"go\n") for w in writers)), own_writes()
    )

    assert [stderr.decode() for _, stderr in results if stderr] == []
    assert [w.returncode for w in writers] == [0] * processes
    total = (processes + 1) * writes_each
    assert await db.run_read(_credits(counter)) == total  # type: ignore[arg-type]
    assert await db.run_read(_audit_rows("processes")) == total  # type: ignore[arg-type]


async def test_an_inline_write_waits_off_the_loop_while_another_process_holds_the_lock(
    sqlite_db: Database,
) -> None:
    db = sqlite_db
    counter = await db.run_write(_new_counter)
    path = db.engine.url.database
    assert path is not None
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")  # another writer holds the lock, as another process would
    async with LoopTicks() as ticks:
        writing = asyncio.create_task(db.run_write(_increment(counter, "held"), inline=True))  # type: ignore[arg-type]
        await asyncio.sleep(0.3)
        assert not writing.done()
        other.execute("COMMIT")
        assert await writing == 1
    other.close()
    assert ticks.count >= 10  # the event loop ran on while the write waited for the lock


async def test_the_raw_connection_is_sqlite3_in_a_transaction(sqlite_db: Database) -> None:
    db = sqlite_db

    def inspect(conn: Connection) -> tuple[bool, int]:
        raw = sqlite_connection(conn)
        return raw.in_transaction, int(raw.execute("PRAGMA foreign_keys").fetchone()[0])

    assert await db.run_write(inspect, inline=True) == (True, 1)
    assert await db.run_write(inspect) == (True, 1)
    assert await db.run_read(inspect) == (False, 1)


async def test_asyncpg_connections_flush_their_commits_unless_asked_not_to(
    db: Database,
) -> None:
    if db.is_sqlite:
        with pytest.raises(StorageError):
            async with db.asyncpg_connection():
                pass
        return
    for _ in range(2):  # a fresh connection, then the same one from the idle ones
        async with db.asyncpg_connection() as pg:
            assert await pg.fetchval("SHOW synchronous_commit") == "on"
        async with db.asyncpg_connection(flush=False) as pg:
            assert await pg.fetchval("SHOW synchronous_commit") == "off"


async def test_a_reader_connection_serves_reads_and_is_not_kept_in_a_transaction(
    db: Database,
) -> None:
    if db.is_sqlite:
        with pytest.raises(StorageError):
            async with db.pg_read_connection():
                pass
        return
    async with db.pg_read_connection() as pg:
        assert await pg.fetchval("SELECT 41 + 1") == 42
        assert await pg.fetchval("SHOW enable_seqscan") == "on", "the server's own settings"
        first = pg
    async with db.pg_read_connection() as pg:
        assert pg is first, "kept among the readers"
        await pg.execute("BEGIN")
    async with db.pg_read_connection() as pg:
        assert pg is not first, "one left in a transaction is dropped"
        assert not pg.is_in_transaction()
    with pytest.raises(asyncpg.UndefinedTableError):
        async with db.pg_read_connection() as pg:
            await pg.fetchval("SELECT * FROM nonexistent")
    assert await db.run_read(lambda conn: conn.exec_driver_sql("SELECT 1").scalar()) == 1


# ---- the engine's tick on the fast path: fenced, all or nothing


async def test_a_tick_writes_nothing_when_one_fenced_row_lost_its_lease(db: Database) -> None:
    run_id = await new_bare_run(db, [("a", "t", 0), ("b", "t", 1)])
    async with db.read() as session:
        slots = await session.run_sync(lambda s: load_slots(s.connection(), run_id))
    a, b = slots["a"], slots["b"]
    store, now = TickStore(db), utcnow()

    # Claimed by engine "one".
    a.status, a.lease_owner = NodeStatus.RUNNING, "one"
    assert await store.commit(Tick(run_id, "one", now, [a], set(), {"status": "RUNNING"}))
    # Engine "two" finishing "a" (and releasing "b") does not hold the lease: nothing lands.
    a.status, a.outputs, a.lease_owner = NodeStatus.SUCCEEDED, {"x": 1}, None
    b.status, b.pending = NodeStatus.READY, 0
    lost = Tick(run_id, "two", now, [a, b], {a.row_id}, {"status": "COMPLETED"})
    assert not await store.commit(lost)
    async with db.read() as session:
        after = await session.run_sync(lambda s: load_slots(s.connection(), run_id))
        assert await session.scalar(select(WorkflowRun.status).where(WorkflowRun.id == run_id)) == (
            "RUNNING"
        )
    assert (after["a"].status, after["a"].outputs, after["a"].lease_owner) == (
        NodeStatus.RUNNING,
        None,
        "one",
    )
    assert (after["b"].status, after["b"].pending) == (NodeStatus.PENDING, 1)
    # The holder of the lease writes the same tick, all of it.
    assert await store.commit(Tick(run_id, "one", now, [a, b], {a.row_id}, {}))
    async with db.read() as session:
        after = await session.run_sync(lambda s: load_slots(s.connection(), run_id))
    assert (after["a"].status, after["a"].outputs) == (NodeStatus.SUCCEEDED, {"x": 1})
    assert (after["b"].status, after["b"].pending) == (NodeStatus.READY, 0)
    assert after["a"].finished_at is None  # written whole: what the slot said, nothing more
