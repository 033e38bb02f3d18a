"""One run's live events for every reader following it over Server-Sent Events, in this process.

However many clients follow a run, the feed holds one subscription to the event bus and turns
each event into its SSE message once; every reader then gets the same bytes. A reader has a
bounded queue of its own and never holds anything up: the bus hands events over without
waiting, and the feed hands them to readers without waiting.

A reader that falls behind (its client reads slowly, or its queue is full when an event comes)
loses what it cannot hold, and gets something better in its place:

- streamed text (``node.delta``) that did not fit is dropped, and once the reader catches up it
  gets that node's whole text so far in one delta at offset 0 (the feed keeps the text of each
  node streaming now, seeded from the bus's as it starts following the run, so a reader that
  joins in the middle of an answer gets its beginning too);
- a state change that did not fit makes everything queued stale: the queue is emptied and the
  reader is owed a fresh ``snapshot`` of the run (read from the database, the truth), followed
  by the text of every node streaming now.

The feed takes events from the bus at most once per ``WRITE_EVERY_S`` (the first after a quiet
spell at once): the deltas of a node that came in between have merged into one by then, so a
run streaming thousands of pieces a second costs tens of serializations a second, not
thousands. Readers write at most once per ``WRITE_EVERY_S`` too: what came in between goes
out in one write.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from flowloom.engine import DROPPED, RUN_FINISHED_EVENTS, Event, EventBus, Subscription
from flowloom.engine.events import DELTA
from flowloom.engine.streamed_text import StreamedTexts

__all__ = ["FeedReader", "RunFeed", "RunFeeds", "sse_message"]

WRITE_EVERY_S: Final = 0.02
"""The shortest time between two writes to one client: the first event after a quiet spell
goes out at once, a burst goes out in writes this far apart."""
MAX_QUEUED: Final = 1_000
"""Messages one reader may have waiting before it counts as fallen behind."""
MAX_QUEUED_BYTES: Final = 4 * 1024 * 1024
"""Bytes one reader may have waiting before it counts as fallen behind."""


def sse_message(seq: int, kind: str, data: Any) -> bytes:
    """One Server-Sent Event: ``id``, ``event`` and one ``data`` line of compact JSON."""
    payload = json.dumps(data, separators=(",", ":"), default=str)
    return f"id: {seq}\nevent: {kind}\ndata: {payload}\n\n".encode()


@dataclass(frozen=True, slots=True)
class _Message:
    kind: str
    node_id: str | None
    data: bytes


class FeedReader:
    """One client's view of a feed: what it still has to be sent."""

    def __init__(self, feed: RunFeed, *, max_queued: int, max_queued_bytes: int) -> None:
        self.feed = feed
        self.needs_snapshot = False
        """It lost a state change: a fresh snapshot of the run must come next."""
        self.finished = False
        """The run's last event is queued (or the feed closed): after it, nothing comes."""
        self.dropped = 0
        """Messages this reader lost, in total (deltas and stale state changes)."""
        self._queue: deque[_Message] = deque()
        self._queued_bytes = 0
        self._owed: dict[str, None] = {}
        """Nodes whose dropped deltas are owed as their whole text (ordered as they came)."""
        self._max_queued = max_queued
        self._max_queued_bytes = max_queued_bytes
        self._ready = asyncio.Event()

    @property
    def queued(self) -> int:
        return len(self._queue)

    def _full(self, message: _Message) -> bool:
        return (
            len(self._queue) >= self._max_queued
            or self._queued_bytes + len(message.data) > self._max_queued_bytes
        )

    def _offer(self, message: _Message) -> None:
        if self.finished:
            return
        if message.kind == DELTA and message.node_id is not None:
            if message.node_id in self._owed or self._full(message):
                self._owed[message.node_id] = None
                self.dropped += 1
                self._ready.set()
                return
        elif self._full(message):
            # A state change does not fit: all that is queued is stale; the run's snapshot, read
            # when this reader next writes, replaces it.
            self.dropped += len(self._queue) + 1
            self._queue.clear()
            self._queued_bytes = 0
            self._owed.clear()
            self.needs_snapshot = True
            self.finished = message.kind in RUN_FINISHED_EVENTS
            self._ready.set()
            return
        self._queue.append(message)
        self._queued_bytes += len(message.data)
        self.finished = message.kind in RUN_FINISHED_EVENTS
        self._ready.set()

    def _end(self) -> None:
        self.finished = True
        self._ready.set()

    def _lost(self) -> None:
        """Events were lost before they reached this reader: it reads the run again."""
        self.needs_snapshot = True
        self._ready.set()

    async def wait(self) -> None:
        """Until there is something to send (or the feed has ended)."""
        while not (self._queue or self._owed or self.needs_snapshot or self.finished):
            self._ready.clear()
            await self._ready.wait()

    def take(self) -> bytes:
        """Everything queued, as one write, then the whole text of each node whose pieces were
        dropped. A snapshot owed (``needs_snapshot``) must be sent before this."""
        data = b"".join(message.data for message in self._queue)
        self._queue.clear()
        self._queued_bytes = 0
        owed, self._owed = list(self._owed), {}
        return data + b"".join(self.feed.text_message(node_id) for node_id in owed)

    def texts(self) -> bytes:
        """The whole text so far of every node streaming now (after a snapshot)."""
        self._owed.clear()
        return b"".join(self.feed.text_message(node_id) for node_id in self.feed.streaming())

    def close(self) -> None:
        self.feed.remove(self)


