"""Lease renewal with a short lease: a long node keeps its claim; a lost claim writes nothing."""

from __future__ import annotations

import asyncio
import time

from enginekit import definition, make_owner, node, node_rows, registry, save_workflow
from sqlalchemy import update

from flowloom.engine import Engine
from flowloom.storage.database import Database
from flowloom.storage.enums import NodeStatus, RunStatus
from flowloom.storage.tables import NodeExecution

LEASE_S = 0.4


async def wait_until_running(db: Database, run_id: str, node_id: str) -> NodeExecution:
    for _ in range(200):
        row = (await node_rows(db, run_id))[node_id]
        if row.status == NodeStatus.RUNNING:
            return row
        await asyncio.sleep(0.01)
    raise AssertionError(f"{node_id} never started")


async def test_a_node_running_six_leases_long_keeps_its_lease(db: Database) -> None:
    engine = Engine(db, registry(), lease_s=LEASE_S)
    other = Engine(db, registry(), lease_s=LEASE_S)
    try:
        owner = await make_owner(db)
        # Six leases long: the check comes after two, past the first lease's end, with four
        # to spare before the node ends (a loaded machine may stall the test's own sleep).
        graph = definition([node("slow", "test.sleep", {"seconds": 6 * LEASE_S})], [])
        workflow_id = await save_workflow(db, owner, graph)
        run_id = await engine.start_run(owner_id=owner, workflow_id=workflow_id)
        first = await wait_until_running(db, run_id, "slow")

        await asyncio.sleep(2 * LEASE_S)
        row = (await node_rows(db, run_id))["slow"]
        assert row.status == NodeStatus.RUNNING, "still running: the check came in time"
        assert row.lease_expires_at > first.lease_expires_at, "the lease was renewed"
        assert await other.resume_unfinished() == [], "a renewed lease is not taken over"

        result = await engine.wait(run_id)
        assert result.status is RunStatus.COMPLETED
        row = (await node_rows(db, run_id))["slow"]
        assert row.attempt == 1
        assert [a["status"] for a in row.attempts] == ["SUCCEEDED"]
    finally:
        await other.close()
        await engine.close()


async def test_a_node_whose_lease_was_taken_is_abandoned_and_its_result_never_written(
    db: Database,
) -> None:
    engine = Engine(db, registry(), lease_s=LEASE_S)
    try:
        owner = await make_owner(db)
        graph = definition([node("slow", "test.sleep", {"seconds": 4 * LEASE_S})], [])
        workflow_id = await save_workflow(db, owner, graph)
        run_id = await engine.start_run(owner_id=owner, workflow_id=workflow_id)
        row = await wait_until_running(db, run_id, "slow")
        # Another worker takes the node over, as after a sweep of an expired lease.
        async with db.write() as session:
            await session.execute(
                update(NodeExecution)
                .where(NodeExecution.id == row.id)
                .values(lease_owner="elsewhere:1:beef", attempt=2)
            )

        began = time.perf_counter()
        result = await asyncio.wait_for(engine.wait(run_id), timeout=4 * LEASE_S)
        assert time.perf_counter() - began < 3 * LEASE_S, "abandoned before the node finished"
        assert result.status is RunStatus.RUNNING, "this engine stopped driving the run"
        assert run_id not in engine.driven()

        await asyncio.sleep(4 * LEASE_S)
        row = (await node_rows(db, run_id))["slow"]
        assert (row.status, row.attempt, row.lease_owner) == (
            NodeStatus.RUNNING,
            2,
            "elsewhere:1:beef",
        )
        assert row.outputs is None
        assert row.attempts == []
    finally:
        await engine.close()
