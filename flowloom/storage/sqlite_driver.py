"""flowloom's SQLite driver for SQLAlchemy's asyncio extension: ``sqlite+flowloom://``.

SQLite answers the statements flowloom sends in microseconds, while a driver that gives each
connection a thread (aiosqlite) spends tens of microseconds per statement on the hop there and
back, a hundred times in a run's start. So this driver is the standard library's ``sqlite3``
run on the caller's own thread, with one difference: waiting for another process's write lock.

Connections never wait for a lock inside SQLite (``busy_timeout = 0``). A statement or COMMIT
that meets a lock (SQLITE_BUSY) is run again with the patient timeout:

- called from the event loop (SQLAlchemy's async engine runs its sync core in a greenlet), on
  a worker thread, so the loop goes on while it waits;
- called from a thread of its own (``Database.run_read``/``run_write`` hand long work to one),
  right there.

In one process writers never meet each other's lock: ``Database`` queues them on an asyncio lock
first. A caller cancelled while its statement waits on the worker thread is cancelled only once
the thread is done with the connection (at most the patient timeout later): until then nothing
else may touch the connection, because a ``sqlite3`` connection used from two threads at once
crashes the process, and a rollback beside a BEGIN that still waits would leave that BEGIN's
transaction open on a connection its pool believes idle.

Everything else is SQLAlchemy's own pysqlite dialect. Only public interfaces are used:
``sqlite3``'s connection and cursor factories, and ``sqlalchemy.util.concurrency``'s
``await_``/``in_greenlet``, which asyncio dialects exist to call.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Awaitable, Callable, Generator
from typing import Any, TypeVar

from sqlalchemy import pool
from sqlalchemy.dialects import registry
from sqlalchemy.dialects.sqlite.base import SQLiteExecutionContext
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite
from sqlalchemy.engine import URL
from sqlalchemy.util.concurrency import await_, in_greenlet

__all__ = ["DRIVER_NAME", "InlineConnection", "SQLiteDialect_flowloom", "is_busy"]

T = TypeVar("T")

DRIVER_NAME = "sqlite+flowloom"

PATIENT_MS_ARG = "flowloom_patient_ms"
"""A ``connect_args`` key: how long a statement that meets a lock waits for it (ms)."""


def is_busy(exc: sqlite3.OperationalError) -> bool:
    """Whether SQLite refused because another connection holds a lock (SQLITE_BUSY)."""
    return exc.sqlite_errorcode & 0xFF == sqlite3.SQLITE_BUSY


class _Ready(Awaitable[None]):
    """An awaitable that is done at once (see ``InlineCursor.execute``)."""

    def __await__(self) -> Generator[Any, None, None]:
        yield from ()


_READY = _Ready()


class InlineCursor(sqlite3.Cursor):
    """A ``sqlite3`` cursor whose statements, refused for a lock, wait for it (see the module)."""

    connection: InlineConnection

    def execute(self, sql: str, parameters: Any = (), /) -> InlineCursor:
        if in_greenlet():
            # SQLAlchemy's AsyncConnection.execute checks that its driver awaited something
            # (that it is an asyncio driver at all): one await of nothing, about a microsecond.
            await_(_READY)
        try:
            return super().execute(sql, parameters)
        except sqlite3.OperationalError as exc:
            if not is_busy(exc):
                raise
        return self.connection.patiently(super().execute, sql, parameters)

    def executemany(self, sql: str, seq_of_parameters: Any, /) -> InlineCursor:
        # SQLAlchemy begins a transaction before any write, so a lock is met by the first row.
        rows = (
            seq_of_parameters
            if isinstance(seq_of_parameters, list | tuple)
            else list(seq_of_parameters)
        )
        try:
            return super().executemany(sql, rows)
        except sqlite3.OperationalError as exc:
            if not is_busy(exc):
                raise
        return self.connection.patiently(super().executemany, sql, rows)

    async def _async_soft_close(self) -> None:
        """What SQLAlchemy's asyncio extension asks of an async driver's cursor before it hands
        a result with rows still to fetch to a caller: nothing to do here, since fetching from
        a ``sqlite3`` cursor never waits for I/O that the event loop could serve meanwhile."""


class InlineConnection(sqlite3.Connection):
    """A ``sqlite3`` connection run on its caller's thread, waiting for locks as the module says."""

    patient_ms: int = 30_000

    def cursor(self, factory: Any = InlineCursor) -> Any:
        return super().cursor(factory)

    # sqlite3's own shortcuts make a plain cursor: these make an InlineCursor.
    def execute(self, sql: str, parameters: Any = (), /) -> InlineCursor:
        cursor: InlineCursor = self.cursor()
        return cursor.execute(sql, parameters)

    def executemany(self, sql: str, seq_of_parameters: Any, /) -> InlineCursor:
        cursor: InlineCursor = self.cursor()
        return cursor.executemany(sql, seq_of_parameters)

    def commit(self) -> None:
        try:
            super().commit()
            return
        except sqlite3.OperationalError as exc:
            if not is_busy(exc):
                raise
        # SQLite keeps the transaction open after a COMMIT refused for a lock: try it again.
        self.patiently(super().commit)

    def patiently(self, call: Callable[..., T], *args: Any) -> T:
        """``call(*args)`` again, waiting for the lock up to ``patient_ms``."""
        if in_greenlet():  # an async caller on the event loop: wait off the loop
            return await_(self._wait_on_a_thread(call, args))
        return self._wait_here(call, args)

    def _wait_here(self, call: Callable[..., T], args: tuple[Any, ...]) -> T:
        sqlite3.Connection.execute(self, f"PRAGMA busy_timeout = {int(self.patient_ms)}")
        try:
            return call(*args)
        finally:
            sqlite3.Connection.execute(self, "PRAGMA busy_timeout = 0")

    async def _wait_on_a_thread(self, call: Callable[..., T], args: tuple[Any, ...]) -> T:
        work = asyncio.ensure_future(asyncio.to_thread(self._wait_here, call, args))
        try:
            return await asyncio.shield(work)
        except asyncio.CancelledError:
            # The thread goes on with the connection whatever happens to this caller: the
            # cancellation waits for it (see the module docstring). SQLAlchemy then discards
            # the connection (a cancelled statement invalidates it), and closing it rolls back
            # whatever the statement began meanwhile.
            while not work.done():
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.wait([work])
            if not work.cancelled():
                work.exception()  # retrieved: the caller hears of the cancellation only
            raise


