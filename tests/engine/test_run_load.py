"""What a driver loads of a run (``SqlRunStore.load_run``: on PostgreSQL two prepared
statements on asyncpg, no SQLAlchemy execution) is what SQLAlchemy reads from the same rows:
every slot field, the run's settings and its debug session, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from enginekit import chain, make_owner, registry, save_workflow
from sqlalchemy import select, update

from flowloom.engine.plans import PlanCache
from flowloom.engine.ports import NewRun
from flowloom.engine.run_state import DebugState
from flowloom.engine.sql import SqlRunStore
from flowloom.engine.sql.ticks import load_slots
from flowloom.graph import Scope
from flowloom.ids import PREFIXES, new_id
from flowloom.storage.database import Database
from flowloom.storage.enums import NodeStatus, RunStatus, TriggerKind
from flowloom.storage.tables import DebugSession, NodeExecution, WorkflowRun


def _new_run(owner: str, workflow_id: str) -> NewRun:
    return NewRun(
        owner_id=owner,
        workflow_id=workflow_id,
        version=None,
        scope=Scope.FULL,
        target_node_id=None,
        inputs={"text": "é", "deep": {"a": [1, None]}},
        trigger_kind=TriggerKind.MANUAL,
        trigger_data={},
        idempotency_key=None,
        timeout_s=2.5,
        breakpoints=None,
        use_cache=False,
        parent_run_id=None,
        parent_node_id=None,
        api_key_id=None,
        max_depth=5,
    )


async def test_a_driver_loads_what_the_rows_hold(db: Database) -> None:
    owner = await make_owner(db)
    wf = await save_workflow(db, owner, chain(3))
    store, plans = SqlRunStore(db), PlanCache(registry())
    started = await store.create_run(_new_run(owner, wf), plans)
    run_id = started.run_id
    began = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    nodes = NodeExecution.__table__
    async with db.write() as s:
        await s.execute(
            update(WorkflowRun)
            .where(WorkflowRun.id == run_id)
            .values(status=RunStatus.RUNNING, started_at=began, cancel_requested=True)
        )
        await s.execute(
            update(nodes)
            .where(nodes.c.run_id == run_id, nodes.c.node_id == "n1")
            .values(
                status=NodeStatus.SUCCEEDED,
                attempt=2,
                outputs={"text": "done ✓", "n": 1.5},
                attempts=[{"attempt": 1, "error": {"type": "Timeout"}}],
                inputs={"text": "in"},
                started_at=began,
                finished_at=began + timedelta(milliseconds=250),
                duration_ms=250,
                cache_signature="sig",
                lease_owner="worker-1",
                lease_expires_at=began + timedelta(seconds=30),
            )
        )
        await s.execute(
            update(nodes)
            .where(nodes.c.run_id == run_id, nodes.c.node_id == "n2")
            .values(
                status=NodeStatus.WAITING,
                wait={"kind": "approval", "answer": {"ok": True}},
                retry_at=began + timedelta(seconds=5),
            )
        )
        s.add(
            DebugSession(
                id=new_id(PREFIXES["debug_sessions"]),
                run_id=run_id,
                user_id=owner,
                breakpoints=["n2", "n3"],
                mode="step",
                paused_node_id="n2",
            )
        )

    loaded = await store.load_run(run_id, plans)

    assert loaded.slots == await db.run_read(lambda conn: load_slots(conn, run_id))
    first = loaded.slots["n1"]
    assert (first.outputs, first.started_at, first.duration_ms) == (
        {"text": "done ✓", "n": 1.5},
        began,
        250,
    )
    assert first.started_at is not None
    assert first.started_at.tzinfo is not None
    assert loaded.slots["n2"].wait == {"kind": "approval", "answer": {"ok": True}}
    async with db.read() as s:
        run = (await s.execute(select(WorkflowRun).where(WorkflowRun.id == run_id))).scalar_one()
        session_id = await s.scalar(select(DebugSession.id).where(DebugSession.run_id == run_id))
    assert (loaded.run_id, loaded.workflow_id, loaded.owner_id, loaded.status) == (
        run_id,
        wf,
        owner,
        RunStatus.RUNNING,
    )
    assert loaded.run_inputs == run.inputs == {"text": "é", "deep": {"a": [1, None]}}
    assert (loaded.started_at, loaded.timeout_s, loaded.use_cache, loaded.use_pinned) == (
        began,
        2.5,
        False,
        run.use_pinned,
    )
    assert isinstance(loaded.timeout_s, float)
    assert loaded.cancel_requested is True
    assert loaded.api_key_id is None
    assert loaded.debug == DebugState(
        session_id=session_id,
        breakpoints=frozenset({"n2", "n3"}),
        mode="step",
        paused_node_id="n2",
    )


async def test_the_runs_of_a_task_load_at_once_as_each_alone(db: Database) -> None:
    """``load_runs`` (a worker's load of the runs of one task, one statement) gives each run
    exactly what ``load_run`` gives it: its own node rows, settings and debug session, whatever
    order the ids come in; an id of no run is left out."""
    owner = await make_owner(db)
    long, short = await save_workflow(db, owner, chain(3)), await save_workflow(db, owner, chain(1))
    store, plans = SqlRunStore(db), PlanCache(registry())
    ids = [(await store.create_run(_new_run(owner, w), plans)).run_id for w in (long, short, long)]
    nodes = NodeExecution.__table__
    async with db.write() as s:
        await s.execute(
            update(nodes)
            .where(nodes.c.run_id == ids[2], nodes.c.node_id == "n2")
            .values(status=NodeStatus.SUCCEEDED, outputs={"n": 2}, attempt=3)
        )
        await s.execute(
            update(WorkflowRun).where(WorkflowRun.id == ids[1]).values(status=RunStatus.COMPLETED)
        )
        s.add(
            DebugSession(
                id=new_id(PREFIXES["debug_sessions"]),
                run_id=ids[0],
                user_id=owner,
                breakpoints=["n2"],
                mode="step",
            )
        )
    missing = new_id(PREFIXES["workflow_runs"])

    loaded = await store.load_runs([ids[2], missing, ids[0], ids[1]], plans)

    assert sorted(loaded) == sorted(ids)
    for run_id in ids:
        assert loaded[run_id] == await store.load_run(run_id, plans)
    assert [len(loaded[run_id].slots) for run_id in ids] == [3, 1, 3]
    assert loaded[ids[2]].slots["n2"].outputs == {"n": 2}
    assert loaded[ids[1]].status is RunStatus.COMPLETED
    assert loaded[ids[0]].debug is not None
    assert loaded[ids[2]].debug is None
    assert await store.load_runs([], plans) == {}
    assert await store.load_runs([missing], plans) == {}
