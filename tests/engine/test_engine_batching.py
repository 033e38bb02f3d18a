"""Batched ticks (``flowloom/engine/batching.py``): runs of pure nodes commit a few times, not
once per node; a node with effects still starts only on committed results; a crash loses only
pure work, which runs again; the lease fence still guards a batch. SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from crashkit import Place, counted, resume_to_end, run_child
from enginekit import (
    AT_GATE,
    GATES,
    chain,
    definition,
    edge,
    make_owner,
    node,
    node_rows,
    registry,
    save_workflow,
)
from sqlalchemy import select, update

from flowloom.engine import Engine
from flowloom.engine.ports import RunStore, Tick
from flowloom.engine.sql import SqlRunStore
from flowloom.graph.ports import Port, PortType
from flowloom.nodes.base import Category, Node, NodeConfig, NodeResult, RunContext
from flowloom.storage.database import Database
from flowloom.storage.enums import NodeStatus, RunStatus
from flowloom.storage.tables import NodeExecution, WorkflowRun

LONG_WINDOW_S = 60.0
"""A batch window no test run outlasts: every commit a test sees is one the engine had to make."""


class CountingStore:
    """The SQL run store, counting the ticks it commits."""

    def __init__(self, inner: SqlRunStore) -> None:
        self.inner = inner
        self.db = inner.db
        self.ticks: list[Tick] = []

    async def commit(self, tick: Tick) -> bool:
        self.ticks.append(tick)
        return await self.inner.commit(tick)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def counting_engine(db: Database, **options: Any) -> tuple[Engine, CountingStore]:
    store = CountingStore(SqlRunStore(db))
    return Engine(store, registry(), **options), store  # type: ignore[arg-type]


SEEN: dict[str, list[tuple[str, str, int]]] = {}
"""What each ``test.sees_committed`` attempt read of its run's rows: (node, status, attempt)."""
DATABASE: dict[str, Database] = {}


class SeesCommitted(Node[NodeConfig]):
    """Not pure: reads, while it runs, its run's node rows as committed (what a node with
    effects may rely on), then passes ``value`` on."""

    type_name = "test.sees_committed"
    category = Category.ACTION
    deterministic = False

    def inputs(self, config: NodeConfig) -> list[Port]:
        return [Port("value", PortType.NUMBER, required=False, default=0)]

    def outputs(self, config: NodeConfig) -> list[Port]:
        return [Port("value", PortType.NUMBER)]

    async def run(self, ctx: RunContext, config: NodeConfig, inputs: dict[str, Any]) -> NodeResult:
        async with DATABASE["db"].read() as session:
            rows = await session.execute(
                select(NodeExecution.node_id, NodeExecution.status, NodeExecution.attempt).where(
                    NodeExecution.run_id == ctx.run_id
                )
            )
            SEEN[ctx.node_id] = [(n, str(s), a) for n, s, a in rows]
        return NodeResult({"value": inputs["value"]})


async def test_a_chain_of_pure_nodes_commits_at_its_start_and_its_end(db: Database) -> None:
    engine, store = counting_engine(db, batch_window_s=LONG_WINDOW_S)
    try:
        owner = await make_owner(db)
        workflow_id = await save_workflow(db, owner, chain(30, "test.pure_add"))
        result = await engine.run_to_end(owner_id=owner, workflow_id=workflow_id, use_cache=False)
    finally:
        await engine.close()

    assert result.status is RunStatus.COMPLETED
    assert result.outputs == {"n30": {"value": 30}}
    # The run's start (n1 claimed) and its end (every other row, the run COMPLETED).
    assert len(store.ticks) == 2
    assert store.ticks[1].run_values["status"] == RunStatus.COMPLETED.value
    assert len(store.ticks[1].slots) == 30
    rows = await node_rows(db, result.run_id)
    assert {row.status for row in rows.values()} == {NodeStatus.SUCCEEDED}
    assert all(row.attempt == 1 and len(row.attempts) == 1 for row in rows.values())


async def test_without_a_window_every_tick_commits(db: Database) -> None:
    engine, store = counting_engine(db, batch_window_s=0)
    try:
        owner = await make_owner(db)
        workflow_id = await save_workflow(db, owner, chain(5, "test.pure_add"))
        result = await engine.run_to_end(owner_id=owner, workflow_id=workflow_id, use_cache=False)
    finally:
        await engine.close()

    assert result.outputs == {"n5": {"value": 5}}
    assert len(store.ticks) == 6
    # Only the run's end waits for the disk; the ticks on the way need not.
    assert [tick.durable for tick in store.ticks] == [False] * 5 + [True]


async def start_gated_chain(db: Database, engine: Engine) -> str:
    """n1 -> n2 -> n3, all pure, n2 waiting at its gate; the run's id."""
    owner = await make_owner(db)
    graph = chain(3, "test.pure_add")
    graph["nodes"][1]["type"] = "test.pure_gate"
    workflow_id = await save_workflow(db, owner, graph)
    return await engine.start_run(owner_id=owner, workflow_id=workflow_id, use_cache=False)


async def test_a_short_window_still_commits_while_a_pure_node_runs_long(db: Database) -> None:
    engine, store = counting_engine(db, batch_window_s=0.05)
    gate = GATES["n2"] = asyncio.Event()
    try:
        run_id = await start_gated_chain(db, engine)
        # n1 finished and n2 started in a deferred tick: committed once the window is over.
        for _ in range(300):
            rows = await node_rows(db, run_id)
            if rows["n1"].status == NodeStatus.SUCCEEDED:
                break
            await asyncio.sleep(0.01)
        assert rows["n1"].status == NodeStatus.SUCCEEDED
        assert rows["n2"].status == NodeStatus.RUNNING
        gate.set()
        result = await engine.wait(run_id)
    finally:
        GATES.pop("n2", None)
        AT_GATE.discard("n2")
        await engine.close()

    assert result.outputs == {"n3": {"value": 3}}
    assert 3 <= len(store.ticks) < 5