class _ExecutionContext(SQLiteExecutionContext):
    def create_server_side_cursor(self) -> Any:
        # A sqlite3 cursor steps through its rows as they are fetched: it streams already.
        return self.root_connection.connection.cursor()


class SQLiteDialect_flowloom(SQLiteDialect_pysqlite):
    """pysqlite with ``InlineConnection``s, for ``create_async_engine``."""

    driver = "flowloom"
    is_async = True
    supports_statement_cache = True
    supports_server_side_cursors = True
    execution_ctx_cls = _ExecutionContext

    @classmethod
    def get_pool_class(cls, url: URL) -> type[pool.Pool]:
        if cls._is_url_file_db(url):
            return pool.AsyncAdaptedQueuePool
        return pool.StaticPool

    def connect(self, *cargs: Any, **cparams: Any) -> Any:
        patient_ms = int(cparams.pop(PATIENT_MS_ARG, InlineConnection.patient_ms))
        # A statement waiting for a lock runs on a worker thread (see the module docstring).
        cparams["check_same_thread"] = False
        cparams["timeout"] = 0  # never wait inside SQLite: see the module docstring
        cparams["factory"] = InlineConnection
        connection: InlineConnection = sqlite3.connect(*cargs, **cparams)
        connection.patient_ms = patient_ms
        return connection


registry.register("sqlite.flowloom", __name__, "SQLiteDialect_flowloom")
