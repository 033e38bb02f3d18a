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

Every API process reads every run's events, but most of them follow few runs: a message is a
digest line, then the events. The digest (``digest``) holds what the API needs of every run
whoever follows it: which runs the events are of, the run-level events that start, settle or
end a run (with the workflow and duration that the metrics count), and each node's end (its
type, outcome and duration). The feed reads the digest of every message, counts it into the
metrics (``FeedBus``), wakes the waiters of the runs it settles (``EventFeed.settling``) and
decodes the events only when somebody on this process follows one of its runs (an SSE stream,
a hook) or every run: the events of a run nobody follows here cost a parse of its digest, not
of its events.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from flowloom.engine.events import DELTA, DROPPED, RUN_FINISHED_EVENTS, Event, EventBus

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = [
    "DigestReader",
    "EventFeed",
    "FeedBus",
    "RedisEventBus",
    "Settling",
    "channel",
    "decode",
    "digest",
    "encode",
    "merge",
    "read_digest",
]

_log = logging.getLogger("flowloom.worker")
_MAX_UNSENT = 100_000
_SETTLING = frozenset({*RUN_FINISHED_EVENTS, "run.waiting"})
"""The events after which a waiter reads its run again (``remote.py``)."""
_REMEMBERED = 10_000
"""How many runs' settling events the feed remembers (the newest)."""
_RETRY_S = 1.0
_MERGED_MAX = 500
"""The most ``publish`` calls one message carries."""
_RUN, _RUN_EVENT, _NODE_END, _STREAMS = 0, 1, 2, 3
"""The kinds of digest entries: ``[0, run_id]`` (the message has events of the run),
``[1, run_id, type, workflow_id, duration_ms]`` (a run-level event in ``_DIGESTED``),
``[2, node_type, type, duration_ms]`` (a node ended, in ``_NODE_ENDS``), ``[3, run_id]``
(the message has a piece of streamed text of the run: the bus keeps the text so far of every
node streaming, so a reader who comes in the middle of an answer gets its beginning)."""
_DIGESTED = frozenset({"run.started", *_SETTLING})
_dumps = json.JSONEncoder(separators=(",", ":"), default=str).encode
"""``json.dumps`` with these options, its encoder built once (not at every call)."""
_NODE_ENDS = frozenset({"node.succeeded", "node.failed"})


def channel(namespace: str) -> str:
    return f"flowloom:{namespace}:events"


def digest(events: list[Event]) -> list[list[Any]]:
    """What every API process needs of ``events`` whoever follows their runs (the module)."""
    entries: list[list[Any]] = []
    runs: set[str] = set()
    streaming: set[str] = set()
    for event in events:
        kind, run_id = event.type, event.run_id
        if run_id not in runs:
            runs.add(run_id)
            entries.append([_RUN, run_id])
        if kind == DELTA:
            if run_id not in streaming:
                streaming.add(run_id)
                entries.append([_STREAMS, run_id])
        elif kind in _NODE_ENDS:
            data = event.data
            node_type = str(data.get("node_type") or "unknown")
            entries.append([_NODE_END, node_type, kind, data.get("duration_ms")])
        elif kind in _DIGESTED:
            data = event.data
            workflow_id, duration_ms = data.get("workflow_id"), data.get("duration_ms")
            entries.append([_RUN_EVENT, run_id, kind, workflow_id, duration_ms])
    return entries


class DigestReader(Protocol):
    """What a digest tells (the API's metrics)."""

    def run_started(self) -> None: ...

    def run_finished(self, kind: str, workflow_id: object, duration_ms: object) -> None: ...

    def node_ended(self, node_type: str, kind: str, duration_ms: object) -> None: ...


