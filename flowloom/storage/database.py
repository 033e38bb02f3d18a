"""The connection to the database: one engine, read sessions and write transactions.

SQLite is set up for many concurrent writers without "database is locked": WAL journal,
``synchronous=NORMAL``, foreign keys on, a busy timeout, and write transactions that take the
write lock when they begin (``BEGIN IMMEDIATE``) so two writers never deadlock upgrading a read
lock. Inside one process writers also queue on an asyncio lock, so they wait without polling.

Two ways in, side by side:

- ``read()`` / ``write()`` yield an ORM ``AsyncSession``: what the repositories use.
- ``run_read(fn)`` / ``run_write(fn)`` call a plain function of a sync SQLAlchemy
  ``Connection`` and return its result: the fast path for hot, short work (the engine's
  scheduler tick, history pages). On SQLite the whole function runs in ONE hop to a thread that
  owns a sync ``sqlite3`` connection, instead of one aiosqlite hop per statement, BEGIN and
  COMMIT; with ``inline=True`` it even runs on the event loop's own thread when that is cheaper
  than any hop (see ``run_write``). On PostgreSQL the function runs on an asyncpg connection
  through ``AsyncConnection.run_sync``; reads there skip BEGIN/ROLLBACK (autocommit).

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
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from typing import Any, NoReturn, TypeVar

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine, make_url
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
from flowloom.storage.sqlite_inline import InlineConnection, inline_connect

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
    after any crash). On by default: the flush costs 0.2-2 ms per commit on a busy disk.
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
            engine_args["connect_args"].setdefault(
                "async_creator_fn", inline_connect(sqlite_busy_timeout_ms)
            )
        if self.dialect == "postgresql":
            engine_args.update(pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=False)
        self.engine: AsyncEngine = create_async_engine(self.url, **engine_args)
        if self.dialect == "sqlite":
            _configure_sqlite(self.engine, busy_timeout_ms=sqlite_busy_timeout_ms)
        write_engine = self.engine.execution_options(**{WRITE_TRANSACTION: True})
        self._reads = async_sessionmaker(self.engine, expire_on_commit=False, autoflush=False)
        self._writes = async_sessionmaker(write_engine, expire_on_commit=False, autoflush=False)
        self._write_lock: asyncio.Lock | None = None
        self._busy_timeout_ms = sqlite_busy_timeout_ms
        self._sqlite_readers = max(1, pool_size // 2)
        self._fast: _SqliteFastPath | None = None
        # Reads on PostgreSQL need no transaction: autocommit saves the BEGIN and ROLLBACK round
        # trips that asyncpg would otherwise spend around every read.
        self._autocommit = self.engine.execution_options(isolation_level="AUTOCOMMIT")
        self._pg_reserved = max(1, pool_size // 4)
        self._pg_synchronous_commit = postgres_synchronous_commit
        self._pg_slots: asyncio.Semaphore | None = None
        self._pg_idle: list[tuple[AsyncConnection, Any]] = []

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
        short functions (a few statements on indexed rows, like the engine's tick): when the
        write lock is free at once, ``fn`` runs right here on the event loop's thread, because a
        hop to a thread and back costs 30-150 us on a loaded machine, more than such a
        transaction itself (about 40 us in WAL with ``synchronous=NORMAL``); when another
        process holds the lock it waits in the writer thread as usual. On PostgreSQL ``fn``
        runs through ``AsyncConnection.run_sync`` in a transaction.
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
        fast = self._sqlite_fast()
        lock = self._lock()
        await lock.acquire()
        # In memory there is no WAL: the commit waits for readers, and a reader may be a
        # session of this very event loop, which could not end while the loop waited here.
        if inline and not self.in_memory:
            try:
                began = fast.begin_now()
            except BaseException:
                lock.release()
                raise
            if began:
                try:
                    return fast.finish(fn)
                finally:
                    lock.release()
        try:
            future = asyncio.get_running_loop().run_in_executor(fast.writer_thread, fast.write, fn)
        except BaseException:
            lock.release()
            raise

        def done(finished: asyncio.Future[T]) -> None:
            # The connection is free only once its thread is done, even when the caller was
            # cancelled meanwhile: releasing earlier would hand it to two writers at once.
            lock.release()
            if not finished.cancelled():
                finished.exception()

        future.add_done_callback(done)
        return await asyncio.shield(future)

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
            async with self._autocommit.connect() as conn:
                try:
                    return await conn.run_sync(fn)
                except (OperationalError, DBAPIError) as exc:
                    if is_unavailable(exc):
                        raise
                    raise _storage_error(exc) from exc
        fast = self._sqlite_fast()
        if inline and not self.in_memory:
            return fast.read(fn, inline=True)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(fast.reader_threads, fast.read, fn)

    @asynccontextmanager
    async def asyncpg_connection(self) -> AsyncIterator[Any]:
        """A pooled asyncpg connection (PostgreSQL only) outside any transaction.

        Each statement commits on its own, and asyncpg caches its prepared form per connection:
        for a hot path that is ONE statement, this is one round trip instead of three (BEGIN,
        the statement, COMMIT). The session is tuned for key lookups by index (generic plans,
        no sequential scans): not for queries that scan. Leave it as it was found.
        """
        if self.is_sqlite:
            raise StorageError("asyncpg_connection() is for PostgreSQL")
        if self._pg_slots is None:
            self._pg_slots = asyncio.Semaphore(self._pg_reserved)
        async with self._pg_slots:
            try:
                held, raw = await self._asyncpg_take()
            except Exception as exc:
                _raise_translated(exc)
            try:
                yield raw
            except BaseException as exc:
                # A statement cut short (cancelled) may leave the connection mid-protocol.
                await self._drop(held)
                if isinstance(exc, Exception):
                    _raise_translated(exc)
                raise
            if raw.is_closed() or raw.is_in_transaction():
                await self._drop(held)
            else:
                self._pg_idle.append((held, raw))

    async def _asyncpg_take(self) -> tuple[AsyncConnection, Any]:
        # Kept out of the pool between uses: a checkout through SQLAlchemy costs ~180 us
        # (events, isolation level, reset on return), five times the statement itself.
        raw: Any
        while self._pg_idle:
            held, raw = self._pg_idle.pop()
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
            if not self._pg_synchronous_commit:
                await raw.execute("SET synchronous_commit = off")
        except BaseException:
            await self._drop(held)
            raise
        return held, raw

    @staticmethod
    async def _drop(held: AsyncConnection) -> None:
        """Invalidate and close a connection; one whose server is gone is closed all the same."""
        try:
            await held.invalidate()
            await held.close()
        except Exception:
            _log.debug("closing a broken connection failed", exc_info=True)

    def _lock(self) -> asyncio.Lock:
        if self._write_lock is None:
            self._write_lock = asyncio.Lock()
        return self._write_lock

    def _sqlite_fast(self) -> _SqliteFastPath:
        if self._fast is None:
            self._fast = _SqliteFastPath(
                self.url, busy_timeout_ms=self._busy_timeout_ms, readers=self._sqlite_readers
            )
        return self._fast

    async def ping(self) -> None:
        """Connect once; StorageError naming the database if it cannot be reached."""
        try:
            async with self.engine.connect() as conn:
                await conn.exec_driver_sql("SELECT 1")
        except DatabaseUnavailable:
            raise
        except (OSError, OperationalError, DBAPIError) as exc:
            if is_unavailable(exc):
                raise DatabaseUnavailable.from_error(exc) from None
            raise _storage_error(exc) from None

    async def dispose(self) -> None:
        if self._fast is not None:
            fast, self._fast = self._fast, None
            # Threads may be finishing a transaction: wait for them off the event loop.
            await asyncio.get_running_loop().run_in_executor(None, fast.close)
        idle, self._pg_idle = self._pg_idle, []
        for held, _raw in idle:
            await held.close()
        await self.engine.dispose()
        if self._memory_keeper is not None:
            # The last connection to close frees the database; keep the flag for callers.
            self._memory_keeper.close()


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


def _configure_sqlite(engine: AsyncEngine, *, busy_timeout_ms: int) -> None:
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Inline connections wait for locks on a worker thread instead (sqlite_inline.py).
        inline = isinstance(dbapi_connection.driver_connection, InlineConnection)
        _set_pragmas(dbapi_connection, busy_timeout_ms=0 if inline else busy_timeout_ms)

    @event.listens_for(sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        writing = conn.get_execution_options().get(WRITE_TRANSACTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if writing else "BEGIN")


def _set_pragmas(dbapi_connection: Any, *, busy_timeout_ms: int) -> None:
    # Take transaction control from the driver, so BEGIN is ours (see _on_begin).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
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
    if isinstance(driver, InlineConnection):  # a connection of the async engine
        return driver.sqlite3_connection
    assert isinstance(driver, sqlite3.Connection)
    return driver


_CHECKPOINT_EVERY_COMMITS = 100
"""Fast-path commits between WAL checkpoints: a few pages each, so about SQLite's own default
of a checkpoint per 1,000 pages."""


class _SqliteFastPath:
    """Sync ``sqlite3`` connections beside the async engine, for ``run_write``/``run_read``.

    One writer connection, used by one transaction at a time (the Database's write lock), on
    the event loop's thread (``inline``) or in the writer thread; reader threads with pooled
    connections; and a checkpoint thread. The writer does not checkpoint the WAL itself after
    commits (SQLite's default, which puts a copy of the WAL and an fsync into every thousandth
    page's commit): the checkpoint thread does it, off the path of the committing transaction.
    Other connections keep SQLite's default, so the WAL stays bounded whoever writes.
    """

    def __init__(self, url: str, *, busy_timeout_ms: int, readers: int) -> None:
        sync_url = make_url(url).set(drivername="sqlite+pysqlite")
        if sync_url.database in (None, "", ":memory:"):
            raise StorageError("the fast path needs a SQLite file, not an in-memory database")
        self.busy_timeout_ms = busy_timeout_ms
        self.engine: Engine = create_engine(
            sync_url,
            pool_size=readers + 2,
            max_overflow=readers,
            # The writer connection moves between the event loop's thread and the writer
            # thread, one transaction at a time.
            connect_args={"check_same_thread": False},
        )

        @event.listens_for(self.engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            _set_pragmas(dbapi_connection, busy_timeout_ms=busy_timeout_ms)

        self.writer_thread = ThreadPoolExecutor(1, thread_name_prefix="flowloom-sqlite-write")
        self.reader_threads = ThreadPoolExecutor(readers, thread_name_prefix="flowloom-sqlite-read")
        self._checkpoint_thread = ThreadPoolExecutor(
            1, thread_name_prefix="flowloom-sqlite-checkpoint"
        )
        self._writer: tuple[Connection, sqlite3.Connection] | None = None
        self._inline_reader: Connection | None = None
        self._commits = 0
        self._checkpoint: Future[None] | None = None

    def _writer_connection(self) -> tuple[Connection, sqlite3.Connection]:
        if self._writer is None:
            conn = self.engine.connect()
            raw = sqlite_connection(conn)
            raw.execute("PRAGMA wal_autocheckpoint = 0")
            self._writer = (conn, raw)
        return self._writer

    def begin_now(self) -> bool:
        """BEGIN IMMEDIATE if the write lock is free this instant; False if it is taken."""
        raw = self._writer_connection()[1]
        raw.execute("PRAGMA busy_timeout = 0")
        try:
            raw.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode & 0xFF == sqlite3.SQLITE_BUSY:
                return False
            raise
        finally:
            raw.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_ms)}")
        return True

    def write(self, fn: Callable[[Connection], T]) -> T:
        """The whole transaction, waiting for the write lock as long as the busy timeout."""
        self._writer_connection()[1].execute("BEGIN IMMEDIATE")
        return self.finish(fn)

    def finish(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn`` in the transaction just begun and commit it, or roll it back."""
        conn, raw = self._writer_connection()
        try:
            result = fn(conn)
            raw.commit()
        except BaseException:
            # A failed COMMIT (SQLITE_BUSY, a deferred constraint) leaves SQLite's transaction
            # open: it must end here, or the next transaction on this connection would fail
            # to begin, and reads on it would see writes that no other connection can.
            self._roll_back_or_drop(conn, raw)
            raise
        if conn.in_transaction():
            # fn used SQLAlchemy, which began its own bookkeeping transaction: end it too (the
            # commit reaches sqlite3 with nothing left to commit, and does nothing).
            conn.commit()
        self._commits += 1
        if self._commits >= _CHECKPOINT_EVERY_COMMITS and (
            self._checkpoint is None or self._checkpoint.done()
        ):
            self._commits = 0
            self._checkpoint = self._checkpoint_thread.submit(self._checkpoint_wal)
        return result

    def _roll_back_or_drop(self, conn: Connection, raw: sqlite3.Connection) -> None:
        """Roll back the writer's failed transaction; if the rollback fails too (or leaves it
        open), drop the writer connection, whose close rolls it back: no transaction outlives
        its failure. The next write opens a new connection."""
        try:
            raw.rollback()
            if conn.in_transaction():
                conn.rollback()
            if not raw.in_transaction:
                return
        except Exception:
            _log.warning(
                "rolling back a failed write failed; dropping the connection", exc_info=True
            )
        self._writer = None
        try:
            conn.invalidate()  # closes the sqlite3 connection instead of pooling it
            conn.close()
        except Exception:
            _log.debug("closing the dropped writer connection failed", exc_info=True)

    def read(self, fn: Callable[[Connection], T], *, inline: bool = False) -> T:
        if inline:
            if self._inline_reader is None:
                self._inline_reader = self.engine.connect()
            conn = self._inline_reader
            try:
                return fn(conn)
            finally:
                if conn.in_transaction():
                    conn.rollback()
        with self.engine.connect() as conn:
            return fn(conn)

    def _checkpoint_wal(self) -> None:
        try:
            with self.engine.connect() as conn:
                # PASSIVE: copies what it can without waiting for readers or blocking writers.
                conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
        except Exception:
            _log.warning("WAL checkpoint failed; the next one will retry", exc_info=True)

    def close(self) -> None:
        for pool in (self.writer_thread, self.reader_threads, self._checkpoint_thread):
            pool.shutdown(wait=True)
        if self._writer is not None:
            self._writer[0].close()
        if self._inline_reader is not None:
            self._inline_reader.close()
        self.engine.dispose()
