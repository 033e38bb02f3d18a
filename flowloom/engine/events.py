"""Events: every state change of a run, published in process after the commit that made it true.

The bus never blocks the engine. Each subscriber has a bounded queue; when a slow subscriber
lets it fill up, the oldest events are dropped and the subscriber is told how many with one
``events.dropped`` event before the next one it reads. A subscriber that must not miss a state
reads the run back from the database, which is the truth; events are a live view of it.

Progress events (``node.delta``: a piece of a node's streamed text, never stored) come many
per second. A subscriber that is behind does not get them one by one: a delta that continues a
delta of the same node still waiting in its queue is appended to it, so a slow reader receives
fewer, longer pieces, loses no text, and its queue does not fill with them. The bus also
keeps the text so far of each node streaming now (``texts``), whether or not anyone follows the
run, so that a reader who comes in the middle of a node's answer can be handed its beginning.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from flowloom.engine.event_kinds import DELTA, DROPPED, RUN_FINISHED_EVENTS
from flowloom.engine.streamed_text import StreamedTexts

__all__ = [
    "DELTA",
    "DROPPED",
    "RUN_FINISHED_EVENTS",
    "Event",
    "EventBus",
    "Subscription",
    "progress_publisher",
]

_MERGE_LOOKBACK: Final = 16
"""How far back in a queue a delta looks for the earlier delta it continues."""


@dataclass(frozen=True, slots=True)
class Event:
    """One state change: ``run.started``, ``node.succeeded``, ... with what the reader needs."""

    type: str
    run_id: str
    node_id: str | None = None
    at: datetime = field(default_factory=lambda: datetime.now(UTC))
    data: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "run_id": self.run_id,
            "node_id": self.node_id,
            "at": self.at.isoformat(),
            "data": self.data,
        }


class Subscription:
    """The events of one run (or of every run), read with ``async for``; ``close()`` to stop."""

    def __init__(self, bus: EventBus, run_id: str | None, max_queued: int) -> None:
        self.run_id = run_id
        self.dropped = 0
        """How many events this subscriber lost in total, because it read too slowly."""
        self._bus = bus
        self._queue: deque[Event] = deque()
        self._max_queued = max_queued
        self._unreported = 0
        self._ready = asyncio.Event()
        self._closed = False

    def _offer(self, event: Event) -> None:
        if event.type == DELTA and self._queue and self._merge(event):
            return
        if len(self._queue) >= self._max_queued:
            self._queue.popleft()
            self.dropped += 1
            self._unreported += 1
        self._queue.append(event)
        self._ready.set()

    def _merge(self, delta: Event) -> bool:
        """Append ``delta`` to the queued delta it continues, if the last queued event of its
        node is one; whether it was."""
        queue = self._queue
        for index in range(len(queue) - 1, max(-1, len(queue) - 1 - _MERGE_LOOKBACK), -1):
            queued = queue[index]
            if queued.run_id != delta.run_id or queued.node_id != delta.node_id:
                continue
            before, after = queued.data, delta.data
            if (
                queued.type != DELTA
                or before.get("attempt") != after.get("attempt")
                or before["offset"] + len(before["text"]) != after["offset"]
            ):
                return False
            merged = {**before, "text": before["text"] + after["text"]}
            queue[index] = Event(DELTA, delta.run_id, delta.node_id, delta.at, merged)
            return True
        return False

    def drain(self) -> list[Event]:
        """Every event queued now, without waiting (an ``events.dropped`` first if some were
        lost): for a reader that wakes on the first event and then takes the rest in bulk,
        letting deltas merge in between."""
        found: list[Event] = []
        if self._unreported and self._queue:
            found.append(Event(DROPPED, self._queue[0].run_id, data={"count": self._unreported}))
            self._unreported = 0
        found.extend(self._queue)
        self._queue.clear()
        return found

    def close(self) -> None:
        """Stop receiving; a reader blocked in ``async for`` ends."""
        self._closed = True
        self._bus._remove(self)
        self._ready.set()

    def __aiter__(self) -> AsyncIterator[Event]:
        return self

    async def __anext__(self) -> Event:
        while not self._queue:
            if self._closed:
                raise StopAsyncIteration
            self._ready.clear()
            await self._ready.wait()
        event = self._queue[0]
        if self._unreported:
            count, self._unreported = self._unreported, 0
            return Event(DROPPED, event.run_id, data={"count": count})
        return self._queue.popleft()

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class EventBus:
    """In-process publish/subscribe of run events. ``publish`` never waits."""

    def __init__(self, *, max_queued: int = 10_000) -> None:
        self._max_queued = max_queued
        self._by_run: dict[str, list[Subscription]] = {}
        self._everything: list[Subscription] = []
        self.texts = StreamedTexts()
        """The text so far of each node streaming now, of every run published here."""

    def subscribe(self, run_id: str | None = None) -> Subscription:
        """Events of ``run_id`` (or of every run when None) from now on."""
        subscription = Subscription(self, run_id, self._max_queued)
        if run_id is None:
            self._everything.append(subscription)
        else:
            self._by_run.setdefault(run_id, []).append(subscription)
        return subscription

    def publish(self, events: list[Event]) -> None:
        """Hand ``events`` to every interested subscriber, in order, without blocking."""
        texts = self.texts
        for event in events:
            texts.note(event.type, event.run_id, event.node_id, event.data)
        if not self._everything and not self._by_run:
            return
        for event in events:
            for subscription in self._everything:
                subscription._offer(event)
            for subscription in self._by_run.get(event.run_id, ()):
                subscription._offer(event)

    def follows(self, run_ids: Iterable[str]) -> bool:
        """Whether somebody follows any of ``run_ids`` (or every run)."""
        if self._everything:
            return True
        followed = self._by_run
        return any(run_id in followed for run_id in run_ids)

    def watched_runs(self) -> list[str]:
        """The runs somebody follows now (a relay that lost events tells them so)."""
        return list(self._by_run)

    def _remove(self, subscription: Subscription) -> None:
        if subscription.run_id is None:
            if subscription in self._everything:
                self._everything.remove(subscription)
            return
        found = self._by_run.get(subscription.run_id, [])
        if subscription in found:
            found.remove(subscription)
        if not found:
            self._by_run.pop(subscription.run_id, None)


def progress_publisher(
    bus: EventBus, run_id: str, node_id: str, attempt: int
) -> Callable[[str, Mapping[str, Any]], None]:
    """A node's ``ctx.progress``: each call publishes a ``node.<kind>`` event of the attempt."""

    def progress(kind: str, data: Mapping[str, Any]) -> None:
        bus.publish([Event(f"node.{kind}", run_id, node_id, data={**data, "attempt": attempt})])

    return progress
