"""The connection to the database: one engine, read sessions and write transactions.

SQLite is set up for many concurrent writers without "database is locked": WAL journal,
``synchronous=NORMAL``, foreign keys on, a busy timeout, and write transactions that take the
write lock when they begin (``BEGIN IMMEDIATE``) so two writers never deadlock upgrading a read
lock. Inside one process writers also queue on an asyncio lock, so they wait without polling.

One async SQLAlchemy engine per database (SQLite through flowloom's own driver,
``sqlite_driver.py``: ``sqlite3`` run inline; PostgreSQL through asyncpg), used two ways:

- ``read()`` / ``write()`` yield an ORM ``AsyncSession``: what the repositories use.
- ``run_read(fn)`` / ``run_write(fn)`` call a plain function of a sync SQLAlchemy
  ``Connection`` (Core) and return its result: the way for hot, short work (the engine's
  scheduler tick, history pages). On SQLite the function runs on a connection of the engine
  held for the purpose (``sqlite_lanes.py``), in one hop to a thread, or with ``inline=True``
  on the event loop's own thread when that is cheaper than any hop, short writes of many
  callers committed together (``group_commit.py``; see ``run_write``). On
  PostgreSQL it runs through ``AsyncConnection.run_sync``; reads there skip BEGIN/ROLLBACK
  (autocommit), on a few connections kept out of the pool between reads.

In-memory SQLite (``sqlite://``, ``sqlite:///:memory:``) is a private database in SQLite's
``memdb`` VFS, shared by every connection of this ``Database`` (a plain ``:memory:`` database
would be a different, empty one per connection) and freed by ``dispose()``. Without a file there
is no WAL: a commit waits for readers to finish, so nothing on the event loop's thread may wait
for a lock there (see ``run_write``).

Every way in raises ``DatabaseUnavailable`` (a StorageError: the API's 503) when the database
cannot be reached, drops the connection or stays locked past the busy timeout, whatever the
driver called it (``flowloom.storage.errors.is_unavailable``); other errors pass unchanged.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any, NoReturn, TypeVar

from sqlalchemy import event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from flowloom.exceptions import StorageError
from flowloom.settings import Settings, normalize_database_url
from flowloom.storage.errors import DatabaseUnavailable, is_unavailable
from flowloom.storage.group_commit import GroupCommit
from flowloom.storage.sqlite_driver import PATIENT_MS_ARG
from flowloom.storage.sqlite_lanes import LANE, SqliteLanes
from flowloom.storage.tables import metadata
from flowloom.storage.tables.partial_indexes import add_postgresql_conditions

__all__ = ["WRITE_TRANSACTION", "Database", "sqlite_connection"]

T = TypeVar("T")

_log = logging.getLogger("flowloom.storage")

WRITE_TRANSACTION = "flowloom_write"
"""Execution option: this connection's transactions write (``BEGIN IMMEDIATE`` on SQLite)."""


