"""CPU work on user data, off the event loop and under a hard deadline.

A node that computes over user data whose cost the user controls (a template that loops, a
JMESPath expression, sorting a big list, a regular expression over a big text) hands the work
to ``run_bounded``: it runs in a small thread pool of its own, so the event loop keeps
serving, and the work aborts itself once it runs past its deadline. A thread cannot be killed
from outside, so the deadline is enforced inside the thread: a trace function (installed for
that thread only, for the length of the call) raises ``ComputeTimedOut`` at the next traced
Python line past the deadline. Code that runs in C without returning to Python between lines
is not interrupted; the callers keep such steps linear in the size of their input.

Python work in a thread still holds the GIL, and the event loop waits for it at every switch
(5 ms each by default): four busy threads made the loop up to 120 ms late. The same trace
function therefore hands the GIL over every ``_YIELD_EVERY_S``, which keeps the loop within a
few milliseconds of time while the pool is busy.

The pool is separate from asyncio's default executor, so a user who queues slow work waits
behind their own work, not in front of file or database threads.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from types import CodeType, FrameType
from typing import Any, Final, TypeVar

__all__ = ["ComputeTimedOut", "call_with_deadline", "run_bounded", "run_off_loop"]

T = TypeVar("T")

_WORKERS: Final = 4
"""Threads for bounded work; more would only compete for the GIL with the event loop."""
_YIELD_EVERY_S: Final = 0.001
"""How often traced work lets the event loop (or another thread) take the GIL."""

_pool: ThreadPoolExecutor | None = None


class ComputeTimedOut(Exception):
    """The work ran past its deadline of ``limit_s`` seconds and stopped itself."""

    def __init__(self, limit_s: float) -> None:
        self.limit_s = limit_s
        super().__init__(f"stopped after its time limit of {limit_s:g} s")


def call_with_deadline(
    fn: Callable[..., T],
    /,
    *args: Any,
    limit_s: float,
    traced: Callable[[CodeType], bool] | None = None,
) -> T:
    """``fn(*args)`` in this thread, raising ComputeTimedOut once it runs past ``limit_s``.

    ``traced`` picks the code objects whose lines are checked (all by default); leaving out
    library code that is linear in its input keeps the cost of tracing low. Traced lines also
    hand the GIL over now and then. Any trace function already installed in this thread (a
    coverage tool) is restored afterwards.
    """
    deadline = time.monotonic() + limit_s
    next_yield = [0.0]

    def on_line(frame: FrameType, event: str, arg: Any) -> Any:
        now = time.monotonic()
        if now > deadline:
            raise ComputeTimedOut(limit_s)
        if now > next_yield[0]:
            # Hand the GIL over now and then: the event loop thread is waiting for it.
            time.sleep(0)
            next_yield[0] = time.monotonic() + _YIELD_EVERY_S
        return on_line

    def on_call(frame: FrameType, event: str, arg: Any) -> Any:
        if traced is not None and not traced(frame.f_code):
            return None
        if time.monotonic() > deadline:
            raise ComputeTimedOut(limit_s)
        return on_line

    previous = sys.gettrace()
    sys.settrace(on_call)
    try:
        return fn(*args)
    finally:
        sys.settrace(previous)


async def run_bounded(
    fn: Callable[..., T],
    /,
    *args: Any,
    limit_s: float,
    traced: Callable[[CodeType], bool] | None = None,
) -> T:
    """``fn(*args)`` in the compute pool under ``call_with_deadline``; the loop stays free."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(
        _executor(), lambda: call_with_deadline(fn, *args, limit_s=limit_s, traced=traced)
    )


async def run_off_loop(fn: Callable[..., T], /, *args: Any) -> T:
    """``fn(*args)`` in the compute pool, without a deadline: for C code that is linear in its
    input and releases or soon returns the GIL (RE2 matching, sorting keys already built)."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_executor(), lambda: fn(*args))


def _executor() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=_WORKERS, thread_name_prefix="flowloom-compute")
    return _pool
