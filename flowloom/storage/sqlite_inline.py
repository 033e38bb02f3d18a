"""aiosqlite's connection API, run on the event loop's own thread.

aiosqlite gives each connection a thread and sends every call there: a queue put, a thread
wake-up and a ``call_soon_threadsafe`` back, tens of microseconds each, a hundred times in a
run's start. SQLite itself answers these statements in microseconds, so here they run inline.

What could block the loop is waiting for another process's write lock: inline statements run
with no busy timeout at all, and one that meets a lock (SQLITE_BUSY) is run again on a worker
thread with the patient timeout, so the loop waits without stalling. In one process writers
never meet each other there: ``Database.write()`` queues them on an asyncio lock first.

A caller cancelled while its statement waits on the worker thread is cancelled only once the
thread is done with the connection (at most the patient timeout later): until then nothing
else may touch the connection, because a ``sqlite3`` connection used from two threads at once
crashes the process, and a rollback run beside a BEGIN that is still waiting would leave that
BEGIN's transaction open on a connection its pool believes idle.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Callable
from typing import Any

import aiosqlite

__all__ = ["InlineConnection", "inline_connect"]


class _RunAtOnce:
    """Stands in for aiosqlite's queue to its thread: SQLAlchemy's adapter puts some calls on
    the queue directly (setting ``isolation_level``); here they run as they are put."""

    def put_nowait(self, item: tuple[asyncio.Future[Any] | None, Callable[[], Any]]) -> None:
        future, function = item
        try:
            result = function()
        except BaseException as exc:
            if future is not None and not future.done():
                future.set_exception(exc)
            return
        if future is not None and not future.done():
            future.set_result(result)


class InlineConnection(aiosqlite.Connection):
    """An ``aiosqlite.Connection`` without its thread (SQLAlchemy's aiosqlite dialect drives it
    through ``async_creator_fn``)."""

    def __init__(self, connector: Callable[[], sqlite3.Connection], patient_ms: int) -> None:
        super().__init__(connector, iter_chunk_size=64)
        self._tx = _RunAtOnce()  # type: ignore[assignment]
        self._patient_ms = int(patient_ms)

    @property
    def sqlite3_connection(self) -> sqlite3.Connection:
        """The ``sqlite3`` connection itself (statements on it run inline, as all do here)."""
        if self._connection is None:
            raise ValueError("Connection closed")
        return self._connection

    def __await__(self) -> Any:
        return self._connect().__await__()

    async def _connect(self) -> InlineConnection:
        if self._connection is None:
            self._connection = self._connector()
        return self

    async def _execute(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if not self._running or self._connection is None:
            raise ValueError("Connection closed")
        try:
            return fn(*args, **kwargs)
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY:
                raise
        work = asyncio.ensure_future(asyncio.to_thread(self._patiently, fn, args, kwargs))
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

    def _patiently(self, fn: Callable[..., Any], args: Any, kwargs: Any) -> Any:
        conn = self._conn
        conn.execute(f"PRAGMA busy_timeout = {self._patient_ms}")
        try:
            return fn(*args, **kwargs)
        finally:
            conn.execute("PRAGMA busy_timeout = 0")

    def stop(self) -> asyncio.Future[Any] | None:
        self._running = False
        if self._connection is not None:
            self._connection.close()
            self._connection = None
        return None


def inline_connect(patient_ms: int) -> Callable[..., InlineConnection]:
    """An ``async_creator_fn`` for SQLAlchemy: called with ``sqlite3.connect``'s arguments."""

    def create(database: Any, **kwargs: Any) -> InlineConnection:
        kwargs["check_same_thread"] = False

        def connector() -> sqlite3.Connection:
            connection: sqlite3.Connection = sqlite3.connect(str(database), **kwargs)
            return connection

        return InlineConnection(connector, patient_ms)

    return create
