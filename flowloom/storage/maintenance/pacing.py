"""How big a maintenance batch may be, and how long to step aside after it.

On SQLite there is one writer at a time: while a pruning transaction holds the write lock, a run
start or a node commit waits behind it. A BatchPacer keeps every write transaction of a
maintenance job near ``target_s`` (halving the batch when one took longer, growing it when
it was quick) and, after each, pauses as long as it took, so writers of this process (queued
first on its write lock) and of other processes (polling SQLite's busy handler) get their turn.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Final

__all__ = ["BatchPacer"]

DEFAULT_TARGET_S: Final = 0.02
"""A maintenance write transaction aims at 20 ms: a writer never queues long behind one."""
_SHORTEST_PAUSE_S: Final = 0.002


class BatchPacer:
    """The size of the next batch (from 1 to ``largest``) and the pause after it."""

    def __init__(self, *, largest: int, first: int = 100, target_s: float = DEFAULT_TARGET_S):
        self.largest = largest
        self.size = max(1, min(first, largest))
        self.target_s = target_s
        self.last_s = 0.0

    @contextlib.asynccontextmanager
    async def timed(self) -> AsyncIterator[None]:
        """Time the write transaction inside and size the next batch from it."""
        started = time.perf_counter()
        try:
            yield
        finally:
            self.last_s = time.perf_counter() - started
            if self.last_s > self.target_s:
                self.size = max(1, self.size // 2)
            elif self.last_s < self.target_s / 3:
                self.size = min(self.largest, self.size * 2)

    async def pause(self) -> None:
        """Step aside as long as the last transaction held the lock (at least 2 ms)."""
        await asyncio.sleep(max(self.last_s, _SHORTEST_PAUSE_S))
