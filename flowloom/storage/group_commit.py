"""Group commit: the short writes of many callers in one SQLite transaction.

A commit is most of what a short write costs on SQLite: every page the transaction changed is
appended to the WAL, each with its checksum, whatever else the transaction did. Writes of
different runs change the same few pages (the tail of each table and index), so ten runs' ticks
committed at once append not much more than one of them does.

``run_write(fn, inline=True)`` therefore joins the group of writes waiting for the next commit
instead of committing at once. The group is committed as soon as the event loop has run what
was ready when its first write joined: one pass of the loop, with nobody waiting on a timer. A
write alone commits alone, a loop pass later than it would have.

What each caller sees is what a transaction of its own would give it:

- the functions run one after the other, in the order their writes joined, and every caller
  hears back only once the commit is done;
- one that raises before it changed a row (a refused check, the usual failure) gets its
  exception, and the others go on;
- one that raises after it changed rows, or a transaction that fails (its COMMIT, or an error
  that ended it), rolls the whole group back, and the group is written again apart: each
  function inside a savepoint of its own (one that raises is undone alone), and should that
  transaction fail too, each function alone in a transaction of its own. A function may
  therefore run more than once, every run but the last rolled back with all it did. Savepoints
  are not used at first because they cost as much as the shared commit saves;
- a caller cancelled before its group began writes nothing; one cancelled after is like a
  cancelled ``run_write``: its write goes on.

The group takes the ``Database``'s write lock like any other writer, and commits on the event
loop's thread when the lock is free at once, else in the writer thread (another process holds
SQLite's lock), exactly as a single inline write does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy.engine import Connection

from flowloom.storage.sqlite_lanes import Group, SqliteLanes

__all__ = ["GroupCommit"]

T = TypeVar("T")

_Waiting = tuple[Callable[[Connection], Any], "asyncio.Future[Any]"]


class GroupCommit:
    """The writes waiting for the next group commit of one ``Database``."""

    __slots__ = ("_committing", "_lanes", "_lock", "_waiting")

    def __init__(self, lanes: Callable[[], Awaitable[SqliteLanes]], lock: asyncio.Lock) -> None:
        self._lanes = lanes
        self._lock = lock
        self._waiting: list[_Waiting] = []
        self._committing: set[asyncio.Task[None]] = set()

    def join(self, fn: Callable[[Connection], T]) -> asyncio.Future[T]:
        """Add ``fn`` to the next group: a future of what it returns once committed."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._waiting.append((fn, future))
        if len(self._waiting) == 1:
            task = loop.create_task(self._commit())
            self._committing.add(task)
            task.add_done_callback(self._committing.discard)
        return future

    async def settled(self) -> None:
        """Once every group that has begun is committed or failed (before the lanes close)."""
        while self._committing:
            await asyncio.wait(set(self._committing))

    async def _commit(self) -> None:
        lock = self._lock
        try:
            await lock.acquire()
        except BaseException:  # cancelled (the loop is closing): nothing was written
            waiting, self._waiting = self._waiting, []
            _fail(waiting, asyncio.CancelledError())
            raise
        # Whatever joined while the lock was taken is in this group too.
        waiting, self._waiting = self._waiting, []
        group = [(fn, future) for fn, future in waiting if not future.done()]
        if not group:
            lock.release()
            return
        fns = [fn for fn, _ in group]
        try:
            lanes = await self._lanes()
            writer = await lanes.writer()
            if lanes.begin_now(writer):
                outcomes = lanes.finish_group(writer, fns)
                if outcomes is not None:
                    lock.release()
                    _deliver(group, outcomes)
                    return
                # Rolled back: written again apart, where waiting for the lock blocks nothing.
                work = lanes.writer_thread.submit(lanes.write_group_apart, writer, fns)
            else:
                work = lanes.writer_thread.submit(lanes.write_group, writer, fns)
        except BaseException as exc:
            lock.release()
            _fail(group, exc)
            if not isinstance(exc, Exception):
                raise
            return
        loop = asyncio.get_running_loop()
        # The connection is free only once its thread is done with it.
        work.add_done_callback(lambda _: loop.call_soon_threadsafe(lock.release))
        try:
            outcomes = await asyncio.wrap_future(work)
        except BaseException as exc:
            _fail(group, exc)
            if not isinstance(exc, Exception):
                raise
            return
        _deliver(group, outcomes)


def _deliver(group: list[_Waiting], outcomes: Group) -> None:
    for (_, future), (ok, value) in zip(group, outcomes, strict=True):
        if future.done():  # its caller was cancelled meanwhile
            continue
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)


def _fail(group: list[_Waiting], exc: BaseException) -> None:
    for _, future in group:
        if not future.done():
            future.set_exception(exc if isinstance(exc, Exception) else asyncio.CancelledError())