async def test_a_node_with_effects_starts_only_on_committed_results(db: Database) -> None:
    DATABASE["db"] = db
    engine, store = counting_engine(db, batch_window_s=LONG_WINDOW_S)
    engine.registry.register(SeesCommitted)
    try:
        owner = await make_owner(db)
        nodes = [node(f"p{i}", "test.pure_add") for i in range(1, 5)]
        nodes += [node("check", "test.sees_committed"), node("after", "test.pure_add")]
        edges = [edge(f"p{i}", f"p{i + 1}") for i in range(1, 4)]
        edges += [edge("p4", "check"), edge("check", "after")]
        workflow_id = await save_workflow(db, owner, definition(nodes, edges))
        result = await engine.run_to_end(owner_id=owner, workflow_id=workflow_id, use_cache=False)
    finally:
        await engine.close()

    assert result.status is RunStatus.COMPLETED
    assert result.outputs == {"after": {"value": 5}}
    seen = {node_id: (status, attempt) for node_id, status, attempt in SEEN.pop("check")}
    assert seen == {
        **{f"p{i}": ("SUCCEEDED", 1) for i in range(1, 5)},
        "check": ("RUNNING", 1),
        "after": ("PENDING", 1),
    }
    # The start; the pure nodes with check's claim; check's outcome with after's claim; the end.
    assert len(store.ticks) == 4


async def test_a_batch_whose_fenced_row_was_taken_over_writes_nothing(db: Database) -> None:
    engine, store = counting_engine(db, batch_window_s=LONG_WINDOW_S)
    gate = GATES["n2"] = asyncio.Event()
    try:
        run_id = await start_gated_chain(db, engine)
        for _ in range(300):
            if "n2" in AT_GATE:
                break
            await asyncio.sleep(0.01)
        assert "n2" in AT_GATE
        # n1 finished and n2 started in memory only: the database still has n1 RUNNING under
        # this engine's lease. Another engine takes n1 over, as after its lease ran out.
        rows = await node_rows(db, run_id)
        assert (rows["n1"].status, rows["n2"].status) == (NodeStatus.RUNNING, NodeStatus.PENDING)
        async with db.write() as session:
            await session.execute(
                update(NodeExecution)
                .where(NodeExecution.run_id == run_id, NodeExecution.node_id == "n1")
                .values(lease_owner="elsewhere:1:beef", attempt=2)
            )
        gate.set()
        result = await asyncio.wait_for(engine.wait(run_id), timeout=10)
        assert result.status is RunStatus.RUNNING, "this engine stopped driving the run"
        assert run_id not in engine.driven()
    finally:
        GATES.pop("n2", None)
        AT_GATE.discard("n2")
        await engine.close()

    assert len(store.ticks) == 2, "the start, and the refused batch"
    rows = await node_rows(db, run_id)
    assert (rows["n1"].status, rows["n1"].attempt, rows["n1"].lease_owner) == (
        NodeStatus.RUNNING,
        2,
        "elsewhere:1:beef",
    )
    assert rows["n1"].outputs is None
    assert rows["n2"].status == NodeStatus.PENDING
    assert rows["n3"].status == NodeStatus.PENDING


async def test_a_crash_loses_only_pure_work_which_runs_again(place: Place, tmp_path: Path) -> None:
    db = place.db
    owner = await make_owner(db)
    nodes = [node(f"p{i}", "test.pure_add") for i in range(1, 4)] + [node("s", "test.add")]
    edges = [edge("p1", "p2"), edge("p2", "p3"), edge("p3", "s")]
    workflow_id = await save_workflow(db, owner, definition(nodes, edges))
    count_file = tmp_path / "count.txt"
    count_file.touch()

    # Dies committing the batch that claims s: the pure nodes' work was never committed.
    window = {"FLOWLOOM_TEST_BATCH_WINDOW_S": str(LONG_WINDOW_S)}
    run_child(place, owner, workflow_id, count_file, "after_effect_before_commit@1", window)
    async with db.read() as session:
        run = await session.scalar(
            select(WorkflowRun).where(WorkflowRun.workflow_id == workflow_id)
        )
        assert run is not None
        run_id = run.id
    rows = await node_rows(db, run_id)
    assert {n: r.status for n, r in rows.items()} == {
        "p1": NodeStatus.RUNNING,
        "p2": NodeStatus.PENDING,
        "p3": NodeStatus.PENDING,
        "s": NodeStatus.PENDING,
    }

    result = await resume_to_end(db, run_id)

    assert result.status is RunStatus.COMPLETED
    assert result.outputs == {"s": {"value": 4}}
    assert counted(count_file) == {"p1": 2, "p2": 2, "p3": 2, "s": 1}
    rows = await node_rows(db, run_id)
    assert [a["status"] for a in rows["p1"].attempts] == ["INTERRUPTED", "SUCCEEDED"]
    assert all(row.status == NodeStatus.SUCCEEDED for row in rows.values())


def test_a_negative_window_is_refused(tmp_path: Path) -> None:
    store: RunStore = SqlRunStore(Database(f"sqlite:///{tmp_path / 'x.db'}"))
    with pytest.raises(ValueError, match="batch_window_s"):
        Engine(store, registry(), batch_window_s=-1)
