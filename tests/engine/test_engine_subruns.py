"""workflow.call through the engine, on SQLite and PostgreSQL: real child runs, linked to
their parent, failing, cancelled with it, and stopped when a workflow calls itself."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from enginekit import (
    definition,
    edge,
    make_owner,
    node,
    node_rows,
    registry,
    save_workflow,
    update_workflow,
)
from sqlalchemy import select

from flowloom.engine import Engine
from flowloom.storage.database import Database
from flowloom.storage.enums import NodeStatus, RunStatus, TriggerKind
from flowloom.storage.tables import WorkflowRun


@pytest.fixture
async def engine(db: Database) -> AsyncIterator[Engine]:
    engine = Engine(db, registry(), max_subrun_depth=3)
    yield engine
    await engine.close()


def child_graph(*, sleep_s: float = 0.0) -> dict[str, Any]:
    """n (default 0) -> sleep -> n + 1."""
    nodes = [
        node("t", "trigger.manual", {"fields": [{"name": "n", "type": "number", "default": 0}]}),
        node("pause", "test.sleep", {"seconds": sleep_s}),
        node("add", "test.add", {"amount": 1}),
    ]
    edges = [edge("t", "pause", source_handle="n"), edge("pause", "add")]
    return definition(nodes, edges)


def call(workflow_id: str, **config: Any) -> dict[str, Any]:
    return node("call", "workflow.call", {"workflow_id": workflow_id, **config})


async def children_of(db: Database, run_id: str) -> list[WorkflowRun]:
    async with db.read() as session:
        found = await session.scalars(
            select(WorkflowRun).where(WorkflowRun.parent_run_id == run_id).order_by(WorkflowRun.id)
        )
        return list(found)


async def test_a_call_runs_the_child_as_a_linked_sub_run(engine: Engine, db: Database) -> None:
    owner = await make_owner(db)
    child = await save_workflow(db, owner, child_graph())
    parent = await save_workflow(db, owner, definition([call(child, inputs={"n": 41})], []))

    result = await engine.run_to_end(owner_id=owner, workflow_id=parent)

    assert result.status is RunStatus.COMPLETED
    assert result.outputs == {"call": {"outputs": {"add": {"value": 42}}}}
    (sub,) = await children_of(db, result.run_id)
    assert sub.workflow_id == child
    assert sub.user_id == owner
    assert sub.parent_node_id == "call"
    assert sub.trigger_kind == TriggerKind.SUBWORKFLOW
    assert sub.status == RunStatus.COMPLETED
    assert sub.inputs == {"n": 41}


@pytest.mark.parametrize("reference", ["Add One", "add_one", "ADD one"])
async def test_a_child_named_by_reference_is_found_among_the_owners_workflows(
    engine: Engine, db: Database, reference: str
) -> None:
    owner = await make_owner(db)
    stranger = await make_owner(db)
    await save_workflow(db, stranger, child_graph(), name="Add one")
    child = await save_workflow(db, owner, child_graph(), name="Add one")
    called = node("call", "workflow.call", {"workflow_name": reference, "inputs": {"n": 1}})
    parent = await save_workflow(db, owner, definition([called], []))

    result = await engine.run_to_end(owner_id=owner, workflow_id=parent)

    assert result.status is RunStatus.COMPLETED, result.error
    (sub,) = await children_of(db, result.run_id)
    assert sub.workflow_id == child, "the owner's own workflow, never another user's"


async def test_a_name_that_matches_no_workflow_fails_the_node_naming_it(
    engine: Engine, db: Database
) -> None:
    owner = await make_owner(db)
    stranger = await make_owner(db)
    await save_workflow(db, stranger, child_graph(), name="theirs")
    called = node("call", "workflow.call", {"workflow_name": "theirs"})
    parent = await save_workflow(db, owner, definition([called], []))

    result = await engine.run_to_end(owner_id=owner, workflow_id=parent)

    assert result.status is RunStatus.FAILED
    rows = await node_rows(db, result.run_id)
    assert "no workflow named 'theirs'" in rows["call"].error["message"]


async def test_for_each_runs_one_child_per_item_in_item_order(engine: Engine, db: Database) -> None:
    owner = await make_owner(db)
    child = await save_workflow(db, owner, child_graph(sleep_s=0.05))
    graph = definition(
        [
            call(
                child,
                for_each=True,
                concurrency=2,
                input_mapping={"n": "item"},
                items=[5, 1, 9, 3, 7],
            )
        ],
        [],
    )
    parent = await save_workflow(db, owner, graph)

    result = await engine.run_to_end(owner_id=owner, workflow_id=parent)

    assert result.status is RunStatus.COMPLETED
    outputs = result.outputs["call"]["outputs"]
    assert [out["add"]["value"] for out in outputs] == [6, 2, 10, 4, 8]
    assert len(await children_of(db, result.run_id)) == 5


async def test_a_failing_child_fails_the_node_with_the_childs_error(
    engine: Engine, db: Database
) -> None:
    owner = await make_owner(db)
    child = await save_workflow(
        db, owner, definition([node("boom", "test.flaky", {"failures": 9, "how": "fatal"})], [])
    )
    parent = await save_workflow(db, owner, definition([call(child)], []))

    result = await engine.run_to_end(owner_id=owner, workflow_id=parent)

    assert result.status is RunStatus.FAILED
    row = (await node_rows(db, result.run_id))["call"]
    assert row.status == NodeStatus.FAILED
    assert "flaky failure 1" in row.error["message"]
    assert "node 'boom' failed" in row.error["message"]
    (sub,) = await children_of(db, result.run_id)
    assert sub.status == RunStatus.FAILED


async def test_an_unknown_workflow_fails_the_node_clearly(engine: Engine, db: Database) -> None:
    owner = await make_owner(db)
    other = await make_owner(db)
    theirs = await save_workflow(db, other, child_graph())
    parent = await save_workflow(db, owner, definition([call(theirs)], []))

    result = await engine.run_to_end(owner_id=owner, workflow_id=parent)

    assert result.status is RunStatus.FAILED
    assert result.error is not None
    assert f"workflow {theirs!r} not found" in result.error["message"]


async def test_cancelling_the_parent_cancels_the_child(engine: Engine, db: Database) -> None:
    owner = await make_owner(db)
    child = await save_workflow(db, owner, child_graph(sleep_s=5))
    parent = await save_workflow(db, owner, definition([call(child)], []))
    run_id = await engine.start_run(owner_id=owner, workflow_id=parent)
    for _ in range(100):
        subs = await children_of(db, run_id)
        if subs and (await node_rows(db, subs[0].id))["pause"].status == NodeStatus.RUNNING:
            break
        await asyncio.sleep(0.02)

    await engine.cancel(run_id)

    assert (await engine.wait(run_id)).status is RunStatus.CANCELLED
    (sub,) = await children_of(db, run_id)
    assert (await engine.wait(sub.id)).status is RunStatus.CANCELLED
    assert (await node_rows(db, sub.id))["pause"].status == NodeStatus.CANCELLED


async def test_a_workflow_calling_itself_fails_at_the_depth_limit(
    engine: Engine, db: Database
) -> None:
    owner = await make_owner(db)
    workflow_id = await save_workflow(db, owner, child_graph())
    await update_workflow(db, owner, workflow_id, definition([call(workflow_id)], []))

    result = await asyncio.wait_for(
        engine.run_to_end(owner_id=owner, workflow_id=workflow_id), timeout=30
    )

    assert result.status is RunStatus.FAILED
    assert result.error is not None
    assert "over the limit of 3" in result.error["message"]
    assert f"does workflow {workflow_id!r} call itself?" in result.error["message"]
    levels = 0
    run_id = result.run_id
    while subs := await children_of(db, run_id):
        (sub,) = subs
        assert sub.status == RunStatus.FAILED
        levels += 1
        run_id = sub.id
    assert levels == 3, "the root and three nested levels ran, the fourth was refused"


async def test_nested_calls_finish_under_a_global_limit_of_one(db: Database) -> None:
    # The calling nodes lend their slot back while they wait; otherwise this deadlocks.
    engine = Engine(db, registry(), concurrency=1)
    try:
        owner = await make_owner(db)
        leaf = await save_workflow(db, owner, child_graph())
        middle = await save_workflow(
            db, owner, definition([call(leaf, for_each=True, items=[1, 2, 3])], [])
        )
        top = await save_workflow(db, owner, definition([call(middle)], []))

        result = await asyncio.wait_for(
            engine.run_to_end(owner_id=owner, workflow_id=top), timeout=20
        )

        assert result.status is RunStatus.COMPLETED
        values = result.outputs["call"]["outputs"]["call"]["outputs"]
        assert [item["add"]["value"] for item in values] == [1, 1, 1], "n defaults to 0"
    finally:
        await engine.close()


async def test_after_a_restart_the_rerun_node_cancels_the_child_of_its_lost_attempt(
    db: Database,
) -> None:
    owner = await make_owner(db)
    child = await save_workflow(db, owner, child_graph(sleep_s=1.0))
    parent = await save_workflow(db, owner, definition([call(child, inputs={"n": 1})], []))
    first = Engine(db, registry())
    run_id = await first.start_run(owner_id=owner, workflow_id=parent)
    for _ in range(100):
        if await children_of(db, run_id):
            break
        await asyncio.sleep(0.02)
    await first.close()  # as if the process died: the child is left unfinished

    second = Engine(db, registry())
    try:
        assert run_id in await second.resume_unfinished()
        result = await asyncio.wait_for(second.wait(run_id), timeout=10)
        assert result.status is RunStatus.COMPLETED
        assert result.outputs == {"call": {"outputs": {"add": {"value": 2}}}}
        lost, rerun = await children_of(db, run_id)
        assert (await second.wait(lost.id)).status is RunStatus.CANCELLED
        assert rerun.status == RunStatus.COMPLETED
        assert rerun.parent_attempt == 2
        assert rerun.trigger_data is None, "the engine keeps its fields out of trigger data"
    finally:
        await second.close()
