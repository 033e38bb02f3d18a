"""The digest line of a run-event message (flowloom/worker/relay.py): the API's metrics and
waiters read it for every run, and the events themselves are decoded only for the runs that
somebody on the API process follows."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from relaykit import Relay, relay_on_redis

from flowloom.api.metrics import Metrics
from flowloom.engine.events import DELTA, DROPPED, Event
from flowloom.worker import relay
from flowloom.worker.relay import FeedBus, channel, digest, encode

AT = datetime(2026, 12, 7, 15, 0, tzinfo=UTC)


def _run(run_id: str, workflow_id: str = "wf_1") -> list[Event]:
    """A run of two nodes, one failed, as a worker's driver publishes it."""
    return [
        Event("run.started", run_id, None, AT),
        Event("node.started", run_id, "a", AT, {"attempt": 1}),
        Event(
            "node.succeeded",
            run_id,
            "a",
            AT,
            {"attempt": 1, "duration_ms": 4, "node_type": "text.value", "outputs": {"x": 1}},
        ),
        Event("node.failed", run_id, "b", AT, {"duration_ms": 2, "node_type": "http.request"}),
        Event("run.failed", run_id, None, AT, {"workflow_id": workflow_id, "duration_ms": 20}),
    ]


def _value(metrics: Metrics, name: str, labels: dict[str, str] | None = None) -> float | None:
    return metrics.registry.get_sample_value(name, labels or {})


def test_the_digest_names_the_runs_their_settling_and_the_nodes_that_ended() -> None:
    events = [*_run("run_1"), Event("run.waiting", "run_2", None, AT, {"waiting": ["w"]})]

    assert digest(events) == [
        [0, "run_1"],
        [1, "run_1", "run.started", None, None],
        [2, "text.value", "node.succeeded", 4],
        [2, "http.request", "node.failed", 2],
        [1, "run_1", "run.failed", "wf_1", 20],
        [0, "run_2"],
        [1, "run_2", "run.waiting", None, None],
    ]
    head, body = encode(events).split("\n")
    assert json.loads(head) == digest(events)
    assert "outputs" not in head, "what only followers need stays in the events"
    assert len(json.loads(body)) == len(events)


async def test_metrics_on_a_feed_bus_count_digests_once_followed_or_not() -> None:
    bus = FeedBus()
    metrics = Metrics()
    metrics.start(bus)
    try:
        with bus.subscribe("run_2"):
            bus.count(digest(_run("run_1")))
            bus.count(digest(_run("run_2", "wf_2")))
            bus.publish([Event("run.started", "run_3")])  # an event of this process
            await asyncio.sleep(0)
    finally:
        await metrics.stop()
    bus.count(digest(_run("run_4")))  # after stop: not counted

    assert _value(metrics, "flowloom_runs_started_total") == 3
    assert _value(metrics, "flowloom_runs_finished_total", {"status": "FAILED"}) == 2
    failed = {"workflow_id": "wf_2", "status": "FAILED"}
    assert _value(metrics, "flowloom_run_duration_seconds_count", failed) == 1
    assert _value(metrics, "flowloom_run_duration_seconds_sum", failed) == 0.02
    node = {"node_type": "text.value", "outcome": "succeeded"}
    assert _value(metrics, "flowloom_node_duration_seconds_count", node) == 2


def test_a_feed_bus_follows_the_runs_somebody_subscribed_to() -> None:
    bus = FeedBus()

    assert not bus.follows(["run_1", "run_2"])
    with bus.subscribe("run_2"):
        assert bus.follows(["run_1", "run_2"])
        assert not bus.follows(["run_1"])
        assert not bus.follows([])
    assert not bus.follows(["run_2"])
    with bus.subscribe():
        assert bus.follows(["run_1"]), "a follower of every run follows each"


def test_digest_entries_that_are_not_numbers_are_not_observed() -> None:
    metrics = Metrics()
    relay.read_digest(
        [
            [2, "text.value", "node.succeeded", None],
            [1, "run_1", "run.completed", None, 5],
            [1, "run_1", "run.completed", "wf_1", "5"],
        ],
        metrics,
    )

    assert _value(metrics, "flowloom_runs_finished_total", {"status": "COMPLETED"}) == 2
    assert (
        _value(
            metrics,
            "flowloom_run_duration_seconds_count",
            {"workflow_id": "wf_1", "status": "COMPLETED"},
        )
        is None
    )
    node = {"node_type": "text.value", "outcome": "succeeded"}
    assert _value(metrics, "flowloom_node_duration_seconds_count", node) is None


