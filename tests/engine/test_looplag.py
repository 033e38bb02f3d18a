"""The loop-lag watchdog: a blocked event loop is logged on ``flowloom.looplag`` with the lag,
and the API's metrics count it in ``flowloom_event_loop_lag_seconds``."""

from __future__ import annotations

import asyncio
import contextlib
import linecache
import logging
import time

import pytest
from prometheus_client import generate_latest

from flowloom.api.metrics import Metrics
from flowloom.engine import EventBus
from flowloom.engine.looplag import watch_loop_lag


async def block_the_loop(seconds: float) -> None:
    await asyncio.sleep(0.12)  # let the watchdog take a few quiet measurements first
    time.sleep(seconds)  # noqa: ASYNC251 - on purpose: what CPU work on the loop would do
    await asyncio.sleep(0.12)


async def test_a_blocked_loop_is_logged_with_its_lag(caplog: pytest.LogCaptureFixture) -> None:
    lags: list[float] = []
    watchdog = asyncio.create_task(watch_loop_lag(on_lag=lags.append))
    with caplog.at_level(logging.WARNING, logger="flowloom.looplag"):
        await block_the_loop(0.3)
    watchdog.cancel()

    assert max(lags) >= 0.25
    assert sorted(lags)[len(lags) // 2] < 0.05  # quiet wakes are on time
    [warning] = [r for r in caplog.records if r.name == "flowloom.looplag"]
    assert warning.levelno == logging.WARNING
    lag_s = getattr(warning, "lag_s", 0)
    assert lag_s >= 0.25
    assert f"the event loop was blocked for {lag_s:.3f} s" in warning.getMessage()
    # ... and says where: the sampler thread caught the loop inside time.sleep, in this file.
    blocked_in = getattr(warning, "blocked_in", "")
    assert "block_the_loop (" in blocked_in
    assert "test_looplag.py" in blocked_in
    assert blocked_in in warning.getMessage()


async def test_the_sample_of_a_blocked_loop_loads_no_source_file() -> None:
    """The warning names the frames by file and line; the lines' text (which ``traceback``
    would load into ``linecache``, whole files kept for the life of the process) is not read."""
    linecache.cache.pop(__file__, None)
    watchdog = asyncio.create_task(watch_loop_lag())
    await block_the_loop(0.3)
    watchdog.cancel()

    assert __file__ not in linecache.cache


async def test_the_metrics_count_loop_lag() -> None:
    metrics = Metrics()
    metrics.start(EventBus())
    try:
        await block_the_loop(0.3)
    finally:
        await metrics.stop()

    scraped = generate_latest(metrics.registry).decode()
    bucket = 'flowloom_event_loop_lag_seconds_bucket{le="0.25"}'
    count = "flowloom_event_loop_lag_seconds_count"
    below = float(next(line for line in scraped.splitlines() if line.startswith(bucket)).split()[1])
    total = float(next(line for line in scraped.splitlines() if line.startswith(count)).split()[1])
    assert total >= 3
    assert below == total - 1  # the one blocked wake is past 0.25 s


async def test_an_idle_watchdog_does_not_wake_until_there_is_work() -> None:
    lags: list[float] = []
    busy, measured = asyncio.Event(), asyncio.Event()

    def idle() -> object:
        return None if busy.is_set() else busy.wait()

    def on_lag(lag_s: float) -> None:
        lags.append(lag_s)
        if len(lags) == 3:
            measured.set()

    watchdog = asyncio.create_task(watch_loop_lag(on_lag=on_lag, idle=idle))
    await asyncio.sleep(0.3)  # many wake intervals
    assert lags == []  # idle: it never woke
    busy.set()
    await asyncio.wait_for(measured.wait(), 30)
    watchdog.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await watchdog
