"""A worker's event bus and an API's feed over one Redis namespace, for the relay tests."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from workerkit import REDIS_URL, require_redis

from flowloom.engine.events import EventBus
from flowloom.worker.relay import EventFeed, RedisEventBus

B = TypeVar("B", bound=EventBus)


@dataclass
class Relay(Generic[B]):
    """A worker's event bus and an API's feed over one Redis namespace, started."""

    redis: Any
    namespace: str
    api_bus: B
    feed: EventFeed
    worker_bus: RedisEventBus


@asynccontextmanager
async def relay_on_redis(api_bus: B) -> AsyncIterator[Relay[B]]:
    """A relay whose feed hands what comes from Redis to ``api_bus``, in a namespace of its own."""
    require_redis()
    from redis.asyncio import Redis

    redis = Redis.from_url(f"{REDIS_URL}/15")
    namespace = f"t_{secrets.token_hex(4)}"
    feed = EventFeed(redis, namespace, api_bus)
    worker_bus = RedisEventBus(redis, namespace)
    await feed.start()
    worker_bus.start()
    try:
        yield Relay(redis, namespace, api_bus, feed, worker_bus)
    finally:
        await worker_bus.stop()
        await feed.stop()
        await redis.aclose()