def read_digest(entries: list[list[Any]], reader: DigestReader) -> None:
    """Tell ``reader`` what the digest ``entries`` hold, in order."""
    for entry in entries:
        tag = entry[0]
        if tag == _NODE_END:
            reader.node_ended(str(entry[1]), str(entry[2]), entry[3])
        elif tag == _RUN_EVENT:
            kind = entry[2]
            if kind == "run.started":
                reader.run_started()
            elif kind in RUN_FINISHED_EVENTS:
                reader.run_finished(kind, entry[3], entry[4])


class _Digested(NamedTuple):
    runs: list[str]
    """The runs the message has events of."""
    settling: list[tuple[str, str]]
    """Its (run, event type) that settle a run."""
    streams: bool
    """Whether it has a piece of streamed text."""


def _digested(entries: list[list[Any]]) -> _Digested:
    """What the feed acts on in a digest."""
    runs: list[str] = []
    settling: list[tuple[str, str]] = []
    streams = False
    for entry in entries:
        tag = entry[0]
        if tag == _RUN:
            runs.append(str(entry[1]))
        elif tag == _RUN_EVENT and entry[2] in _SETTLING:
            settling.append((str(entry[1]), str(entry[2])))
        elif tag == _STREAMS:
            streams = True
    return _Digested(runs, settling, streams)


def encode(events: list[Event]) -> str:
    """One message for ``events``: their digest (a JSON list), a newline, the events (a JSON
    list; JSON text never holds a raw newline)."""
    return f"{_dumps(digest(events))}\n{_dumps([event.to_json() for event in events])}"


def merge(messages: list[str]) -> str:
    """One message holding the digests and the events of ``messages`` (``encode``'s), in
    order."""
    if len(messages) == 1:
        return messages[0]
    heads: list[str] = []
    bodies: list[str] = []
    for message in messages:
        head, _, body = message.partition("\n")
        if inner := head[1:-1]:
            heads.append(inner)
        if inner := body[1:-1]:
            bodies.append(inner)
    return "[" + ",".join(heads) + "]\n[" + ",".join(bodies) + "]"


def decode(raw: bytes | str) -> list[Event]:
    """The events of one message: ``encode``'s, or what earlier versions sent (a list of
    events, or one object, with no digest); ValueError, KeyError or TypeError when it is not
    events."""
    found: Any = json.loads(_body(raw))
    return [_event(item) for item in (found if isinstance(found, list) else [found])]


def _body(raw: bytes | str) -> bytes | str:
    if isinstance(raw, bytes):
        return raw.rpartition(b"\n")[2]
    return raw.rpartition("\n")[2]


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


class FeedBus(EventBus):
    """The API's bus in distributed mode: the metrics read the digests of every run's events
    (``read_digests``) instead of following every event, so the feed decodes the events of a
    message only for the runs somebody follows here (``follows``)."""

    def __init__(self, *, max_queued: int = 10_000) -> None:
        super().__init__(max_queued=max_queued)
        self._readers: list[DigestReader] = []

    def read_digests(self, reader: DigestReader) -> None:
        """Tell ``reader`` what every run does from now on (until ``stop_reading``)."""
        self._readers.append(reader)

    def stop_reading(self, reader: DigestReader) -> None:
        if reader in self._readers:
            self._readers.remove(reader)

    def publish(self, events: list[Event]) -> None:
        """Events of this process: to the subscribers, and their digest to the readers."""
        super().publish(events)
        if self._readers and events:
            self.count(digest(events))

    def count(self, entries: list[list[Any]]) -> None:
        """Hand a digest (of events published elsewhere) to the readers."""
        for reader in self._readers:
            read_digest(entries, reader)

    def relay(self, events: list[Event]) -> None:
        """Events published elsewhere, whose digest was counted already: to the subscribers."""
        super().publish(events)


