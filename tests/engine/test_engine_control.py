"""Retries, timeouts, cancellation, waits, debug runs and events, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import itertools
from datetime import datetime
from typing import Any

import pytest
from enginekit import (
    CALLS,
    chain,
    definition,
    edge,
    make_owner,
    node,
    node_rows,
    registry,
    run_graph,
    save_workflow,
)
from sqlalchemy import select

from flowloom.engine import Engine, Event
from flowloom.exceptions import Conflict
from flowloom.storage.database import Database
from flowloom.storage.enums import NodeStatus, RunStatus
from flowloom.storage.tables import DebugSession, WorkflowRun


def flaky(node_id: str, *, attempts: int, **config: object) -> dict[str, object]:
    return node(
        node_id,
        "test.flaky",
        dict(config),
        retry={"max_attempts": attempts, "backoff_s": 0.05, "jitter": 0},
    )


async def test_retries_back_off_then_succeed_and_every_attempt_is_recorded(
    engine: Engine, db: Database
) -> None:
    result = await run_graph(engine, db, definition([flaky("f", attempts=3, failures=2)], []))

    assert result.status is RunStatus.COMPLETED
    assert result.outputs == {"f": {"attempt": 3}}
    row = (await node_rows(db, result.run_id))["f"]
    assert row.attempt == 3
    assert [a["status"] for a in row.attempts] == ["RETRYING", "RETRYING", "SUCCEEDED"]
    assert row.attempts[0]["error"]["message"] == "flaky failure 1"
    assert row.idempotency_key == f"{result.run_id}:f", "one key for all three attempts"
    # Backoff 0.05 s then 0.1 s (exponential, no jitter), as the engine's clock recorded it.
    first, second = _gaps_s(row.attempts)
    assert first >= 0.05
    assert second >= 0.1


async def test_retry_node_after_s_is_honoured(engine: Engine, db: Database) -> None:
    graph = definition([flaky("f", attempts=2, failures=1, how="retry_node", after_s=0.3)], [])
    result = await run_graph(engine, db, graph)

    assert result.status is RunStatus.COMPLETED
    row = (await node_rows(db, result.run_id))["f"]
    assert _gaps_s(row.attempts)[0] >= 0.3


async def test_exhausted_retries_fail_the_run_naming_the_node(engine: Engine, db: Database) -> None:
    graph = definition([flaky("f", attempts=2, failures=5), node("after", "test.add")], [])
    graph["edges"] = [edge("f", "after", source_handle="attempt")]
    result = await run_graph(engine, db, graph)

    assert result.status is RunStatus.FAILED
    assert result.error is not None
    assert result.error["node_id"] == "f"
    assert "'f'" in result.error["message"]
    assert "flaky failure 2" in result.error["message"]
    rows = await node_rows(db, result.run_id)
    assert rows["f"].status == NodeStatus.FAILED
    assert len(rows["f"].attempts) == 2
    assert rows["after"].status == NodeStatus.CANCELLED


async def test_a_fatal_error_is_not_retried(engine: Engine, db: Database) -> None:
    CALLS.clear()
    result = await run_graph(
        engine, db, definition([flaky("fatal_one", attempts=5, failures=1, how="fatal")], [])
    )
    assert result.status is RunStatus.FAILED
    assert CALLS["fatal_one"] == 1


async def test_a_node_timeout_fails_the_node_and_cancels_its_siblings(
    engine: Engine, db: Database
) -> None:
    graph = definition(
        [
            node("slow", "test.sleep", {"seconds": 5}, timeout_s=0.2),
            node("sibling", "test.sleep", {"seconds": 5}),
        ],
        [],
    )
    result = await run_graph(engine, db, graph)

    assert result.status is RunStatus.FAILED
    assert result.error is not None
    assert "timed out after 0.2 s" in result.error["message"]
    rows = await node_rows(db, result.run_id)
    # Cut at its timeout, by the engine's clock: nowhere near the 5 s the node asked for.
    assert 0.2 <= rows["slow"].attempts[-1]["duration_ms"] / 1000 < 4
    assert rows["slow"].status == NodeStatus.FAILED
    assert rows["sibling"].status == NodeStatus.CANCELLED


async def test_a_run_timeout_fails_the_run(engine: Engine, db: Database) -> None:
    graph = definition([node("slow", "test.sleep", {"seconds": 5})], [])
    result = await run_graph(engine, db, graph, timeout_s=0.3)

    assert result.status is RunStatus.FAILED
    run = await _run_row(db, result.run_id)
    assert run.duration_ms is not None
    assert 300 <= run.duration_ms < 4000
    assert result.error == {"message": "run timed out after 0.3 s"}
    assert (await node_rows(db, result.run_id))["slow"].status == NodeStatus.CANCELLED


async def test_cancel_while_running(engine: Engine, db: Database) -> None:
    graph = definition(
        [node("slow", "test.sleep", {"seconds": 5}), node("next", "test.add")],
        [edge("slow", "next")],
    )
    owner = await make_owner(db)
    workflow_id = await save_workflow(db, owner, graph)
    run_id = await engine.start_run(owner_id=owner, workflow_id=workflow_id)
    await asyncio.sleep(0.2)

    asked_at = engine.clock.now()
    await engine.cancel(run_id)
    result = await engine.wait(run_id)

    assert result.status is RunStatus.CANCELLED
    run = await _run_row(db, run_id)
    assert run.finished_at is not None
    assert (run.finished_at - asked_at).total_seconds() < 4, "cancelled, not slept out (5 s)"
    rows = await node_rows(db, run_id)
    assert rows["slow"].status == NodeStatus.CANCELLED
    assert rows["next"].status == NodeStatus.CANCELLED
    await engine.cancel(run_id)  # cancelling again is harmless
    completed = await run_graph(engine, db, chain(1))
    with pytest.raises(Conflict):
        await engine.cancel(completed.run_id)


async def test_approval_parks_the_run_with_no_driver_then_the_answer_completes_it(
    engine: Engine, db: Database
) -> None:
    graph = definition(
        [
            node("start", "test.add", {"amount": 41}),
            node("ask", "human.approval", {"prompt": "Ship it?"}),
            node("after", "flow.merge", {"mode": "first"}),
        ],
        [
            edge("start", "ask"),
            edge("ask", "after", source_handle="approved", target_handle="values"),
        ],
    )
    owner = await make_owner(db)
    workflow_id = await save_workflow(db, owner, graph)

    result = await engine.run_to_end(owner_id=owner, workflow_id=workflow_id)

    assert result.status is RunStatus.WAITING
    assert not engine.driven(), "a waiting run holds no driver task"
    row = (await node_rows(db, result.run_id))["ask"]
    assert row.status == NodeStatus.WAITING
    assert row.wait["kind"] == "approval"
    assert row.wait["payload"] == {"prompt": "Ship it?", "value": 41}

    await engine.answer(result.run_id, "ask", {"approved": True, "by": "ada"})
    done = await engine.wait(result.run_id)

    assert done.status is RunStatus.COMPLETED
    rows = await node_rows(db, result.run_id)
    assert rows["ask"].outputs == {"approved": {"approved": True, "by": "ada", "value": 41}}
    assert done.outputs == {"after": {"values": {"approved": True, "by": "ada", "value": 41}}}
    with pytest.raises(Conflict):
        await engine.answer(result.run_id, "ask", {"approved": True})


async def test_breakpoints_pause_before_nodes_and_step_or_continue(
    engine: Engine, db: Database
) -> None:
    owner = await make_owner(db)
    workflow_id = await save_workflow(db, owner, chain(4))

    run_id = await engine.start_run(owner_id=owner, workflow_id=workflow_id, breakpoints=["n2"])
    paused = await engine.wait(run_id)
    assert paused.status is RunStatus.WAITING
    rows = await node_rows(db, run_id)
    assert rows["n1"].status == NodeStatus.SUCCEEDED
    assert rows["n2"].status == NodeStatus.WAITING
    assert rows["n2"].wait["kind"] == "breakpoint"
    async with db.read() as session:
        debug = await session.scalar(select(DebugSession).where(DebugSession.run_id == run_id))
        assert debug is not None
        assert debug.paused_node_id == "n2"

    await engine.answer(run_id, "n2", {"action": "step"})
    assert (await engine.wait(run_id)).status is RunStatus.WAITING
    rows = await node_rows(db, run_id)
    assert rows["n2"].status == NodeStatus.SUCCEEDED
    assert rows["n3"].status == NodeStatus.WAITING, "step mode pauses before the next node"

    await engine.answer(run_id, "n3", {"action": "continue"})
    done = await engine.wait(run_id)
    assert done.status is RunStatus.COMPLETED
    assert done.outputs == {"n4": {"value": 4}}
    async with db.read() as session:
        debug = await session.scalar(
            select(DebugSession)
            .where(DebugSession.run_id == run_id)
            .execution_options(populate_existing=True)
        )
        assert debug is not None
        assert (debug.mode, debug.status, debug.paused_node_id) == ("continue", "finished", None)


async def test_a_long_delay_parks_as_a_timed_wait_and_resumes_by_itself(db: Database) -> None:
    from flowloom.nodes.base import NodeSettings

    engine = Engine(db, registry(), node_settings=NodeSettings(inline_delay_max_s=0.05))
    try:
        graph = definition(
            [
                node("start", "test.add", {"amount": 7}),
                node("wait", "flow.delay", {"seconds": 0.3}),
            ],
            [edge("start", "wait")],
        )
        owner = await make_owner(db)
        workflow_id = await save_workflow(db, owner, graph)
        run_id = await engine.start_run(owner_id=owner, workflow_id=workflow_id)
        assert (await engine.wait(run_id)).status is RunStatus.WAITING
        assert not engine.driven()
        await asyncio.sleep(0.6)
        done = await engine.wait(run_id)
        assert done.status is RunStatus.COMPLETED
        assert done.outputs == {"wait": {"value": 7}}
    finally:
        await engine.close()


async def test_events_arrive_in_a_valid_order(engine: Engine, db: Database) -> None:
    owner = await make_owner(db)
    workflow_id = await save_workflow(db, owner, chain(3))
    seen: list[Event] = []
    with engine.bus.subscribe() as events:
        run_id = await engine.start_run(owner_id=owner, workflow_id=workflow_id, use_cache=False)
        async for event in events:
            seen.append(event)
            if event.type == "run.completed":
                break

    types = [(e.type, e.node_id) for e in seen if e.run_id == run_id]
    assert types[0] == ("run.started", None)
    assert types[-1] == ("run.completed", None)
    for node_id in ("n1", "n2", "n3"):
        assert types.index(("node.started", node_id)) < types.index(("node.succeeded", node_id))
    assert types.index(("node.succeeded", "n1")) < types.index(("node.started", "n2"))


async def test_a_slow_subscriber_loses_the_oldest_events_and_is_told(db: Database) -> None:
    from flowloom.engine import DROPPED, EventBus

    bus = EventBus(max_queued=3)
    with bus.subscribe("run_x") as events:
        bus.publish([Event(f"e{i}", "run_x") for i in range(5)])
        first = await anext(events)
        rest = [await anext(events) for _ in range(3)]
    assert first.type == DROPPED
    assert first.data == {"count": 2}
    assert [e.type for e in rest] == ["e2", "e3", "e4"]


def _gaps_s(attempts: list[dict[str, Any]]) -> list[float]:
    """Seconds between each attempt's end and the next one's start, as the engine recorded."""
    return [
        (
            datetime.fromisoformat(after["started_at"])
            - datetime.fromisoformat(before["finished_at"])
        ).total_seconds()
        for before, after in itertools.pairwise(attempts)
    ]


async def _run_row(db: Database, run_id: str) -> WorkflowRun:
    async with db.read() as session:
        run = await session.get(WorkflowRun, run_id)
    assert run is not None
    return run
