"""A subscriber that reads slowly gets a node's streamed text in fewer, longer pieces, never
with a gap, and its queue does not fill with them; other events keep their order."""

from __future__ import annotations

import asyncio

from flowloom.engine.events import DELTA, DROPPED, Event, EventBus, progress_publisher


async def _read_queued(subscription: object) -> list[Event]:
    found: list[Event] = []
    iterator = aiter(subscription)  # type: ignore[call-overload]
    while True:
        try:
            found.append(await asyncio.wait_for(anext(iterator), 0.05))
        except TimeoutError:
            return found


async def test_a_slow_reader_gets_deltas_merged_without_loss() -> None:
    bus = EventBus(max_queued=10)
    subscription = bus.subscribe("r")
    first = progress_publisher(bus, "r", "a", 1)
    second = progress_publisher(bus, "r", "b", 1)
    bus.publish([Event("node.started", "r", "a"), Event("node.started", "r", "b")])
    offsets = {"a": 0, "b": 0}
    for i in range(5000):  # far more than the queue holds
        for node_id, progress in (("a", first), ("b", second)):
            piece = f"{node_id}{i} "
            progress("delta", {"text": piece, "offset": offsets[node_id]})
            offsets[node_id] += len(piece)
    bus.publish([Event("node.succeeded", "r", "a"), Event("node.succeeded", "r", "b")])

    events = await _read_queued(subscription)
    assert DROPPED not in [e.type for e in events]
    assert len(events) <= 10
    for node_id in ("a", "b"):
        mine = [e for e in events if e.node_id == node_id]
        assert [e.type for e in mine] == ["node.started", DELTA, "node.succeeded"]
        assert mine[1].data["text"] == "".join(f"{node_id}{i} " for i in range(5000))
        assert mine[1].data["offset"] == 0


async def test_deltas_of_another_attempt_are_not_merged() -> None:
    bus = EventBus()
    subscription = bus.subscribe("r")
    progress_publisher(bus, "r", "a", 1)("delta", {"text": "partial", "offset": 0})
    progress_publisher(bus, "r", "a", 2)("delta", {"text": "whole", "offset": 0})
    events = await _read_queued(subscription)
    assert [(e.data["attempt"], e.data["text"]) for e in events] == [(1, "partial"), (2, "whole")]


async def test_a_reader_that_keeps_up_gets_every_piece() -> None:
    bus = EventBus()
    subscription = bus.subscribe("r")
    progress = progress_publisher(bus, "r", "a", 1)
    got: list[str] = []
    for i, piece in enumerate(["Hel", "lo"]):
        progress("delta", {"text": piece, "offset": 3 * i})
        got += [e.data["text"] for e in await _read_queued(subscription)]
    assert got == ["Hel", "lo"]


async def test_drain_takes_everything_queued_without_waiting() -> None:
    bus = EventBus(max_queued=3)
    subscription = bus.subscribe("r")
    assert subscription.drain() == []
    bus.publish([Event("node.started", "r", f"n{i}") for i in range(5)])

    drained = subscription.drain()

    assert [e.type for e in drained] == [DROPPED, "node.started", "node.started", "node.started"]
    assert drained[0].data == {"count": 2}
    assert [e.node_id for e in drained[1:]] == ["n2", "n3", "n4"]
    assert subscription.drain() == []
