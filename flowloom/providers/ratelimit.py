"""A token bucket that spaces out calls to one provider, across every task of the process."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

__all__ = ["RateLimiter"]


class RateLimiter:
    """At most ``requests_per_s`` calls per second on average, at most ``burst`` at once.

    Each ``acquire`` reserves the next free slot at once and then sleeps until it comes, so
    waiters are served in arrival order and no lock is held while sleeping. A waiter that is
    cancelled gives its slot back.
    """

    def __init__(
        self,
        requests_per_s: float,
        *,
        burst: int = 1,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if requests_per_s <= 0:
            raise ValueError("requests_per_s must be > 0")
        if burst < 1:
            raise ValueError("burst must be >= 1")
        self.requests_per_s = requests_per_s
        self.burst = burst
        self._clock = clock
        self._sleep = sleep
        self._tokens = float(burst)
        self._updated = clock()

    async def acquire(self) -> float:
        """Wait for a slot; returns how long it waited, in seconds."""
        now = self._clock()
        self._tokens = min(
            float(self.burst), self._tokens + (now - self._updated) * self.requests_per_s
        )
        self._updated = now
        self._tokens -= 1
        if self._tokens >= 0:
            return 0.0
        wait_s = -self._tokens / self.requests_per_s
        try:
            await self._sleep(wait_s)
        except asyncio.CancelledError:
            self._tokens += 1
            raise
        return wait_s
