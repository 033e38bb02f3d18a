"""Run events over Redis (flowloom/worker/relay.py): the publish calls made while no message
was on its way are one message, and the feed reads lists and lone events alike."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import pytest
from relaykit import relay_on_redis

from flowloom.engine.events import Event, EventBus
from flowloom.worker.relay import channel, decode, encode, merge

AT = datetime(2026, 12, 6, 20, 0, tzinfo=UTC)


def test_a_message_holds_the_events_of_one_publish_and_reads_back_equal() -> None:
    events = [
        Event("node.succeeded", "run_1", "a", AT, {"duration_ms": 3}),
        Event("run.completed", "run_1", None, AT, {}),
    ]

    assert decode(encode(events)) == events


def test_a_lone_event_as_earlier_versions_sent_it_is_read() -> None:
    lone = json.dumps({"type": "run.started", "run_id": "run_1", "at": AT.isoformat()})

    assert decode(lone) == [Event("run.started", "run_1", None, AT, {})]


@pytest.mark.parametrize("raw", ["not json", "[1]", '{"type": "run.started"}', "[{}]"])
def test_what_is_not_events_is_refused(raw: str) -> None:
    with pytest.raises((ValueError, KeyError, TypeError)):
        decode(raw)


async def test_a_tick_s_events_cross_redis_as_one_message_and_reach_the_api_s_bus() -> None:
    async with relay_on_redis(EventBus()) as on:
        worker_bus = on.worker_bus
        raw = on.redis.pubsub()
        await raw.subscribe(channel(on.namespace))
        with on.api_bus.subscribe("run_1") as received:
            tick = [Event("node.succeeded", "run_1", f"n{i}", AT) for i in range(10)]
            worker_bus.publish(tick)
            worker_bus.publish([Event("run.completed", "run_1", None, AT)])
            await worker_bus.flush()
            got = [await asyncio.wait_for(anext(received), 5) for _ in range(11)]
        messages = []
        # None also stands for the subscription's own confirmation: read for a while.
        for _ in range(10):
            found = await raw.get_message(ignore_subscribe_messages=True, timeout=0.1)
            if found is not None:
                messages.append(found)
        await raw.aclose()

    assert [event.node_id for event in got] == [*(f"n{i}" for i in range(10)), None]
    assert [len(decode(m["data"])) for m in messages] == [11], (
        "the ticks published while no message was on its way go in one"
    )


def test_merged_messages_read_back_as_their_events_in_order() -> None:
    first = [Event("node.succeeded", "run_1", "a", AT, {"duration_ms": 3})]
    second = [Event("node.started", "run_2", "b", AT), Event("run.completed", "run_1", None, AT)]

    assert decode(merge([encode(first), encode(second)])) == first + second
    assert merge([encode(first)]) == encode(first)
    assert decode(merge(["[]", encode(second), "[]"])) == second


async def test_the_feed_says_a_run_has_not_settled_only_while_it_can_know() -> None:
    async with relay_on_redis(EventBus()) as on:
        feed, worker_bus = on.feed, on.worker_bus
        generation = feed.generation
        assert feed.quiet_since("run_1", generation)
        with on.api_bus.subscribe("run_1") as received:
            worker_bus.publish([Event("node.succeeded", "run_1", "a", AT)])
            await asyncio.wait_for(anext(received), 5)
            assert feed.quiet_since("run_1", generation), "a node's event settles nothing"
            worker_bus.publish([Event("run.waiting", "run_1", None, AT)])
            await asyncio.wait_for(anext(received), 5)
        assert not feed.quiet_since("run_1", generation)
        assert feed.quiet_since("run_2", generation)
        assert not feed.quiet_since("run_2", generation - 1), "events may have been missed"
        await on.redis.publish(channel(on.namespace), "not an event")
        for _ in range(50):
            if feed.generation != generation:
                break
            await asyncio.sleep(0.02)
        assert not feed.quiet_since("run_2", generation), "a message it could not read"