@asynccontextmanager
async def feed_on_redis() -> AsyncIterator[tuple[Relay[FeedBus], Metrics]]:
    """A relay into an API's ``FeedBus``, with the API's metrics reading its digests."""
    bus = FeedBus()
    metrics = Metrics()
    metrics.start(bus)
    try:
        async with relay_on_redis(bus) as on:
            yield on, metrics
    finally:
        await metrics.stop()


async def _until(check: Any) -> None:
    for _ in range(250):
        if check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("not reached in 5 s")


async def test_the_feed_decodes_only_the_events_of_followed_runs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    decoded: list[str] = []
    real = relay.decode

    def counting(raw: bytes | str) -> list[Event]:
        events = real(raw)
        decoded.extend(event.run_id for event in events)
        return events

    monkeypatch.setattr(relay, "decode", counting)
    async with feed_on_redis() as (on, metrics):
        with on.api_bus.subscribe("run_2") as followed:
            on.worker_bus.publish(_run("run_1"))
            await on.worker_bus.flush()
            await _until(lambda: _value(metrics, "flowloom_runs_started_total") == 1)
            assert decoded == [], "nobody here follows run_1"
            on.worker_bus.publish(_run("run_2"))
            got = [await asyncio.wait_for(anext(followed), 5) for _ in range(5)]

    assert [event.type for event in got] == [event.type for event in _run("run_2")]
    assert got[2].data["outputs"] == {"x": 1}
    assert set(decoded) == {"run_2"}
    assert _value(metrics, "flowloom_runs_started_total") == 2


async def test_a_waiter_wakes_on_the_digest_of_its_run_and_on_lost_events() -> None:
    async with feed_on_redis() as (on, _):
        with on.feed.settling("run_1") as settling, on.feed.settling("run_9") as other:
            on.worker_bus.publish([Event("node.succeeded", "run_1", "a", AT)])
            on.worker_bus.publish([Event("run.waiting", "run_1", None, AT)])
            assert await asyncio.wait_for(settling.next(), 5) == "run.waiting"
            on.worker_bus.publish(_run("run_1"))
            assert await asyncio.wait_for(settling.next(), 5) == "run.failed"
            assert on.api_bus.watched_runs() == [], "a waiter is no follower of the bus"
            await on.redis.publish(channel(on.namespace), "not events")
            assert await asyncio.wait_for(settling.next(), 5) == DROPPED
            assert await asyncio.wait_for(other.next(), 5) == DROPPED
        assert on.feed._waiters == {}, "a waiter that left is forgotten"


async def test_events_from_an_earlier_version_still_count_and_wake() -> None:
    async with feed_on_redis() as (on, metrics):
        with on.feed.settling("run_1") as settling:
            old = json.dumps([event.to_json() for event in _run("run_1")])
            await on.redis.publish(channel(on.namespace), old)
            assert await asyncio.wait_for(settling.next(), 5) == "run.failed"
        generation = on.feed.generation
        assert not on.feed.quiet_since("run_1", generation)

    assert _value(metrics, "flowloom_runs_started_total") == 1
    assert _value(metrics, "flowloom_runs_finished_total", {"status": "FAILED"}) == 1


async def test_streamed_text_reaches_the_bus_whoever_follows_and_goes_with_its_node() -> None:
    pieces = [
        Event(DELTA, "run_1", "a", AT, {"text": "Hel", "offset": 0, "attempt": 1}),
        Event(DELTA, "run_1", "a", AT, {"text": "lo", "offset": 3, "attempt": 1}),
    ]
    assert digest(pieces) == [[0, "run_1"], [3, "run_1"]], "once a message"
    async with feed_on_redis() as (on, _):
        on.worker_bus.publish([Event("node.started", "run_1", "a", AT, {"attempt": 1})])
        for piece in pieces:
            on.worker_bus.publish([piece])
        await _until(lambda: on.api_bus.texts.text("run_1", "a") == ("Hello", 1))
        assert not on.api_bus.follows(["run_1"]), "kept for a reader who may come"

        on.worker_bus.publish(_run("run_1")[2:3])  # the node's end, with no text in it
        await _until(lambda: not on.api_bus.texts.holds_any(["run_1"]))
