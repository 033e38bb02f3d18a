"""Run events across processes: workers publish them to Redis, the API republishes them.

One pub/sub channel per flowloom instance, ``flowloom:{namespace}:events``, carries every
event as JSON: each message is a list of events, those of every ``publish`` call (a driver's
tick publishes all it changed at once) made while the previous message was on its way, so a
busy worker's ticks cost Redis one PUBLISH and each reader (every API process) one message to
parse, not one per tick or per event (a lone object is read too: what earlier versions sent).
A worker's ``RedisEventBus`` delivers to its own subscribers first (sub-runs wait on them) and
queues the events for one publisher task, so publishing never blocks a driver; a run is
driven by one worker at a time, so its events arrive in order. The API's ``EventFeed`` reads
the channel and hands the events to the API's ordinary ``EventBus``, so SSE, metrics and
``Engine.wait`` work unchanged. Pub/sub is at-most-once: after the feed lost its subscription
(Redis restarted, the connection broke), it publishes ``events.dropped`` to every run followed
here, and each follower reads its run back from the database, as it does
for events dropped in this process.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any

from flowloom.engine.events import DROPPED, RUN_FINISHED_EVENTS, Event, EventBus

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["EventFeed", "RedisEventBus", "channel", "decode", "encode", "merge"]

_log = logging.getLogger("flowloom.worker")
_MAX_UNSENT = 100_000
_SETTLING = frozenset({*RUN_FINISHED_EVENTS, "run.waiting"})
"""The events after which a waiter reads its run again (``remote.py``)."""
_REMEMBERED = 10_000
"""How many runs' settling events the feed remembers (the newest)."""
_RETRY_S = 1.0
_MERGED_MAX = 500
"""The most ``publish`` calls one message carries."""


def channel(namespace: str) -> str:
    return f"flowloom:{namespace}:events"


def encode(events: list[Event]) -> str:
    """One message for ``events`` (a JSON list)."""
    return json.dumps([event.to_json() for event in events], separators=(",", ":"), default=str)


def merge(messages: list[str]) -> str:
    """One message holding the events of ``messages`` (``encode``'s lists), in order."""
    if len(messages) == 1:
        return messages[0]
    return "[" + ",".join(inner for message in messages if (inner := message[1:-1])) + "]"


def decode(raw: bytes | str) -> list[Event]:
    """The events of one message: a list, or one object (earlier versions); ValueError,
    KeyError or TypeError when it is not events."""
    found: Any = json.loads(raw)
    return [_event(item) for item in (found if isinstance(found, list) else [found])]


def _event(data: dict[str, Any]) -> Event:
    return Event(
        type=data["type"],
        run_id=data["run_id"],
        node_id=data.get("node_id"),
        at=datetime.fromisoformat(data["at"]),
        data=data.get("data") or {},
    )


class RedisEventBus(EventBus):
    """An EventBus that also publishes every event to Redis (call ``start`` in the loop)."""

    def __init__(self, redis: Redis, namespace: str) -> None:
        super().__init__()
        self._redis = redis
        self._channel = channel(namespace)
        self._unsent: asyncio.Queue[str] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._lost = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._send(), name="flowloom event relay")

    def publish(self, events: list[Event]) -> None:
        super().publish(events)
        if not events:
            return
        if self._unsent.qsize() >= _MAX_UNSENT:
            self._lost += len(events)
            return
        self._unsent.put_nowait(encode(events))

    async def flush(self, timeout_s: float = 5.0) -> None:
        """Wait until every event published so far has gone to Redis (or ``timeout_s``)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await self._unsent.join()

    async def stop(self) -> None:
        await self.flush()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _send(self) -> None:
        while True:
            payload = await self._unsent.get()
            batch = [payload]
            while not self._unsent.empty() and len(batch) < _MERGED_MAX:
                batch.append(self._unsent.get_nowait())
            message = merge(batch)
            while True:
                try:
                    await self._redis.publish(self._channel, message)
                    break
                except Exception:
                    _log.exception("publishing run events to Redis failed; retrying")
                    await asyncio.sleep(_RETRY_S)
            for _ in batch:
                self._unsent.task_done()
            if self._lost:
                _log.warning("%d run events were not published (Redis too slow)", self._lost)
                self._lost = 0


class EventFeed:
    """Reads the instance's event channel and republishes each event on ``bus``."""

    def __init__(self, redis: Redis, namespace: str, bus: EventBus) -> None:
        self._redis = redis
        self._channel = channel(namespace)
        self._bus = bus
        self._task: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()
        self.live = False
        """Whether the feed is subscribed now (events reach the bus as they are published)."""
        self.generation = 0
        """Grows each time the feed may have missed events (a new subscription, a message it
        could not read): events seen under one generation are all that were published."""
        self._settled: dict[str, None] = {}
        """Runs whose end or wait came by lately, oldest first (``quiet_since``)."""

    def quiet_since(self, run_id: str, generation: int) -> bool:
        """Whether the feed, live since it was at ``generation``, has seen no event that the
        run ended or waits: then it has not (yet), and a waiter need not read it to know."""
        return self.live and generation == self.generation and run_id not in self._settled

    async def start(self, timeout_s: float = 10.0) -> None:
        """Subscribe, returning once the subscription is in place (so nothing is missed)."""
        if self._task is None:
            self._task = asyncio.create_task(self._read(), name="flowloom event feed")
        async with asyncio.timeout(timeout_s):
            await self._subscribed.wait()

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _read(self) -> None:
        while True:
            try:
                async with self._redis.pubsub() as pubsub:
                    await pubsub.subscribe(self._channel)
                    if self._subscribed.is_set():
                        # Subscribed again after a failure: whatever was published meanwhile
                        # is lost, so every follower of a run is told to read it again.
                        self._bus.publish(
                            [Event(DROPPED, run_id) for run_id in self._bus.watched_runs()]
                        )
                    self.generation += 1
                    self._subscribed.set()
                    self.live = True
                    async for message in pubsub.listen():
                        if message.get("type") != "message":
                            continue
                        try:
                            events = decode(message["data"])
                        except (ValueError, KeyError, TypeError):
                            self.generation += 1
                            _log.warning("ignored a malformed run event on %s", self._channel)
                            continue
                        self._remember(events)
                        self._bus.publish(events)
            except asyncio.CancelledError:
                raise
            except Exception:
                self.live = False
                self.generation += 1
                _log.exception("the run event feed from Redis failed; reconnecting")
                await asyncio.sleep(_RETRY_S)

    def _remember(self, events: list[Event]) -> None:
        for event in events:
            if event.type in _SETTLING:
                self._settled[event.run_id] = None
                if len(self._settled) > _REMEMBERED:
                    del self._settled[next(iter(self._settled))]