class Database:
    """The engine and the two ways to use it: ``read()`` and ``write()``.

    ``write()`` is one transaction: it commits when the block ends and rolls back on error, so a
    failed operation leaves nothing half-written.

    ``postgres_synchronous_commit=False`` lets commits on ``asyncpg_connection()`` (the engine's
    tick) return before PostgreSQL has flushed them to disk: what SQLite's
    ``synchronous=NORMAL`` promises too. A crash of flowloom loses nothing committed; a crash
    of the database server or of the machine may lose the last fraction of a second of
    commits, and runs resume from the checkpoints before them (nodes run at least once, as
    after any crash). On by default: the flush costs 0.2-2 ms per commit on a busy disk. Even
    then a caller may ask for it per use (``asyncpg_connection(flush=False)``): the engine
    does for a tick that leaves its run RUNNING and answers nobody, so that a run's end, a
    park and every answer still wait for the disk (and with them every commit before).
    """

    def __init__(
        self,
        url: str,
        *,
        sqlite_busy_timeout_ms: int = 30_000,
        pool_size: int = 10,
        echo: bool = False,
        connect_args: dict[str, Any] | None = None,
        postgres_synchronous_commit: bool = True,
    ) -> None:
        self.url = normalize_database_url(url)
        self.dialect = "sqlite" if self.url.startswith("sqlite") else "postgresql"
        self._memory_keeper: sqlite3.Connection | None = None
        if self.dialect == "sqlite" and make_url(self.url).database in (None, "", ":memory:"):
            self.url, self._memory_keeper = _private_memory_database(self.url)
        engine_args: dict[str, Any] = {"echo": echo, "connect_args": dict(connect_args or {})}
        if self.dialect == "sqlite":
            engine_args["connect_args"].setdefault(PATIENT_MS_ARG, sqlite_busy_timeout_ms)
            # Sessions get what they always had; the lanes hold a reader per reader thread,
            # the writer, the inline reader and the checkpointer on top (sqlite_lanes.py).
            held = max(1, pool_size // 2) + 3
            engine_args.update(pool_size=5 + held, max_overflow=10)
        if self.dialect == "postgresql":
            add_postgresql_conditions(metadata)
            # LIFO: the connection used last is handed out next, so a quiet moment keeps reusing
            # one whose prepared statements (asyncpg caches them per connection) are warm,
            # rather than cycling through every connection a burst left in the pool.
            engine_args.update(
                pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=False, pool_use_lifo=True
            )
        self.engine: AsyncEngine = create_async_engine(self.url, **engine_args)
        if self.dialect == "sqlite":
            _configure_sqlite(self.engine)
        write_engine = self.engine.execution_options(**{WRITE_TRANSACTION: True})
        self._reads = async_sessionmaker(self.engine, expire_on_commit=False, autoflush=False)
        self._writes = async_sessionmaker(write_engine, expire_on_commit=False, autoflush=False)
        self._write_lock: asyncio.Lock | None = None
        self._sqlite_readers = max(1, pool_size // 2)
        self._lanes: SqliteLanes | None = None
        self._group: GroupCommit | None = None
        # Reads on PostgreSQL need no transaction: autocommit saves the BEGIN and ROLLBACK round
        # trips that asyncpg would otherwise spend around every read.
        self._autocommit = self.engine.execution_options(isolation_level="AUTOCOMMIT")
        self._pg_reserved = max(1, pool_size // 4)
        self._pg_synchronous_commit = postgres_synchronous_commit
        self._pg_slots: asyncio.Semaphore | None = None
        # Idle asyncpg connections by whether their commits flush (synchronous_commit).
        self._pg_idle: dict[bool, list[tuple[AsyncConnection, Any]]] = {True: [], False: []}
        self._pg_readers: list[tuple[AsyncConnection, Any]] = []

    @classmethod
    def from_settings(cls, settings: Settings) -> Database:
        if settings.is_sqlite:
            settings.ensure_data_dir()
        return cls(
            settings.resolved_database_url,
            sqlite_busy_timeout_ms=settings.sqlite_busy_timeout_ms,
            pool_size=settings.database_pool_size,
        )

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @property
    def in_memory(self) -> bool:
        """SQLite in memory: everything is gone after ``dispose()``."""
        return self._memory_keeper is not None

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A session for reading; nothing it does is committed."""
        with unavailable_as_storage_error():
            async with self._reads() as session:
                try:
                    yield session
                except (OperationalError, DBAPIError) as exc:
                    if is_unavailable(exc):
                        raise
                    raise _storage_error(exc) from exc

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """One write transaction: committed when the block ends, rolled back if it raises."""
        with unavailable_as_storage_error():
            if not self.is_sqlite:
                async with self._writes() as session, session.begin():
                    yield session
                return
            async with self._lock(), self._writes() as session, session.begin():
                yield session

    async def run_write(self, fn: Callable[[Connection], T], *, inline: bool = False) -> T:
        """``fn(connection)`` in one write transaction; its result. Committed when ``fn`` returns,
        rolled back (nothing written) if it raises.

        ``fn`` is a plain function of a sync SQLAlchemy ``Connection``: it must not commit,
        roll back or wait for anything but its statements. On SQLite it gets the write lock
        first (``BEGIN IMMEDIATE``, queued behind this process's other writers, the busy timeout
        for other processes) and runs in ONE hop to the writer thread. ``inline=True`` is for
        short functions (a few statements on indexed rows, like the engine's tick): ``fn`` joins
        the group of such writes that commits once the event loop has run what was ready
        (``group_commit.py``: each in a savepoint of its own, all in one transaction, since the
        commit is most of what a short write costs); when the write lock is free at once, the
        group runs right here on the event loop's thread, because a hop to a thread and back
        costs 30-150 us on a loaded machine, more than such a transaction itself (about 40 us in
        WAL with ``synchronous=NORMAL``); when another process holds the lock it waits in the
        writer thread as usual. On PostgreSQL ``fn`` runs through ``AsyncConnection.run_sync``
        in a transaction.
        """
        # try/except rather than a context manager: this is the engine's hot path, and a
        # try costs nothing until something is raised.
        try:
            return await self._run_write(fn, inline=inline)
        except Exception as exc:
            _raise_translated(exc)

    async def _run_write(self, fn: Callable[[Connection], T], *, inline: bool) -> T:
        if not self.is_sqlite:
            async with self.engine.begin() as conn:
                return await conn.run_sync(fn)
        # In memory there is no WAL: the commit waits for readers, and a reader may be a
        # session of this very event loop, which could not end while the loop waited here.
        if inline and not self.in_memory:
            group = self._group or self._open_group()
            return await group.write(fn)
        lanes = self._lanes or await self._open_lanes()
        lock = self._lock()
        await lock.acquire()
        try:
            writer = await lanes.writer()
        except BaseException:
            lock.release()
            raise
        return await asyncio.shield(lanes.on_writer_thread(lock, lanes.write, writer, fn))

    async def run_read(self, fn: Callable[[Connection], T], *, inline: bool = False) -> T:
        """``fn(connection)`` for reading; its result. Nothing it does is committed.

        Each statement sees what was committed before it began; there is no BEGIN around them
        (a function that needs one snapshot across statements begins a transaction itself).
        On SQLite ``fn`` runs in one hop to a pool of reader threads, each with its own
        connection (WAL lets them read while a write goes on); ``inline=True`` runs it on the
        event loop's thread instead, for a lookup of a few rows by index where the hop would
        cost more than the query: never for a query that may scan. On PostgreSQL ``fn`` runs
        through ``AsyncConnection.run_sync`` on an autocommit connection.
        """
        try:
            return await self._run_read(fn, inline=inline)
        except Exception as exc:
            _raise_translated(exc)

    async def _run_read(self, fn: Callable[[Connection], T], *, inline: bool) -> T:
        if not self.is_sqlite:
            held, raw = await self._pg_reader()
            try:
                result = await held.run_sync(_then_rollback, fn)
            except BaseException as exc:
                database_error = isinstance(exc, (OperationalError, DBAPIError))
                if database_error or not isinstance(exc, Exception):
                    # A statement cut short (cancelled) may leave the connection
                    # mid-protocol, and one the database refused is rare: not worth keeping.
                    await self._drop(held)
                else:  # raised by ``fn`` itself: the connection is as it was
                    await self._keep_reader(held, raw)
                if isinstance(exc, (OperationalError, DBAPIError)) and not is_unavailable(exc):
                    raise _storage_error(exc) from exc
                raise
            await self._keep_reader(held, raw)
            return result
        lanes = self._lanes or await self._open_lanes()
        if inline and not self.in_memory:
            return await lanes.read_inline(fn)
        return await lanes.read(fn)

    @asynccontextmanager
    async def asyncpg_connection(self, *, flush: bool = True) -> AsyncIterator[Any]:
        """A pooled asyncpg connection (PostgreSQL only) outside any transaction.

        Each statement commits on its own, and asyncpg caches its prepared form per connection:
        for a hot path that is ONE statement, this is one round trip instead of three (BEGIN,
        the statement, COMMIT). The session is tuned for key lookups by index (generic plans,
        no sequential scans): not for queries that scan. Leave it as it was found.

        ``flush=False``: its commits return before PostgreSQL has flushed them to disk
        (``synchronous_commit = off``), for writes that a later flushed commit covers: a
        crash of the database server may lose them, never reorder them after a flushed one.
        """
        if self.is_sqlite:
            raise StorageError("asyncpg_connection() is for PostgreSQL")
        if self._pg_slots is None:
            self._pg_slots = asyncio.Semaphore(self._pg_reserved)
        async with self._pg_slots:
            flush = flush and self._pg_synchronous_commit
            async with self._lent(self._asyncpg_take(flush)) as (held, raw):
                yield raw
            if raw.is_closed() or raw.is_in_transaction():
                await self._drop(held)
            else:
                self._pg_idle[flush].append((held, raw))

    @asynccontextmanager
    async def pg_read_connection(self) -> AsyncIterator[Any]:
        """The asyncpg connection of one of ``run_read``'s readers (PostgreSQL only): in
        autocommit, with the server's own planner settings, outside the reserve
        ``asyncpg_connection()`` keeps for the engine. For a hot read that is ONE statement
        (prepared once per connection by asyncpg): no hop through a greenlet, no SQLAlchemy
        execution, no BEGIN. Leave it as it was found."""
        if self.is_sqlite:
            raise StorageError("pg_read_connection() is for PostgreSQL")
        async with self._lent(self._pg_reader()) as (held, raw):
            yield raw
        if raw.is_in_transaction():
            await self._drop(held)
        else:
            await self._keep_reader(held, raw)

    @asynccontextmanager
    async def _lent(
        self, taking: Awaitable[tuple[AsyncConnection, Any]]
    ) -> AsyncIterator[tuple[AsyncConnection, Any]]:
        """The connection ``taking`` takes, with its raw asyncpg connection, for one use:
        errors come out translated, and one that ends the use (a statement cut short, or
        cancelled, may leave the connection mid-protocol) drops it. The caller puts it back
        after a use that ended well."""
        try:
            held, raw = await taking
        except Exception as exc:
            _raise_translated(exc)
        try:
            yield held, raw
        except BaseException as exc:
            await self._drop(held)
            if isinstance(exc, Exception):
                _raise_translated(exc)
            raise

    async def _asyncpg_take(self, flush: bool) -> tuple[AsyncConnection, Any]:
        # Kept out of the pool between uses: a checkout through SQLAlchemy costs ~180 us
        # (events, isolation level, reset on return), five times the statement itself.
        raw: Any
        idle = self._pg_idle[flush]
        while idle:
            held, raw = idle.pop()
            if not raw.is_closed():
                return held, raw
            # Its server went away while it sat idle (a restart, an outage): drop it rather
            # than fail the caller with it.
            await self._drop(held)
        held = await self.engine.connect()
        try:
            raw = (await held.get_raw_connection()).driver_connection
            # The hot statements are key lookups whose plan never depends on the values;
            # planning the engine's tick takes as long as running it (0.3 ms), and left
            # to itself PostgreSQL plans a prepared statement afresh at least five times
            # per connection and then only maybe settles on a generic plan. A plan made
            # while the tables are small (a fresh database) would scan them whole, and
            # stay until the next ANALYZE: the tick grew 0.7 ms per 1,000 rows. Without
            # sequential scans the only plans left walk the indexes.
            await raw.execute("SET plan_cache_mode = force_generic_plan")
            await raw.execute("SET enable_seqscan = off")
            if not flush:
                await raw.execute("SET synchronous_commit = off")
        except BaseException:
            await self._drop(held)
            raise
        return held, raw

    async def _pg_reader(self) -> tuple[AsyncConnection, Any]:
        # Kept out of the pool between reads, as for asyncpg_connection(): a checkout and
        # return through SQLAlchemy's pool cost more CPU than a short read itself.
        raw: Any
        while self._pg_readers:
            held, raw = self._pg_readers.pop()
            if not raw.is_closed():
                return held, raw
            await self._drop(held)
        held = await self._autocommit.connect()
        try:
            raw = (await held.get_raw_connection()).driver_connection
        except BaseException:
            await self._drop(held)
            raise
        return held, raw

    async def _keep_reader(self, held: AsyncConnection, raw: Any) -> None:
        if raw.is_closed() or len(self._pg_readers) >= self._pg_reserved:
            await held.close()  # back to the pool
        else:
            self._pg_readers.append((held, raw))

    @staticmethod
    async def _drop(held: AsyncConnection) -> None:
        """Invalidate and close a connection; one whose server is gone is closed all the same."""
        try:
            await held.invalidate()
            await held.close()
        except Exception:
            _log.debug("closing a broken connection failed", exc_info=True)

    def _open_group(self) -> GroupCommit:
        self._group = GroupCommit(lambda: self._lanes, self._open_lanes, self._lock())
        return self._group

    def _lock(self) -> asyncio.Lock:
        if self._write_lock is None:
            self._write_lock = asyncio.Lock()
        return self._write_lock

    async def _open_lanes(self) -> SqliteLanes:
        if self._lanes is None:
            lanes = SqliteLanes(self.engine, readers=self._sqlite_readers)
            await lanes.hold_checkpointer()
            if self._lanes is None:
                self._lanes = lanes
            else:  # another caller opened them meanwhile
                await lanes.close()
        return self._lanes

    async def ping(self) -> None:
        """Ask the database for ``SELECT 1``; StorageError naming the database if it cannot be
        reached.

        A pooled connection that an outage broke says so only when it is used, and SQLAlchemy
        then drops it and every connection pooled before it: one more try, on a new
        connection, tells whether the database answers now (a health probe right after the
        database came back must not report the outage that is over)."""
        for last in (False, True):
            try:
                async with self.engine.connect() as conn:
                    await conn.exec_driver_sql("SELECT 1")
                return
            except DatabaseUnavailable:
                raise
            except (OSError, OperationalError, DBAPIError) as exc:
                if isinstance(exc, DBAPIError) and exc.connection_invalidated and not last:
                    continue
                if is_unavailable(exc):
                    raise DatabaseUnavailable.from_error(exc) from None
                raise _storage_error(exc) from None

    async def dispose(self) -> None:
        if self._group is not None:
            await self._group.settled()
        if self._lanes is not None:
            lanes, self._lanes = self._lanes, None
            await lanes.close()
        idle, self._pg_idle = self._pg_idle, {True: [], False: []}
        readers, self._pg_readers = self._pg_readers, []
        for held, _raw in [*idle[True], *idle[False], *readers]:
            await held.close()
        await self.engine.dispose()
        if self._memory_keeper is not None:
            # The last connection to close frees the database; keep the flag for callers.
            self._memory_keeper.close()


def _then_rollback(conn: Connection, fn: Callable[[Connection], T]) -> T:
    """``fn(conn)``, then the transaction SQLAlchemy began ended, so that the connection can
    serve the next read as it was (in autocommit nothing of it reaches the server)."""
    try:
        return fn(conn)
    finally:
        conn.rollback()


def _private_memory_database(url: str) -> tuple[str, sqlite3.Connection]:
    """A URL of a new, private in-memory database that all connections opening it share
    (SQLite's ``memdb`` VFS: a name that starts with ``/`` is shared within the process),
    and a connection that keeps it alive until closed (the last one to close frees it)."""
    name = f"/flowloom-{secrets.token_hex(12)}"
    keeper = sqlite3.connect(f"file:{name}?vfs=memdb", uri=True, check_same_thread=False)
    shared = make_url(url).set(database=f"file:{name}", query={"vfs": "memdb", "uri": "true"})
    return shared.render_as_string(hide_password=False), keeper


@contextmanager
def unavailable_as_storage_error() -> Iterator[None]:
    """Raise ``DatabaseUnavailable`` for any error that says the database is out of reach."""
    try:
        yield
    except Exception as exc:
        _raise_translated(exc)


def _raise_translated(exc: Exception) -> NoReturn:
    """Raise ``DatabaseUnavailable`` (caused by ``exc``) when ``exc`` says the database is out
    of reach; ``exc`` itself, untouched, otherwise. Call it in an ``except`` block."""
    if isinstance(exc, StorageError) or not is_unavailable(exc):
        raise exc
    raise DatabaseUnavailable.from_error(exc) from exc


def _storage_error(exc: Exception) -> StorageError:
    reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
    return StorageError(f"database error: {reason}")


def _configure_sqlite(engine: AsyncEngine) -> None:
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        _set_pragmas(dbapi_connection)

    @event.listens_for(sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        options = conn.get_execution_options()
        if options.get(LANE, False):
            return  # the lane begins (or not) its transactions itself (sqlite_lanes.py)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if options.get(WRITE_TRANSACTION) else "BEGIN")


def _set_pragmas(dbapi_connection: Any) -> None:
    # Take transaction control from the driver, so BEGIN is ours (see _on_begin).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        # A statement that meets a lock waits for it off the event loop (sqlite_driver.py).
        cursor.execute("PRAGMA busy_timeout = 0")
        # Only takes effect on a new, empty file; existing files are converted by migrate.
        cursor.execute("PRAGMA auto_vacuum = INCREMENTAL")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


def sqlite_connection(conn: Connection) -> sqlite3.Connection:
    """The ``sqlite3`` connection under a ``run_write``/``run_read`` connection, or under a
    session's connection (in ``run_sync``), on SQLite.

    For the hottest statements only: a statement run on it directly skips SQLAlchemy's
    per-execution work (about 30 us each), so it must bind values exactly as the column types
    would (see ``flowloom.engine.store``).
    """
    driver = conn.connection.driver_connection
    assert isinstance(driver, sqlite3.Connection)
    return driver
