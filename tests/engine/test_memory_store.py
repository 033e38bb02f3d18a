"""The engine end to end on ``MemoryRunStore``: no database anywhere, the same rules.

These run the real scheduler, drivers, lease fence, retries, cache, waits and cancellation
through the ``RunStore`` seam only, and a clock the test controls.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from enginekit import chain, definition, edge, node, registry

from flowloom.engine import Engine
from flowloom.engine.memory_store import MemoryRunStore
from flowloom.engine.ports import Tick
from flowloom.exceptions import NotFound
from flowloom.storage.enums import NodeStatus, RunStatus

OWNER = "usr_memory_owner"


class SteppedClock:
    """A clock that starts at a fixed instant and moves one millisecond each time it is read."""

    def __init__(self, start: datetime) -> None:
        self.at = start
        self.reads = 0

    def now(self) -> datetime:
        self.reads += 1
        self.at += timedelta(milliseconds=1)
        return self.at


@pytest.fixture
def store() -> MemoryRunStore:
    return MemoryRunStore()


@pytest.fixture
async def engine(store: MemoryRunStore) -> Any:
    engine = Engine(store, registry())
    yield engine
    await engine.close()


async def slots(store: MemoryRunStore, engine: Engine, run_id: str) -> dict[str, Any]:
    return (await store.load_run(run_id, engine.plans)).slots


async def test_a_chain_runs_to_the_end_without_a_database(
    engine: Engine, store: MemoryRunStore
) -> None:
    workflow_id = store.add_workflow(owner_id=OWNER, definition=chain(20))
    result = await engine.run_to_end(owner_id=OWNER, workflow_id=workflow_id)

    assert result.status is RunStatus.COMPLETED
    assert result.outputs == {"n20": {"value": 20}}
    rows = await slots(store, engine, result.run_id)
    assert {row.status for row in rows.values()} == {NodeStatus.SUCCEEDED}
    assert all(row.lease_owner is None for row in rows.values())


async def test_retries_are_recorded_and_the_second_run_is_served_from_the_cache(
    engine: Engine, store: MemoryRunStore
) -> None:
    flaky = node(
        "f",
        "test.flaky",
        {"failures": 1},
        retry={"max_attempts": 2, "backoff_s": 0.01, "jitter": 0},
    )
    workflow_id = store.add_workflow(owner_id=OWNER, definition=definition([flaky], []))
    first = await engine.run_to_end(owner_id=OWNER, workflow_id=workflow_id)
    assert first.status is RunStatus.COMPLETED
    row = (await slots(store, engine, first.run_id))["f"]
    assert [a["status"] for a in row.attempts] == ["RETRYING", "SUCCEEDED"]

    adds = store.add_workflow(owner_id=OWNER, definition=chain(3))
    await engine.run_to_end(owner_id=OWNER, workflow_id=adds)
    again = await engine.run_to_end(owner_id=OWNER, workflow_id=adds)
    rows = await slots(store, engine, again.run_id)
    assert {row.status for row in rows.values()} == {NodeStatus.CACHED}
    assert again.outputs == {"n3": {"value": 3}}


async def test_an_approval_waits_and_an_answer_finishes_the_run(
    engine: Engine, store: MemoryRunStore
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
    workflow_id = store.add_workflow(owner_id=OWNER, definition=graph)
    waiting = await engine.run_to_end(owner_id=OWNER, workflow_id=workflow_id)
    assert waiting.status is RunStatus.WAITING
    assert engine.driven() == [], "a waiting run holds no driver"

    await engine.answer(waiting.run_id, "ask", {"approved": True})
    done = await engine.wait(waiting.run_id)
    assert done.status is RunStatus.COMPLETED


async def test_cancelling_a_running_node(engine: Engine, store: MemoryRunStore) -> None:
    graph = definition(
        [node("slow", "test.sleep", {"seconds": 5}), node("next", "test.add")],
        [edge("slow", "next")],
    )
    workflow_id = store.add_workflow(owner_id=OWNER, definition=graph)
    run_id = await engine.start_run(owner_id=OWNER, workflow_id=workflow_id)
    await asyncio.sleep(0.05)
    await engine.cancel(run_id)

    result = await engine.wait(run_id)
    assert result.status is RunStatus.CANCELLED
    rows = await slots(store, engine, run_id)
    assert {rows["slow"].status, rows["next"].status} == {NodeStatus.CANCELLED}


async def test_a_tick_for_a_node_held_by_another_engine_writes_nothing(
    engine: Engine, store: MemoryRunStore
) -> None:
    graph = definition([node("slow", "test.sleep", {"seconds": 5})], [])
    workflow_id = store.add_workflow(owner_id=OWNER, definition=graph)
    run_id = await engine.start_run(owner_id=OWNER, workflow_id=workflow_id)
    await asyncio.sleep(0.05)
    slow = (await slots(store, engine, run_id))["slow"]
    assert slow.status is NodeStatus.RUNNING
    assert slow.lease_owner == engine.owner_token

    slow.status = NodeStatus.SUCCEEDED
    slow.outputs = {"value": "forged"}
    forged = Tick(
        run_id=run_id,
        owner="somebody-else",
        now=datetime.now(UTC),
        slots=[slow],
        fenced={slow.row_id},
        run_values={"status": RunStatus.COMPLETED.value},
    )
    assert await store.commit(forged) is False
    assert (await slots(store, engine, run_id))["slow"].status is NodeStatus.RUNNING
    await engine.cancel(run_id)


async def test_idempotency_and_owner_scoping(engine: Engine, store: MemoryRunStore) -> None:
    workflow_id = store.add_workflow(owner_id=OWNER, definition=chain(2))
    first = await engine.start_run(owner_id=OWNER, workflow_id=workflow_id, idempotency_key="k1")
    again = await engine.start_run(owner_id=OWNER, workflow_id=workflow_id, idempotency_key="k1")
    assert again == first
    with pytest.raises(NotFound):
        await engine.start_run(owner_id="usr_someone_else", workflow_id=workflow_id)
    await engine.wait(first)


async def test_every_time_the_engine_records_comes_from_its_clock(store: MemoryRunStore) -> None:
    start = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    clock = SteppedClock(start)
    engine = Engine(store, registry(), clock=clock)
    try:
        workflow_id = store.add_workflow(owner_id=OWNER, definition=chain(3))
        result = await engine.run_to_end(owner_id=OWNER, workflow_id=workflow_id)
    finally:
        await engine.close()

    assert result.status is RunStatus.COMPLETED
    assert clock.reads > 0
    stored = await store.load_run(result.run_id, engine.plans)
    assert stored.started_at is not None
    assert start < stored.started_at <= clock.at
    for row in stored.slots.values():
        assert row.started_at is not None
        assert row.finished_at is not None
        assert start < row.started_at <= row.finished_at <= clock.at
    assert result.duration_ms is not None
    assert result.duration_ms <= clock.reads
