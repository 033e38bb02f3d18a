"""Cache look-ups of the drivers of one worker process, asked together.

A worker drives the runs of a task at once, and their drivers ask the run store's cache at
about the same moments: when they start, and when their first commits come back (the look-up
that fetches what the rest of a run that hit holds). ``BatchedLookups`` wraps the run store so
that the look-ups its drivers ask close together go to the database as ONE statement for all
their signatures, and each asker gets the answer. A batch is sent as soon as every driver of
the process asked (or at once while only one drives), else ``window_s`` after its first asker:
a driver whose nodes still run delays the others' answer by that much at most.

Every answer stays right for every asker: the cache answers a signature with a success of that
signature, and a signature is a hash of its owner, node type, configuration and inputs
(``signature.py``), so an asker only ever finds, among the answers, results of its own owner
for its own signatures; the other askers' answers are entries it never looks up. That is
already so of one look-up (``find_cached(near=True)`` brings the results of the rest of each
run it hit).

Everything but ``find_cached`` is the wrapped store's own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["BatchedLookups"]

_Found = dict[str, tuple[str, dict[str, Any]]]


class _Batch:
    """The look-ups asked close together (of one kind: ``near`` or not)."""

    __slots__ = ("askers", "ready", "signatures", "task", "timer")

    def __init__(self, ready: asyncio.Future[None], timer: asyncio.TimerHandle) -> None:
        self.signatures: dict[str, None] = {}
        self.askers = 0
        self.ready = ready
        """Done when the batch is to be sent (every driver asked, or the window passed)."""
        self.timer = timer
        self.task: asyncio.Task[_Found] | None = None


class BatchedLookups:
    """``store``, with the cache look-ups its drivers ask close together made as one.

    ``drivers()``: how many drivers this process has now (each may ask); ``window_s``: how
    long a look-up waits for the others at most."""

    def __init__(self, store: Any, drivers: Callable[[], int], *, window_s: float = 0.002) -> None:
        self._store = store
        self._drivers = drivers
        self.window_s = window_s
        self._open: dict[bool, _Batch] = {}
        self.asked = 0
        """Look-ups the drivers asked (tests and benchmarks read it)."""
        self.made = 0
        """Look-ups made in the store (fewer than ``asked`` when batches joined)."""

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def find_cached(self, signatures: Iterable[str], *, near: bool = False) -> _Found:
        self.asked += 1
        drivers = self._drivers()
        batch = self._open.get(near)
        if batch is None:
            if drivers < 2:
                self.made += 1
                found: _Found = await self._store.find_cached(signatures, near=near)
                return found
            loop = asyncio.get_running_loop()
            ready: asyncio.Future[None] = loop.create_future()
            batch = self._open[near] = _Batch(ready, loop.call_later(self.window_s, _wake, ready))
            batch.task = loop.create_task(self._ask(batch, near))
            batch.task.add_done_callback(_retrieved)
        batch.signatures.update(dict.fromkeys(signatures))
        batch.askers += 1
        if batch.askers >= drivers:
            _wake(batch.ready)
        assert batch.task is not None
        # Shielded: an asker cancelled (its run stopped) does not cancel the others' answer.
        return await asyncio.shield(batch.task)

    async def _ask(self, batch: _Batch, near: bool) -> _Found:
        try:
            await batch.ready
        finally:
            batch.timer.cancel()
            if self._open.get(near) is batch:
                del self._open[near]
        self.made += 1
        found: _Found = await self._store.find_cached(list(batch.signatures), near=near)
        return found


def _wake(ready: asyncio.Future[None]) -> None:
    if not ready.done():
        ready.set_result(None)


def _retrieved(task: asyncio.Task[_Found]) -> None:
    # Every asker sees a failure (through its shield); with none left waiting it is not lost
    # in a warning at exit.
    if not task.cancelled():
        task.exception()
