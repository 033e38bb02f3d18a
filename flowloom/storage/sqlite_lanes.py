"""SQLite's lanes for ``Database.run_write``/``run_read``: held connections of the one engine.

A function of a sync SQLAlchemy ``Connection`` runs on a connection checked out of the
``Database``'s own async engine once and held, so no pool checkout, greenlet or thread hop
comes between it and SQLite:

- **the writer**, used by one transaction at a time (the ``Database``'s write lock): on the
  event loop's thread when the write lock is free at once (``inline``), else in the writer
  thread, where waiting for another process's lock blocks nothing else;
- **the inline reader**, on the event loop's thread, for lookups of a few rows by index;
- **readers**, one per reader thread, for reads that may scan (WAL lets them read while a
  write goes on).

The writer does not checkpoint the WAL itself after commits (SQLite's default, which puts a
copy of the WAL and an fsync into every thousandth page's commit): a checkpoint thread does it,
off the path of the committing transaction. Other connections keep SQLite's default, so the
WAL stays bounded whoever writes.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeAlias, TypeVar

from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from flowloom.storage.sqlite_driver import InlineConnection, is_busy

__all__ = ["LANE", "Group", "SqliteLanes"]

T = TypeVar("T")

Group: TypeAlias = list[tuple[bool, Any]]
"""What each function of a group commit did: (True, what it returned) or (False, what it raised)."""

_log = logging.getLogger("flowloom.storage")

LANE = "flowloom_lane"
"""Execution option of the held connections: their transactions are the lane's own (a write's
BEGIN IMMEDIATE; none around reads), not begun for SQLAlchemy (see ``Database``)."""

_CHECKPOINT_EVERY_COMMITS = 100
"""Writer commits between WAL checkpoints: a few pages each, so about SQLite's own default of
a checkpoint per 1,000 pages."""


class _Held:
    """A connection checked out of the engine and kept: its sync ``Connection`` and driver."""

    __slots__ = ("conn", "held", "raw")

    def __init__(self, held: AsyncConnection) -> None:
        self.held = held
        self.conn: Connection = held.sync_connection  # type: ignore[assignment]
        self.conn.execution_options(**{LANE: True})
        raw = self.conn.connection.driver_connection
        assert isinstance(raw, InlineConnection)
        self.raw: InlineConnection = raw


class SqliteLanes:
    """The held connections and the threads that use them (see the module docstring)."""

    def __init__(self, engine: AsyncEngine, *, readers: int) -> None:
        self._engine = engine
        self.writer_thread = ThreadPoolExecutor(1, thread_name_prefix="flowloom-sqlite-write")
        self._reader_threads = ThreadPoolExecutor(
            readers, thread_name_prefix="flowloom-sqlite-read"
        )
        self._checkpoint_thread = ThreadPoolExecutor(
            1, thread_name_prefix="flowloom-sqlite-checkpoint"
        )
        self._writer: _Held | None = None
        self._inline_reader: _Held | None = None
        self._checkpointer: _Held | None = None
        self._idle_readers: list[_Held] = []
        self._reader_slots = asyncio.Semaphore(readers)
        self._dropped: list[AsyncConnection] = []
        self._commits = 0
        self._checkpoint: Future[None] | None = None

    async def _hold(self) -> _Held:
        return _Held(await self._engine.connect())

    async def writer(self) -> _Held:
        """The writer connection (held by the caller of the write lock only)."""
        while self._dropped:
            await _close(self._dropped.pop())
        if self._writer is None:
            writer = await self._hold()
            writer.raw.execute("PRAGMA wal_autocheckpoint = 0")
            self._writer = writer
        return self._writer

    def writer_now(self) -> _Held | None:
        """The writer connection if it is held and nothing waits to be closed, else None (then
        ``writer()`` must be awaited)."""
        return None if self._dropped else self._writer

    def on_writer_thread(
        self, lock: asyncio.Lock, call: Callable[..., T], *args: Any
    ) -> asyncio.Future[T]:
        """``call(*args)`` in the writer thread, by a caller holding ``lock`` (this process's
        write lock): released once the thread is done with the connection, even if whoever
        awaits the result is cancelled meanwhile, since releasing earlier would hand the
        connection to two writers at once."""
        loop = asyncio.get_running_loop()
        try:
            work = self.writer_thread.submit(call, *args)
        except BaseException:
            lock.release()
            raise
        work.add_done_callback(lambda _: loop.call_soon_threadsafe(lock.release))
        return asyncio.wrap_future(work)

    def group_here(self, writer: _Held, fns: Sequence[Callable[[Connection], Any]]) -> Group | bool:
        """A group commit on this thread if SQLite's write lock is free this instant
        (``finish_group``); else whether it must be written apart in the writer thread: False
        if it could not begin (nothing done), True if it was rolled back."""
        if not self.begin_now(writer):
            return False
        outcomes = self.finish_group(writer, fns)
        return True if outcomes is None else outcomes

    @staticmethod
    def begin_now(writer: _Held) -> bool:
        """BEGIN IMMEDIATE if the write lock is free this instant; False if it is taken."""
        try:
            sqlite3.Connection.cursor(writer.raw, sqlite3.Cursor).execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if is_busy(exc):
                return False
            raise
        return True

    def write(self, writer: _Held, fn: Callable[[Connection], T]) -> T:
        """The whole transaction, waiting for the write lock as long as the patient timeout."""
        writer.raw.execute("BEGIN IMMEDIATE")
        return self.finish(writer, fn)

    def finish(self, writer: _Held, fn: Callable[[Connection], T]) -> T:
        """Run ``fn`` in the transaction just begun and commit it, or roll it back."""
        conn, raw = writer.conn, writer.raw
        try:
            result = fn(conn)
            raw.commit()
        except BaseException:
            # A failed COMMIT (a deferred constraint) leaves SQLite's transaction open: it must
            # end here, or the next transaction on this connection would fail to begin, and
            # reads on it would see writes that no other connection can.
            self._roll_back_or_drop(writer)
            raise
        self._committed(conn)
        return result

    def write_group(self, writer: _Held, fns: Sequence[Callable[[Connection], Any]]) -> Group:
        """A group commit in a transaction begun here, waiting for the write lock as ``write``
        does: ``finish_group``, or ``write_group_apart`` when that asks for it."""
        writer.raw.execute("BEGIN IMMEDIATE")
        outcomes = self.finish_group(writer, fns)
        return self.write_group_apart(writer, fns) if outcomes is None else outcomes

    def finish_group(
        self, writer: _Held, fns: Sequence[Callable[[Connection], Any]]
    ) -> Group | None:
        """Run every function of ``fns`` in the transaction just begun and commit them all at
        once (``group_commit.py``): what each returned or raised, in order.

        A function that raises before it changed a row leaves nothing to undo: its exception
        is its outcome, and the others go on. One that raises after it changed rows, or an
        error that ended the transaction or failed its COMMIT, rolls the whole transaction
        back: None, and the group must be written again apart (``write_group_apart``).
        Savepoints would undo one function alone, but they cost as much as the commit saves.
        A group of one is a plain transaction (``finish``), its failure its outcome."""
        if len(fns) == 1:
            try:
                return [(True, self.finish(writer, fns[0]))]
            except Exception as exc:
                return [(False, exc)]
        conn, raw = writer.conn, writer.raw
        outcomes: Group = []
        try:
            for fn in fns:
                changes = raw.total_changes
                try:
                    outcomes.append((True, fn(conn)))
                except Exception as exc:
                    if raw.total_changes != changes or not raw.in_transaction:
                        raise
                    outcomes.append((False, exc))
            raw.commit()
        except BaseException as exc:
            self._roll_back_or_drop(writer)
            if not isinstance(exc, Exception):
                raise
            return None
        self._committed(conn)
        return outcomes

    def write_group_apart(self, writer: _Held, fns: Sequence[Callable[[Connection], Any]]) -> Group:
        """A group whose ``finish_group`` was rolled back, again: each function inside a
        savepoint of its own in one transaction (one that raises is undone alone), and if that
        transaction fails too, each function alone in a transaction of its own."""
        conn, raw = writer.conn, writer.raw
        plain = sqlite3.Connection.execute
        outcomes: Group = []
        try:
            raw.execute("BEGIN IMMEDIATE")
            for fn in fns:
                plain(raw, "SAVEPOINT flowloom_group")
                try:
                    outcomes.append((True, fn(conn)))
                except Exception as exc:
                    # Fails (no such savepoint) if the error ended the whole transaction.
                    plain(raw, "ROLLBACK TO flowloom_group")
                    outcomes.append((False, exc))
                plain(raw, "RELEASE flowloom_group")
            raw.commit()
        except BaseException as exc:
            self._roll_back_or_drop(writer)
            if not isinstance(exc, Exception):
                raise
            _log.info("a group commit of %d writes failed; each writes alone", len(fns))
            return [self._alone(fn) for fn in fns]
        self._committed(conn)
        return outcomes

    def _alone(self, fn: Callable[[Connection], Any]) -> tuple[bool, Any]:
        writer = self._writer
        if writer is None:  # dropped after a failure: held again on the loop, not here
            return (False, sqlite3.OperationalError("the writer connection was dropped"))
        try:
            return (True, self.write(writer, fn))
        except Exception as exc:
            return (False, exc)

    def _committed(self, conn: Connection) -> None:
        """After a commit: end SQLAlchemy's bookkeeping transaction, checkpoint now and then."""
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

    def _roll_back_or_drop(self, writer: _Held) -> None:
        """Roll back the writer's failed transaction; if the rollback fails too (or leaves it
        open), drop the writer connection, whose close rolls it back: no transaction outlives
        its failure. The next write holds a new connection."""
        try:
            writer.raw.rollback()
            if writer.conn.in_transaction():
                writer.conn.rollback()
            if not writer.raw.in_transaction:
                return
        except Exception:
            _log.warning(
                "rolling back a failed write failed; dropping the connection", exc_info=True
            )
        self._writer = None
        try:
            writer.conn.invalidate()  # closes the sqlite3 connection instead of pooling it
        except Exception:
            _log.debug("invalidating the dropped writer connection failed", exc_info=True)
        self._dropped.append(writer.held)  # given back to the pool on the event loop

    async def read_inline(self, fn: Callable[[Connection], T]) -> T:
        if self._inline_reader is None:
            self._inline_reader = await self._hold()
        return _read(self._inline_reader.conn, fn)

    async def read(self, fn: Callable[[Connection], T]) -> T:
        """``fn`` on a reader connection in a reader thread (one connection per thread: a
        read waits here for one to be idle rather than hold a connection while it queues)."""
        await self._reader_slots.acquire()
        try:
            reader = self._idle_readers.pop() if self._idle_readers else await self._hold()
        except BaseException:
            self._reader_slots.release()
            raise
        loop = asyncio.get_running_loop()
        work = self._reader_threads.submit(_read, reader.conn, fn)

        def idle_again() -> None:
            self._idle_readers.append(reader)
            self._reader_slots.release()

        def done(_: Future[T]) -> None:
            # Idle again only once its thread is done, even if the caller was cancelled.
            loop.call_soon_threadsafe(idle_again)

        work.add_done_callback(done)
        return await asyncio.wrap_future(work)

    def _checkpoint_wal(self) -> None:
        checkpointer = self._checkpointer
        if checkpointer is None:
            return
        try:
            # PASSIVE: copies what it can without waiting for readers or blocking writers.
            checkpointer.raw.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except Exception:
            _log.warning("WAL checkpoint failed; the next one will retry", exc_info=True)

    async def hold_checkpointer(self) -> None:
        if self._checkpointer is None:
            self._checkpointer = await self._hold()

    async def close(self) -> None:
        loop = asyncio.get_running_loop()
        # Threads may be finishing a transaction: wait for them off the event loop.
        for threads in (self.writer_thread, self._reader_threads, self._checkpoint_thread):
            await loop.run_in_executor(None, threads.shutdown, True)
        held = [self._writer, self._inline_reader, self._checkpointer, *self._idle_readers]
        self._writer = self._inline_reader = self._checkpointer = None
        self._idle_readers = []
        for one in held:
            if one is not None:
                await _close(one.held)
        while self._dropped:
            await _close(self._dropped.pop())


def _read(conn: Connection, fn: Callable[[Connection], T]) -> T:
    try:
        return fn(conn)
    finally:
        if conn.in_transaction():
            conn.rollback()


async def _close(held: AsyncConnection) -> None:
    try:
        await held.close()
    except Exception:
        _log.debug("closing a held SQLite connection failed", exc_info=True)
