"""The loop-lag watchdog: how late the event loop answers, logged when it was blocked.

Everything a server process does shares one event loop; code that holds it (CPU work on the
loop, a blocking call) stalls every request and every run at once. ``watch_loop_lag`` wakes
every ``interval_s`` and measures how much later than asked it woke up: that lateness is the
time the loop could not serve. Past ``threshold_s`` it logs a warning on the
``flowloom.looplag`` logger, and it hands every measurement to ``on_lag`` (the API feeds the
``flowloom_event_loop_lag_seconds`` histogram), so a regression shows in the logs and in the
metrics rather than as a mysteriously slow server.

The warning also says *what* held the loop: a sampler thread (which the blocked loop cannot
stop) checks the watchdog's heartbeat and, once it is ``threshold_s`` late, takes the loop
thread's stack with ``sys._current_frames``. The innermost frames of that sample go into the
warning (``blocked_in``), so an import, a regex or a synchronous call is named in the log.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from types import FrameType
from typing import Final

__all__ = ["LAG_WARNING_S", "WAKE_INTERVAL_S", "watch_loop_lag"]

WAKE_INTERVAL_S: Final = 0.05
"""How often the watchdog wakes (each wake costs microseconds)."""
LAG_WARNING_S: Final = 0.1
"""Lateness past which the loop counts as blocked and a warning is logged."""

STACK_FRAMES: Final = 6
"""How many of the blocked loop's innermost frames the warning shows."""

logger = logging.getLogger("flowloom.looplag")


class _Sampler:
    """A daemon thread that takes the loop thread's stack when the loop's heartbeat is late.

    ``beat()`` is called by the watchdog on the loop; ``take()`` hands over (and clears) the
    sample of the episode that just ended, if one was taken."""

    def __init__(self, loop_thread: int, late_s: float) -> None:
        self._loop_thread = loop_thread
        self._late_s = late_s
        self._last = time.monotonic()
        self._sample: str | None = None
        self._stop = threading.Event()
        self._resting = False
        self._awake = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="flowloom loop sampler")
        self._thread.daemon = True
        self._thread.start()

    def beat(self) -> None:
        self._last = time.monotonic()
        if self._resting:
            self._resting = False
            self._awake.set()

    def rest(self) -> None:
        """No beats will come for a while (the watchdog is idle): wait for the next instead of
        sampling a loop that is not late but unwatched."""
        self._resting = True

    def take(self) -> str | None:
        sample, self._sample = self._sample, None
        return sample

    def stop(self) -> None:
        self._stop.set()
        self._awake.set()

    def _watch(self) -> None:
        # It sleeps until the moment the heartbeat would be late, not at a fixed period: while
        # the loop beats on time that is one wake per beat, and a block is sampled as soon as
        # it is late (a fixed half-period wake cost more wakes and sampled up to half late).
        pause_s = self._late_s
        while not self._stop.wait(pause_s):
            if self._resting:
                self._awake.wait()
                self._awake.clear()
                pause_s = self._late_s
                continue
            late_by_s = time.monotonic() - self._last - self._late_s
            pause_s = max(-late_by_s, self._late_s / 4) if late_by_s < 0 else self._late_s / 2
            if self._sample is None and late_by_s > 0:
                frame = sys._current_frames().get(self._loop_thread)
                if frame is not None:
                    self._sample = _innermost(frame)


def _innermost(frame: FrameType | None) -> str:
    """``name (file:line)`` of the innermost ``STACK_FRAMES`` frames from ``frame`` outwards.

    Read from the frames themselves, not through ``traceback``: its summaries look each line's
    text up, which loads the whole source file into ``linecache``, kept for the life of the
    process (some 300 KiB for the files of one sample taken during a start-up), for text the
    warning never shows. The import machinery's own frames say nothing: they are skipped, so
    an import on the loop shows the line that imported."""
    entries: list[str] = []
    while frame is not None and len(entries) < STACK_FRAMES:
        code = frame.f_code
        if not code.co_filename.startswith("<frozen "):
            entries.append(f"{code.co_name} ({code.co_filename}:{frame.f_lineno})")
        frame = frame.f_back
    return " <- ".join(entries)


async def watch_loop_lag(
    *,
    on_lag: Callable[[float], None] | None = None,
    interval_s: float = WAKE_INTERVAL_S,
    threshold_s: float = LAG_WARNING_S,
    idle: Callable[[], Awaitable[object] | None] | None = None,
) -> None:
    """Measure the loop's lateness forever (until cancelled); see the module docstring.

    ``idle``, asked before each wake: None while the process has work, else something to
    await until it has some again. Meanwhile neither the watchdog nor its sampler wakes: a
    loop with nothing to do holds nobody up (a worker's loop between runs)."""
    loop = asyncio.get_running_loop()
    sampler = _Sampler(threading.get_ident(), interval_s + threshold_s)
    try:
        while True:
            waiting = idle() if idle is not None else None
            if waiting is not None:
                sampler.rest()
                await waiting
                sampler.beat()
            asked = loop.time() + interval_s
            await asyncio.sleep(interval_s)
            sampler.beat()
            lag_s = max(0.0, loop.time() - asked)
            blocked_in = sampler.take()
            if on_lag is not None:
                on_lag(lag_s)
            if lag_s > threshold_s:
                logger.warning(
                    "the event loop was blocked for %.3f s (threshold %.3f s)%s",
                    lag_s,
                    threshold_s,
                    f", in {blocked_in}" if blocked_in else "",
                    extra={"lag_s": lag_s, "blocked_in": blocked_in},
                )
    finally:
        sampler.stop()
