"""The feed behind ``GET /runs/{id}/events``: each event serialized once for every reader; a
reader that does not read never holds the publisher up, its queue stays bounded, and what it
lost comes back as the node's whole text or a fresh snapshot."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from ssekit import sse_messages, streamed_text

from flowloom.api import run_feed
from flowloom.api.run_feed import FeedReader, RunFeeds
from flowloom.engine.events import DELTA, Event, EventBus, progress_publisher
from flowloom.engine.streamed_text import StreamedTexts


async def _settle() -> None:
    """Let the feed's pump move what the bus holds."""
    for _ in range(5):
        await asyncio.sleep(0)


async def _stream(bus: EventBus, node_id: str, pieces: int, *, offset: int = 0) -> str:
    """``pieces`` deltas of ``node_id`` from ``offset`` on, the loop turning between them as
    between the chunks of a real stream; the text they make."""
    progress = progress_publisher(bus, "r", node_id, 1)
    sent = ""
    for i in range(pieces):
        piece = f"{node_id}{i} "
        progress("delta", {"text": piece, "offset": offset + len(sent)})
        sent += piece
        await asyncio.sleep(0)
    return sent


async def test_each_event_is_serialized_once_for_every_reader(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = 0
    real = run_feed.sse_message

    def counting(*args: Any) -> bytes:
        nonlocal calls
        calls += 1
        return real(*args)

    monkeypatch.setattr(run_feed, "sse_message", counting)
    bus = EventBus()
    feeds = RunFeeds(bus, gather_s=0)
    readers = [feeds.reader("r") for _ in range(10)]
    assert len(feeds) == 1

    bus.publish([Event("node.started", "r", f"n{i}") for i in range(100)])
    await _settle()

    assert calls == 100
    taken = [reader.take() for reader in readers]
    assert all(data == taken[0] for data in taken)
    assert len(sse_messages(taken[0])) == 100
    for reader in readers:
        reader.close()
    assert len(feeds) == 0, "the feed goes with its last reader"


async def test_a_reader_that_never_reads_stays_bounded_and_gets_the_text_whole() -> None:
    bus = EventBus()
    feeds = RunFeeds(bus, gather_s=0)
    stuck = feeds.reader("r")
    keeping_up = feeds.reader("r")
    bus.publish([Event("run.started", "r"), Event("node.started", "r", "a")])
    await _settle()
    read: list[tuple[str, dict[str, Any]]] = sse_messages(keeping_up.take())

    started = time.perf_counter()
    whole = ""
    for _ in range(50):
        whole += await _stream(bus, "a", 200, offset=len(whole))
        await _settle()
        read += sse_messages(keeping_up.take())
        assert stuck.queued <= run_feed.MAX_QUEUED
    published_s = time.perf_counter() - started

    assert stuck.dropped > 0, "the stuck reader fell behind"
    assert streamed_text(read, "a") == whole, "the reader that keeps up got every piece"
    late = sse_messages(stuck.take())
    assert streamed_text(late, "a") == whole, "what was dropped came back as the whole text"
    assert late[-1][0] == DELTA
    assert late[-1][1]["data"] == {"text": whole, "offset": 0, "attempt": 1}
    assert published_s < 5, published_s  # 10,000 pieces; a blocked reader would never end


async def test_a_state_change_that_does_not_fit_owes_a_snapshot_then_the_texts() -> None:
    bus = EventBus()
    feeds = RunFeeds(bus, gather_s=0)
    reader = feeds.reader("r")
    bus.publish([Event("node.started", "r", f"n{i}") for i in range(run_feed.MAX_QUEUED)])
    await _settle()
    whole = await _stream(bus, "a", 10)  # dropped: the queue is full
    bus.publish([Event("node.started", "r", "late")])  # does not fit either
    await _settle()

    assert reader.needs_snapshot
    assert reader.queued == 0, "everything queued was stale"
    assert streamed_text(sse_messages(reader.texts()), "a") == whole


async def test_a_late_reader_gets_the_text_streamed_before_it_came() -> None:
    bus = EventBus()
    feeds = RunFeeds(bus, gather_s=0)
    first = feeds.reader("r")
    before = await _stream(bus, "a", 20)
    await _settle()
    late = feeds.reader("r")
    after = await _stream(bus, "a", 5, offset=len(before))
    await _settle()

    got = sse_messages(late.texts() + late.take())
    assert streamed_text(got, "a").startswith(before)
    assert streamed_text(sse_messages(first.take()), "a") == before + after


async def test_a_finished_nodes_text_is_not_handed_on_and_a_new_attempt_starts_over() -> None:
    bus = EventBus()
    feeds = RunFeeds(bus, gather_s=0)
    reader = feeds.reader("r")
    await _stream(bus, "a", 3)
    bus.publish([Event("node.retrying", "r", "a", data={"attempt": 1})])
    progress_publisher(bus, "r", "a", 2)("delta", {"text": "again", "offset": 0})
    await _stream(bus, "b", 2)
    bus.publish([Event("node.succeeded", "r", "b", data={"attempt": 1})])
    await _settle()
    reader.take()

    texts = sse_messages(reader.texts())
    assert [(m["node_id"], m["data"]) for _, m in texts] == [
        ("a", {"text": "again", "offset": 0, "attempt": 2})
    ]


async def test_the_run_ending_ends_the_readers_and_a_new_reader_gets_a_new_feed() -> None:
    bus = EventBus()
    feeds = RunFeeds(bus, gather_s=0)
    reader = feeds.reader("r")
    bus.publish([Event("run.completed", "r")])
    await _settle()

    assert reader.finished
    await asyncio.wait_for(reader.wait(), 1)
    assert [kind for kind, _ in sse_messages(reader.take())] == ["run.completed"]
    again = feeds.reader("r")
    assert again.feed is not reader.feed
    assert not again.finished
    again.close()
    reader.close()
    assert len(feeds) == 0


async def test_pieces_that_come_close_together_go_out_as_one() -> None:
    bus = EventBus()
    reader = RunFeeds(bus).reader("r")  # the default: events gather for WRITE_EVERY_S
    bus.publish([Event("node.started", "r", "a")])
    await _settle()
    assert [kind for kind, _ in sse_messages(reader.take())] == ["node.started"], "at once"

    whole = await _stream(bus, "a", 100)  # the loop turns between pieces, well within 20 ms
    await asyncio.sleep(run_feed.WRITE_EVERY_S * 3)

    got = sse_messages(reader.take())
    assert len(got) < 10, len(got)
    assert streamed_text(got, "a") == whole
    reader.close()


async def test_wait_returns_when_something_comes() -> None:
    bus = EventBus()
    reader: FeedReader = RunFeeds(bus, gather_s=0).reader("r")
    waiting = asyncio.create_task(reader.wait())
    await _settle()
    assert not waiting.done()
    bus.publish([Event("node.started", "r", "a")])
    await asyncio.wait_for(waiting, 1)
    reader.close()


async def test_text_past_the_limit_is_neither_kept_nor_handed_on() -> None:
    bus = EventBus()
    bus.texts = StreamedTexts(max_text_chars=40)
    reader = RunFeeds(bus, gather_s=0).reader("r")
    short = await _stream(bus, "a", 3)
    await _settle()
    assert streamed_text(sse_messages(reader.texts()), "a") == short

    await _stream(bus, "a", 20, offset=len(short))  # past 40 characters
    await _settle()

    assert reader.texts() == b""
    reader.close()


async def test_a_reader_whose_feed_starts_while_a_node_streams_gets_its_text_from_the_start() -> (
    None
):
    bus = EventBus()
    before = await _stream(bus, "a", 20)  # nobody follows the run yet
    feeds = RunFeeds(bus, gather_s=0)
    reader = feeds.reader("r")
    so_far = reader.texts()  # as the route sends it, after the run's snapshot
    after = await _stream(bus, "a", 5, offset=len(before))
    await _settle()

    got = sse_messages(so_far + reader.take())
    assert got[0][1]["data"] == {"text": before, "offset": 0, "attempt": 1}
    assert streamed_text(got, "a") == before + after
    reader.close()