class RunFeed:
    """The events of one run, serialized once, for every :class:`FeedReader` of it."""

    def __init__(
        self,
        bus: EventBus,
        run_id: str,
        *,
        on_idle: Callable[[RunFeed], None],
        max_queued: int = MAX_QUEUED,
        max_queued_bytes: int = MAX_QUEUED_BYTES,
        gather_s: float = WRITE_EVERY_S,
    ) -> None:
        self.run_id = run_id
        self._gather_s = gather_s
        self.readers: list[FeedReader] = []
        self._seq = 0
        self._on_idle = on_idle
        self._max_queued = max_queued
        self._max_queued_bytes = max_queued_bytes
        self._subscription: Subscription = bus.subscribe(run_id)
        # In the same turn of the loop: the texts so far, then every delta after them.
        self._texts: StreamedTexts = bus.texts.of_run(run_id)
        self._pump = asyncio.get_running_loop().create_task(
            self._run(), name=f"flowloom feed {run_id}"
        )

    def reader(self) -> FeedReader:
        """A new reader, receiving from the next event on."""
        reader = FeedReader(
            self, max_queued=self._max_queued, max_queued_bytes=self._max_queued_bytes
        )
        self.readers.append(reader)
        return reader

    def remove(self, reader: FeedReader) -> None:
        if reader in self.readers:
            self.readers.remove(reader)
        if not self.readers:
            self.close()

    def close(self) -> None:
        """Stop following the run; every reader left is ended."""
        self._subscription.close()
        self._pump.cancel()
        for reader in self.readers:
            reader._end()
        self._on_idle(self)

    @property
    def ended(self) -> bool:
        """The run's last event has passed (or the feed was closed): new readers need a new
        feed."""
        return self._pump.done()

    def next_seq(self) -> int:
        """A sequence number for a message made for one reader (a snapshot, a text)."""
        self._seq += 1
        return self._seq

    def streaming(self) -> list[str]:
        """The nodes whose text of this attempt the feed holds whole."""
        return self._texts.streaming(self.run_id)

    def text_message(self, node_id: str) -> bytes:
        """``node_id``'s whole text so far as one delta at offset 0; nothing when the feed does
        not hold it (the node finished, or its text outgrew the limit)."""
        found = self._texts.text(self.run_id, node_id)
        if found is None:
            return b""
        text, attempt = found
        event = Event(
            DELTA, self.run_id, node_id, data={"text": text, "offset": 0, "attempt": attempt}
        )
        return sse_message(self.next_seq(), DELTA, event.to_json())

    async def _run(self) -> None:
        try:
            async for first in self._subscription:
                # The first event after a quiet spell goes out at once; what comes in the next
                # WRITE_EVERY_S waits in the bus, where a node's deltas merge into one.
                for event in [first, *self._subscription.drain()]:
                    self._publish(event)
                    if event.type in RUN_FINISHED_EVENTS:
                        return
                await asyncio.sleep(self._gather_s)
        finally:
            self._subscription.close()
            for reader in self.readers:
                reader._end()
            # A reader that comes now gets a feed of its own (and a snapshot saying it ended).
            self._on_idle(self)

    def _publish(self, event: Event) -> None:
        if event.type == DROPPED:
            # The feed itself fell behind the bus (it hardly can: it only copies bytes):
            # every reader reads the run again.
            for reader in self.readers:
                reader._lost()
            return
        self._texts.note(event.type, event.run_id, event.node_id, event.data)
        message = _Message(
            event.type, event.node_id, sse_message(self.next_seq(), event.type, event.to_json())
        )
        for reader in self.readers:
            reader._offer(message)


class RunFeeds:
    """The feeds of the runs followed now in this process, made on a run's first reader and
    dropped after its last."""

    def __init__(
        self,
        bus: EventBus,
        *,
        max_queued: int = MAX_QUEUED,
        max_queued_bytes: int = MAX_QUEUED_BYTES,
        gather_s: float = WRITE_EVERY_S,
    ) -> None:
        """``gather_s``: how long a feed lets events gather in the bus after taking some (0
        takes each as soon as the loop turns)."""
        self.bus = bus
        self._feeds: dict[str, RunFeed] = {}
        self._max_queued = max_queued
        self._max_queued_bytes = max_queued_bytes
        self._gather_s = gather_s

    def reader(self, run_id: str) -> FeedReader:
        """A reader of ``run_id``'s events from now on (its feed made if need be)."""
        feed = self._feeds.get(run_id)
        if feed is None or feed.ended:
            feed = self._feeds[run_id] = RunFeed(
                self.bus,
                run_id,
                on_idle=self._forget,
                max_queued=self._max_queued,
                max_queued_bytes=self._max_queued_bytes,
                gather_s=self._gather_s,
            )
        return feed.reader()

    def feed(self, run_id: str) -> RunFeed | None:
        """The feed of ``run_id`` if someone follows it now."""
        return self._feeds.get(run_id)

    def _forget(self, feed: RunFeed) -> None:
        if self._feeds.get(feed.run_id) is feed:
            del self._feeds[feed.run_id]

    def __len__(self) -> int:
        return len(self._feeds)
