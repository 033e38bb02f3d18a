"""Waiting out a database outage: capped exponential backoff with jitter.

The engine's background work (drivers, lease renewal, the schedule loop) must not die when the
database goes away for a moment, nor hammer it in lockstep when it returns. ``Backoff`` hands
out the delays: doubling from ``base_s`` up to ``cap_s``, each drawn at random between half
and all of its step ("equal jitter"), so a process recovers within about ``cap_s`` of the
database's return while many waiters spread their retries. ``patiently`` calls an operation
until it gets past ``DatabaseUnavailable``; any other error is the caller's to handle.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final, TypeVar

from flowloom.storage.errors import is_unavailable

__all__ = ["DEFAULT_CAP_S", "Backoff", "patiently"]

T = TypeVar("T")

_log = logging.getLogger("flowloom.engine")

DEFAULT_BASE_S: Final = 0.05
DEFAULT_CAP_S: Final = 2.0
"""The longest wait between tries: a run resumes within about this of the database's return."""


@dataclass(slots=True)
class Backoff:
    """Delays for successive tries: ``base_s * 2**n`` capped at ``cap_s``, jittered to
    [half, all] of that. ``reset()`` after a success starts over."""

    base_s: float = DEFAULT_BASE_S
    cap_s: float = DEFAULT_CAP_S
    failures: int = 0

    def next_delay(self) -> float:
        """The wait before the next try (and count this failure)."""
        # min() before the power would overflow: 2**1100 is no float.
        step: float = min(self.cap_s, self.base_s * 2.0 ** min(self.failures, 30))
        self.failures += 1
        # The module's shared generator: a Random of its own would seed from os.urandom at
        # every Backoff made (tens of microseconds, on the hot path of every node).
        return step / 2 + random.random() * step / 2

    async def wait(self) -> None:
        await asyncio.sleep(self.next_delay())

    def reset(self) -> None:
        self.failures = 0


async def patiently(
    operation: Callable[[], Awaitable[T]],
    *,
    what: str,
    backoff: Backoff | None = None,
    on_unavailable: Callable[[BaseException], None] | None = None,
    reset: bool = True,
) -> T:
    """``await operation()`` until it does not fail with the database unavailable; its result.

    Between tries it waits ``backoff``'s next delay. The first failure is logged as a warning
    naming ``what`` was being done, the recovery once at info level; ``on_unavailable`` is
    called with each such failure (to answer waiters at once rather than keep them). Other
    errors, and cancellation, propagate at once. ``reset=False`` leaves a shared ``backoff``
    counting after a success, for a caller whose next step may still fail (it resets it).
    """
    backoff = backoff or Backoff()
    while True:
        try:
            result = await operation()
        except Exception as exc:
            if not is_unavailable(exc):
                raise
            if on_unavailable is not None:
                on_unavailable(exc)
            if backoff.failures == 0:
                _log.warning("%s: the database is unavailable (%s); retrying", what, exc)
            await backoff.wait()
            continue
        if backoff.failures and reset:
            _log.info("%s: the database is back after %d failed tries", what, backoff.failures)
            backoff.reset()
        return result
