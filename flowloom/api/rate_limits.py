"""Rate limits per API key, counted where every server process sees the same count.

Each key's requests are metered with GCRA (the generic cell rate algorithm): one number per
key, its *theoretical arrival time* (TAT); from then on the key may make its whole burst
again. A request at ``now`` is let through while
``max(TAT, now) - now <= interval * (count - 1)`` (so a burst of ``count`` requests passes at
once, then one per ``interval``), and moves the TAT on by one interval. The check and the move
are one atomic step: one conditional UPDATE in the database (row-locked on PostgreSQL, the
single writer on SQLite), or one Lua script in Redis. So two processes sharing the database
(or the Redis) never let more through than the rate allows.

Over the limit is ``LimitExceeded`` (429) with the seconds until the next request may pass.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from typing import Any, Final, Protocol

from sqlalchemy import Connection, case, select, update

from flowloom.exceptions import LimitExceeded
from flowloom.rates import Rate, parse_rate
from flowloom.settings import Settings
from flowloom.storage.database import Database
from flowloom.storage.tables.accounts import ApiKeyRateCounter
from flowloom.storage.upsert import insert_for

__all__ = ["DatabaseMeter", "Meter", "RedisMeter", "check_api_key_rate", "meter_for"]

_REDIS_PREFIX: Final = "flowloom:rate:api_key:"

# KEYS[1]: the counter; ARGV: interval_s, tolerance_s. Answers "0" (let through) or the
# seconds to wait. Redis's own clock, so servers whose clocks differ still agree.
_GCRA_LUA: Final = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
if tat - now > tolerance then return tostring(tat - now - tolerance) end
local ttl_ms = math.ceil((tat + interval - now) * 1000) + 1000
redis.call('SET', KEYS[1], tostring(tat + interval), 'PX', ttl_ms)
return '0'
"""


class Meter(Protocol):
    async def take(self, *, key_id: str, rate: Rate) -> float:
        """Count one request of the key: 0 if it may pass, else the seconds to wait."""
        ...


class DatabaseMeter:
    """Counts in the ``api_key_rate_counters`` table of the database all servers share."""

    def __init__(self, db: Database, *, clock: Callable[[], float] = time.time) -> None:
        self._db = db
        self._clock = clock

    async def take(self, *, key_id: str, rate: Rate) -> float:
        now = self._clock()
        return await self._db.run_write(
            lambda conn: _take_in_database(conn, key_id, rate, now), inline=True
        )


def _take_in_database(conn: Connection, key_id: str, rate: Rate, now: float) -> float:
    interval = rate.interval_s
    tolerance = interval * (rate.count - 1)
    table = ApiKeyRateCounter
    start = case((table.tat_s > now, table.tat_s), else_=now)
    # Each pass either decides or lost a race to another process's first request of this key
    # (its counter appeared between two of our statements); the next pass sees it.
    for _ in range(3):
        passed = conn.execute(
            update(table)
            .where(table.api_key_id == key_id, start - now <= tolerance)
            .values(tat_s=start + interval)
        )
        if passed.rowcount:
            return 0.0
        tat = conn.execute(select(table.tat_s).where(table.api_key_id == key_id)).scalar()
        if tat is not None:
            wait = max(tat, now) - now - tolerance
            if wait > 0:
                return wait
            continue
        # The key's first counted request: insert its counter, unless another process just did.
        inserted = conn.execute(
            insert_for(conn.dialect.name)(table)
            .values(api_key_id=key_id, tat_s=now + interval)
            .on_conflict_do_nothing()
        )
        if inserted.rowcount:
            return 0.0
    return interval


class RedisMeter:
    """Counts in Redis (``FLOWLOOM_API_KEY_RATE_LIMIT_REDIS_URL``), one key per API key."""

    def __init__(self, url: str) -> None:
        from redis.asyncio import Redis

        self._redis: Any = Redis.from_url(url)
        self._script: Any = self._redis.register_script(_GCRA_LUA)

    async def take(self, *, key_id: str, rate: Rate) -> float:
        interval = rate.interval_s
        answer = await self._script(
            keys=[_REDIS_PREFIX + key_id], args=[repr(interval), repr(interval * (rate.count - 1))]
        )
        return float(answer)

    async def aclose(self) -> None:
        await self._redis.aclose()


_meters: dict[tuple[int, int, str | None], Meter] = {}


def meter_for(db: Database, settings: Settings) -> Meter:
    """The meter this app counts with (made once per database, Redis URL and event loop)."""
    url = settings.api_key_rate_limit_redis_url
    key = (id(db), id(asyncio.get_running_loop()), url)
    meter = _meters.get(key)
    if meter is None:
        if len(_meters) > 64:  # apps and loops that came and went (tests); never many
            _meters.clear()
        meter = _meters[key] = RedisMeter(url) if url else DatabaseMeter(db)
    return meter


async def check_api_key_rate(
    meter: Meter, *, key_id: str, key_rate: str | None, default_rate: str | None
) -> None:
    """LimitExceeded (429, with the wait) if the key is over its rate; nothing without one."""
    text = key_rate or default_rate
    if text is None:
        return
    rate = parse_rate(text)
    wait_s = await meter.take(key_id=key_id, rate=rate)
    if wait_s > 0:
        raise LimitExceeded(
            f"this API key may make {rate} requests; try again in {math.ceil(wait_s)} s",
            limit="api_key_rate",
            retry_after_s=wait_s,
        )