class Settling:
    """The events that may settle one run (``_SETTLING``, and ``events.dropped`` when the feed
    may have missed some), as the feed reads them: what the API's waiters wake on."""

    def __init__(self) -> None:
        self._kinds: deque[str] = deque()
        self._ready = asyncio.Event()

    def offer(self, kind: str) -> None:
        self._kinds.append(kind)
        self._ready.set()

    async def next(self) -> str:
        """The next such event's type (waiting for it)."""
        while not self._kinds:
            self._ready.clear()
            await self._ready.wait()
        return self._kinds.popleft()


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
        self._settled: dict[str, str] = {}
        """Runs whose end or wait came by lately, oldest first, each with the type of the last
        such event (``quiet_since``, ``saw_finish``)."""
        self._waiters: dict[str, list[Settling]] = {}

    def quiet_since(self, run_id: str, generation: int) -> bool:
        """Whether the feed, live since it was at ``generation``, has seen no event that the
        run ended or waits: then it has not (yet), and a waiter need not read it to know."""
        return self.live and generation == self.generation and run_id not in self._settled

    def saw_finish(self, run_id: str) -> bool:
        """Whether the feed read lately that the run finished: then it has for good (a
        finished run never changes), and a waiter for its end need not read it."""
        return self._settled.get(run_id) in RUN_FINISHED_EVENTS

    @contextlib.contextmanager
    def settling(self, run_id: str) -> Iterator[Settling]:
        """The run's settling events from now on (and ``events.dropped`` when the feed may
        have missed some), read from the digests: a waiter needs no event decoded."""
        waiter = Settling()
        self._waiters.setdefault(run_id, []).append(waiter)
        try:
            yield waiter
        finally:
            found = self._waiters.get(run_id, [])
            if waiter in found:
                found.remove(waiter)
            if not found:
                self._waiters.pop(run_id, None)

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
                        self._lost()
                    self.generation += 1
                    self._subscribed.set()
                    self.live = True
                    async for message in pubsub.listen():
                        if message.get("type") != "message":
                            continue
                        try:
                            self._take(message["data"])
                        except (ValueError, KeyError, TypeError, IndexError):
                            self.generation += 1
                            _log.warning("ignored a malformed run event on %s", self._channel)
                            self._lost(bus=False)
            except asyncio.CancelledError:
                raise
            except Exception:
                self.live = False
                self.generation += 1
                _log.exception("the run event feed from Redis failed; reconnecting")
                await asyncio.sleep(_RETRY_S)

    def _take(self, raw: bytes | str) -> None:
        """One message: its digest to the metrics and the waiters, its events to the bus when
        somebody here follows one of its runs."""
        if isinstance(raw, str):
            raw = raw.encode()
        head, newline, body = raw.partition(b"\n")
        bus = self._bus
        if not newline:
            # From an earlier version: events, no digest.
            events = decode(raw)
            self._settle([(e.run_id, e.type) for e in events if e.type in _SETTLING])
            bus.publish(events)
            return
        entries = json.loads(head)
        digested = _digested(entries)
        self._settle(digested.settling)
        if isinstance(bus, FeedBus):
            bus.count(entries)
            runs = digested.runs
            # Streamed text, and the end of a node or run whose text the bus keeps, go to
            # the bus whoever follows: a reader may come in the middle of an answer.
            if digested.streams or bus.follows(runs) or bus.texts.holds_any(runs):
                bus.relay(decode(body))
        else:
            bus.publish(decode(body))

    def _settle(self, settling: list[tuple[str, str]]) -> None:
        for run_id, kind in settling:
            self._settled.pop(run_id, None)  # the newest last, as the eviction expects
            self._settled[run_id] = kind
            if len(self._settled) > _REMEMBERED:
                del self._settled[next(iter(self._settled))]
            for waiter in self._waiters.get(run_id, ()):
                waiter.offer(kind)

    def _lost(self, *, bus: bool = True) -> None:
        """Events may have been lost: every waiter, and (``bus``) every follower of a run on
        the bus, reads its run again."""
        for waiters in self._waiters.values():
            for waiter in waiters:
                waiter.offer(DROPPED)
        if bus:
            self._bus.publish([Event(DROPPED, run_id) for run_id in self._bus.watched_runs()])
