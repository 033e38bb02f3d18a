"""Whole runs on SQLite and PostgreSQL: outputs, node rows, concurrency, branch skipping."""

from __future__ import annotations

import time

from enginekit import (
    chain,
    definition,
    edge,
    make_owner,
    node,
    node_rows,
    run_graph,
    save_workflow,
)
from sqlalchemy import func, select

from flowloom.engine import Engine
from flowloom.engine.plans import PlanCache
from flowloom.storage.database import Database
from flowloom.storage.enums import NodeStatus, RunStatus
from flowloom.storage.tables import WorkflowRun


async def test_a_chain_adds_up_and_every_row_is_checkpointed(engine: Engine, db: Database) -> None:
    result = await run_graph(engine, db, chain(10), use_cache=False)

    assert result.status is RunStatus.COMPLETED
    assert result.outputs == {"n10": {"value": 10}}
    rows = await node_rows(db, result.run_id)
    assert {row.status for row in rows.values()} == {NodeStatus.SUCCEEDED}
    for row in rows.values():
        assert row.started_at is not None
        assert row.finished_at is not None
        assert row.started_at <= row.finished_at
        assert row.duration_ms is not None
        assert row.lease_owner is None
        assert [a["status"] for a in row.attempts] == ["SUCCEEDED"]
    # Each node started only after its parent finished.
    for i in range(1, 10):
        assert rows[f"n{i}"].finished_at <= rows[f"n{i + 1}"].started_at


async def test_a_diamond_joins_both_sides_in_edge_order(engine: Engine, db: Database) -> None:
    graph = definition(
        [
            node("top", "test.add", {"amount": 1}),
            node("left", "test.add", {"amount": 10}),
            node("right", "test.add", {"amount": 100}),
            node("join", "test.sum"),
        ],
        [
            edge("top", "left"),
            edge("top", "right"),
            edge("right", "join", target_handle="values"),
            edge("left", "join", target_handle="values"),
        ],
    )
    result = await run_graph(engine, db, graph)

    assert result.status is RunStatus.COMPLETED
    assert result.outputs == {"join": {"value": 11 + 101, "count": 2}}
    rows = await node_rows(db, result.run_id)
    assert rows["join"].inputs == {"values": [101, 11]}, "list ports join in edge order"


async def test_twenty_branches_of_a_fifth_of_a_second_run_at_once(
    engine: Engine, db: Database
) -> None:
    branches = [node(f"b{i}", "test.sleep", {"seconds": 0.2}) for i in range(20)]
    graph = definition(
        [node("start", "test.add", {"amount": 1}), *branches, node("join", "test.sum")],
        [edge("start", f"b{i}") for i in range(20)]
        + [edge(f"b{i}", "join", target_handle="values") for i in range(20)],
    )
    owner = await make_owner(db)
    workflow_id = await save_workflow(db, owner, graph)

    began = time.perf_counter()
    result = await engine.run_to_end(owner_id=owner, workflow_id=workflow_id)
    wall_s = time.perf_counter() - began

    assert result.status is RunStatus.COMPLETED
    assert result.outputs == {"join": {"value": 20, "count": 20}}
    # One after another is 4 s; the margin absorbs a loaded machine pausing the process.
    assert wall_s < 3.0, f"20 x 0.2 s took {wall_s:.2f} s: branches did not overlap"


async def test_an_untaken_branch_is_skipped_transitively_and_the_merge_still_runs(
    engine: Engine, db: Database
) -> None:
    graph = definition(
        [
            node("start", "test.add", {"amount": 5}),
            node("check", "flow.condition", {"operator": "gt", "operand": 3}),
            node("big", "test.add", {"amount": 100}),
            node("big2", "test.add", {"amount": 1000}),
            node("small", "test.add", {"amount": -100}),
            node("small2", "test.add", {"amount": -1000}),
            node("merge", "flow.merge", {"mode": "first"}),
        ],
        [
            edge("start", "check"),
            edge("check", "big", source_handle="true"),
            edge("big", "big2"),
            edge("check", "small", source_handle="false"),
            edge("small", "small2"),
            edge("big2", "merge", target_handle="values"),
            edge("small2", "merge", target_handle="values"),
        ],
    )
    result = await run_graph(engine, db, graph)

    assert result.status is RunStatus.COMPLETED
    assert result.outputs == {"merge": {"values": 1105}}
    rows = await node_rows(db, result.run_id)
    assert rows["small"].status == NodeStatus.SKIPPED
    assert rows["small2"].status == NodeStatus.SKIPPED
    assert rows["big2"].status == NodeStatus.SUCCEEDED
    assert rows["merge"].status == NodeStatus.SUCCEEDED


async def test_a_node_fed_only_by_a_skipped_branch_after_a_merge_is_skipped_too(
    engine: Engine, db: Database
) -> None:
    graph = definition(
        [
            node("start", "test.add", {"amount": 1}),
            node("check", "flow.condition", {"operator": "gt", "operand": 3}),
            node("a", "test.add"),
            node("b", "test.add"),
        ],
        [
            edge("start", "check"),
            edge("check", "a", source_handle="true"),
            edge("a", "b"),
        ],
    )
    result = await run_graph(engine, db, graph)

    assert result.status is RunStatus.COMPLETED
    rows = await node_rows(db, result.run_id)
    assert rows["a"].status == NodeStatus.SKIPPED
    assert rows["b"].status == NodeStatus.SKIPPED
    assert result.outputs == {}, "skipped sinks contribute no outputs"


async def test_the_outcome_waited_for_is_the_outcome_stored(engine: Engine, db: Database) -> None:
    # Waiting for a run returns its outcome from memory, once committed: exactly what the
    # database gives back, for a run that completed and for one that failed.
    completed = await run_graph(engine, db, chain(3, "test.pure_add"), use_cache=False)
    failed = await run_graph(
        engine, db, definition([node("f", "test.flaky", {"how": "fatal"})], []), use_cache=False
    )

    assert completed.status is RunStatus.COMPLETED
    assert failed.status is RunStatus.FAILED
    assert failed.error is not None
    assert failed.error["node_id"] == "f"
    for result in (completed, failed):
        assert result == await engine.store.outcome(result.run_id)


async def test_a_run_starts_with_a_plan_cache_that_keeps_nothing(
    engine: Engine, db: Database
) -> None:
    # The start's transaction finds no plan made, rolls back, makes the plan and goes again:
    # with the plan it made, even when the cache did not keep it.
    engine.plans = PlanCache(engine.registry, size=0)
    owner = await make_owner(db)
    workflow = await save_workflow(db, owner, chain(3))
    result = await engine.run_to_end(owner_id=owner, workflow_id=workflow, use_cache=False)

    assert result.status is RunStatus.COMPLETED
    assert result.outputs == {"n3": {"value": 3}}
    rows = await node_rows(db, result.run_id)
    assert sorted(rows) == ["n1", "n2", "n3"]
    async with db.read() as session:
        runs = await session.scalar(
            select(func.count()).select_from(WorkflowRun).where(WorkflowRun.user_id == owner)
        )
    assert runs == 1
