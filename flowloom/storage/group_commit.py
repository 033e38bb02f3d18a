"""Group commit: the short writes of many callers in one SQLite transaction.

A commit is most of what a short write costs on SQLite: every page the transaction changed is
appended to the WAL, each with its checksum, whatever else the transaction did. Writes of
different runs change the same few pages (the tail of each table and index), so ten runs' ticks
committed at once append not much more than one of them does.

``run_write(fn, inline=True)`` therefore joins the group of writes waiting for the next commit
instead of committing at once. The group closes once the event loop has run what was ready
when its first write joined: one pass of the loop, with nobody waiting on a timer. A write alone
then commits at once, a loop pass later than it would have; a group of several commits in a
task of its own, one pass later still. That second pass is what makes groups worth it under
load: the loop answers what the last group's commit freed before the next group closes, so
groups hold about five writes where they held three, and a webhook run at ten clients costs a
fifth less CPU (``benchmarks.api``, S3 on SQLite, quiet machine: 1.47-1.53 against 1.82-1.89 ms
of server CPU a run, 658-686 against 534-555 runs/s; see the README).

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
from typing import Any, Final, TypeVar, cast

from sqlalchemy.engine import Connection

from flowloom.storage.sqlite_lanes import Group, SqliteLanes

__all__ = ["GroupCommit"]

T = TypeVar("T")

_ALONE: Final = 8
"""Groups in a row without a follower after which a write commits at once (see ``write``)."""
_PROBE: Final = 8
"""Meanwhile, every so many writes still wait a pass of the loop for followers."""

_Waiting = tuple[Callable[[Connection], Any], "asyncio.Future[Any]"]
"""A write waiting for its group's commit, and the future its caller awaits."""
_Forming = tuple[Callable[[Connection], Any], "asyncio.Future[Any] | None"]
"""A write of the group forming: the leader's first (no future: it commits the group), then
its followers'."""


class GroupCommit:
    """The group of writes forming for the next commit of one ``Database``, and the groups
    that wait for the write lock."""

    __slots__ = ("_alone", "_committing", "_forming", "_lanes", "_lanes_now", "_lock")

    def __init__(
        self,
        lanes_now: Callable[[], SqliteLanes | None],
        lanes: Callable[[], Awaitable[SqliteLanes]],
        lock: asyncio.Lock,
    ) -> None:
        self._lanes_now = lanes_now
        self._lanes = lanes
        self._lock = lock
        self._forming: list[_Forming] | None = None
        self._committing: set[asyncio.Task[None]] = set()
        self._alone = 0
        """Groups in a row that had no follower."""

    async def write(self, fn: Callable[[Connection], T]) -> T:
        """``fn`` committed in the next group: what it returned, or what it raised.

        The first write of a group leads it: it lets the event loop run what is ready (the
        writes that arrive meanwhile join as followers). Alone, it then commits right there
        when the write lock is free. Otherwise (followers, the lock taken, the writer
        connection not held yet) a task commits the group as it can, and tells them all.

        That pass of the loop costs a write that comes alone some 20-30 us. So once ``_ALONE``
        groups in a row had nobody else, a leader commits at once, without the pass, but for
        every ``_PROBE``-th, which still waits for followers: as soon as one comes, groups
        are formed again."""
        forming = self._forming
        if forming is not None:
            future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
            forming.append((fn, future))
            return await future
        self._forming = forming = [(fn, None)]
        self._alone += 1
        if self._alone < _ALONE or self._alone % _PROBE == 0:
            try:
                await asyncio.sleep(0)
            except BaseException:  # cancelled before its group began: it writes nothing
                self._forming = None
                if len(forming) > 1:
                    self._in_a_task(_followers(forming))
                raise
        self._forming = None
        if len(forming) > 1:
            self._alone = 0
        # A follower cancelled before its group began writes nothing.
        followers = [(f, future) for f, future in _followers(forming) if not future.done()]
        outcome = None if followers else self._commit_now(fn)
        if outcome is None:
            own: asyncio.Future[T] = asyncio.get_running_loop().create_future()
            self._in_a_task([(fn, own), *followers])
            return await own
        ok, value = outcome
        if ok:
            return cast(T, value)
        raise value

    async def settled(self) -> None:
        """Once every group that has begun is committed or failed (before the lanes close)."""
        while self._forming is not None or self._committing:
            if self._committing:
                await asyncio.wait(set(self._committing))
            else:
                await asyncio.sleep(0)

    def _commit_now(self, fn: Callable[[Connection], Any]) -> tuple[bool, Any] | None:
        """A write alone committed here and now, if the write lock is free, the writer held and
        SQLite's lock free this instant: its outcome (``Group``'s). Else None, nothing done. No
        await comes between the check that the lock is free and the end of the transaction, so
        nobody can take the lock meanwhile."""
        lanes = self._lanes_now()
        if self._lock.locked() or lanes is None:
            return None
        writer = lanes.writer_now()
        if writer is None or not lanes.begin_now(writer):
            return None
        try:
            return (True, lanes.finish(writer, fn))
        except Exception as exc:
            return (False, exc)

    def _in_a_task(self, group: list[_Waiting], *, apart: bool = False) -> None:
        task = asyncio.get_running_loop().create_task(self._commit(group, apart=apart))
        self._committing.add(task)
        task.add_done_callback(self._committing.discard)

    async def _commit(self, waiting: list[_Waiting], *, apart: bool) -> None:
        """Commit ``waiting`` once the write lock is free: on the event loop's thread when
        SQLite's lock is free at once, else in the writer thread."""
        lock = self._lock
        try:
            await lock.acquire()
        except BaseException:  # cancelled (the loop is closing): nothing was written
            _fail(waiting, asyncio.CancelledError())
            raise
        # A caller cancelled before its group began writes nothing.
        group = [(fn, future) for fn, future in waiting if not future.done()]
        if not group:
            lock.release()
            return
        fns = [fn for fn, _ in group]
        try:
            lanes = await self._lanes()
            writer = await lanes.writer()
            here = apart or lanes.group_here(writer, fns)
            if isinstance(here, list):
                lock.release()
                _deliver(group, here)
                return
            write = lanes.write_group_apart if here else lanes.write_group
        except BaseException as exc:
            lock.release()
            _fail(group, exc)
            if not isinstance(exc, Exception):
                raise
            return
        try:
            # The writer thread frees the lock once it is done (also if this fails).
            outcomes = await lanes.on_writer_thread(lock, write, writer, fns)
        except BaseException as exc:
            _fail(group, exc)
            if not isinstance(exc, Exception):
                raise
            return
        _deliver(group, outcomes)


def _followers(forming: list[_Forming]) -> list[_Waiting]:
    return cast(list[_Waiting], forming[1:])


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
