"""The loop-lag watchdog: how late the event loop answers, logged when it was blocked.

Everything a server process does shares one event loop; code that holds it (CPU work on the
loop, a blocking call) stalls every request and every run at once. ``watch_loop_lag`` wakes
every ``interval_s`` and measures how much later than asked it woke up: that lateness is the
time the loop could not serve. Past ``threshold_s`` it logs a warning on the
``flowloom.looplag`` logger, and it hands every measurement to ``on_lag`` (the API feeds the
``flowloom_event_loop_lag_seconds`` histogram), so a regression shows in the logs and in the
metrics rather than as a mysteriously slow server.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Final

__all__ = ["LAG_WARNING_S", "WAKE_INTERVAL_S", "watch_loop_lag"]

WAKE_INTERVAL_S: Final = 0.05
"""How often the watchdog wakes (each wake costs microseconds)."""
LAG_WARNING_S: Final = 0.1
"""Lateness past which the loop counts as blocked and a warning is logged."""

logger = logging.getLogger("flowloom.looplag")


async def watch_loop_lag(
    *,
    on_lag: Callable[[float], None] | None = None,
    interval_s: float = WAKE_INTERVAL_S,
    threshold_s: float = LAG_WARNING_S,
) -> None:
    """Measure the loop's lateness forever (until cancelled); see the module docstring."""
    loop = asyncio.get_running_loop()
    while True:
        asked = loop.time() + interval_s
        await asyncio.sleep(interval_s)
        lag_s = max(0.0, loop.time() - asked)
        if on_lag is not None:
            on_lag(lag_s)
        if lag_s > threshold_s:
            logger.warning(
                "the event loop was blocked for %.3f s (threshold %.3f s)",
                lag_s,
                threshold_s,
                extra={"lag_s": lag_s},
            )
