"""Metrics fed from the event bus: every event counted into its own labelled series."""

import asyncio

from flowloom.api.metrics import Metrics
from flowloom.engine import EventBus
from flowloom.engine.events import Event


def _node(kind: str, node_id: str, duration_ms: int) -> Event:
    data = {"node_type": "text.template", "duration_ms": duration_ms}
    return Event(kind, "run_a", node_id, data=data)


def _value(metrics: Metrics, name: str, labels: dict[str, str]) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


async def test_repeated_series_keep_counting_and_new_ones_start() -> None:
    metrics = Metrics()
    bus = EventBus()
    follow = asyncio.create_task(metrics._follow(bus))
    await asyncio.sleep(0)  # subscribed
    events = [
        Event("run.started", "run_a"),
        _node("node.succeeded", "n", 2),
        _node("node.succeeded", "m", 4),
        _node("node.failed", "o", 1),
        Event("run.completed", "run_a", data={"workflow_id": "wf_1", "duration_ms": 10}),
        Event("run.started", "run_b"),
        Event("run.completed", "run_b", data={"workflow_id": "wf_1", "duration_ms": 30}),
        Event("run.failed", "run_c", data={"workflow_id": "wf_2", "duration_ms": 5}),
    ]
    for event in events:
        bus.publish([event])
        await asyncio.sleep(0)
    await asyncio.sleep(0)
    follow.cancel()
    node = {"node_type": "text.template", "outcome": "succeeded"}
    assert _value(metrics, "flowloom_runs_started_total", {}) == 2
    assert _value(metrics, "flowloom_runs_finished_total", {"status": "COMPLETED"}) == 2
    assert _value(metrics, "flowloom_runs_finished_total", {"status": "FAILED"}) == 1
    assert _value(metrics, "flowloom_node_duration_seconds_count", node) == 2
    assert _value(metrics, "flowloom_node_duration_seconds_sum", node) == 0.006
    failed = {"node_type": "text.template", "outcome": "failed"}
    assert _value(metrics, "flowloom_node_duration_seconds_count", failed) == 1
    completed = {"workflow_id": "wf_1", "status": "COMPLETED"}
    assert _value(metrics, "flowloom_run_duration_seconds_count", completed) == 2
    assert _value(metrics, "flowloom_run_duration_seconds_sum", completed) == 0.04
    failed_run = {"workflow_id": "wf_2", "status": "FAILED"}
    assert _value(metrics, "flowloom_run_duration_seconds_count", failed_run) == 1
