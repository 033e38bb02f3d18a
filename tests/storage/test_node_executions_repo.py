"""NodeExecutionRepo on SQLite and PostgreSQL: claims, lease fencing, fan-in release, caching."""

from __future__ import annotations

from datetime import timedelta

import pytest

from flowloom.exceptions import InputError, NotFound
from flowloom.ids import new_id
from flowloom.storage.database import Database
from flowloom.storage.enums import NodeStatus, RunStatus
from flowloom.storage.repos.node_executions import NodeExecutionRepo
from flowloom.storage.repos.runs import NodeSpec, RunRepo
from flowloom.storage.tables import NodeExecution, User, Workflow

DEFINITION = {"schema_version": 1, "nodes": [], "edges": []}

# load -> (crop, resize) -> join: join has two parents.
DIAMOND = [
    NodeSpec("load", "image.load", 0),
    NodeSpec("crop", "image.crop", 1),
    NodeSpec("resize", "image.resize", 1),
    NodeSpec("join", "text.join", 2),
]


async def make_run(db: Database, workflow_id: str | None = None) -> tuple[str, str]:
    """A fresh run (and, unless given, a fresh user and workflow) with the diamond's nodes."""
    async with db.write() as s:
        if workflow_id is None:
            user_id, workflow_id = new_id("usr"), new_id("wf")
            s.add(User(id=user_id, email=f"{user_id}@example.com"))
            await s.flush()
            s.add(Workflow(id=workflow_id, user_id=user_id, name="w", definition=DEFINITION))
            await s.flush()
        else:
            workflow = await s.get(Workflow, workflow_id)
            assert workflow is not None
            user_id = workflow.user_id
        runs = RunRepo(s, owner_id=user_id)
        run = await runs.create(workflow_id=workflow_id, workflow_version=1)
        await runs.add_node_executions(run_id=run.id, nodes=DIAMOND)
        await runs.set_status(run_id=run.id, status=RunStatus.RUNNING)
        return run.id, workflow_id


async def node(db: Database, run_id: str, node_id: str) -> NodeExecution:
    async with db.read() as s:
        return await NodeExecutionRepo(s).get(run_id=run_id, node_id=node_id)


async def claim(db: Database, run_id: str, node_id: str, attempt: int = 1) -> bool:
    async with db.write() as s:
        return await NodeExecutionRepo(s).mark_running(
            run_id=run_id, node_id=node_id, attempt=attempt, lease_owner="worker-1", lease_s=30
        )


async def finish(db: Database, run_id: str, node_id: str, attempt: int = 1, **kw: object) -> bool:
    async with db.write() as s:
        return await NodeExecutionRepo(s).finish(
            run_id=run_id,
            node_id=node_id,
            attempt=attempt,
            status=kw.pop("status", NodeStatus.SUCCEEDED),  # type: ignore[arg-type]
            **kw,  # type: ignore[arg-type]
        )


async def test_claim_only_a_ready_node_at_its_attempt(db: Database) -> None:
    run_id, _ = await make_run(db)

    assert not await claim(db, run_id, "crop")  # PENDING: a parent is unfinished
    assert not await claim(db, run_id, "load", attempt=2)  # wrong attempt
    assert await claim(db, run_id, "load")
    assert not await claim(db, run_id, "load")  # a duplicate delivery finds it taken

    load = await node(db, run_id, "load")
    assert load.status == NodeStatus.RUNNING
    assert load.lease_owner == "worker-1"
    assert load.started_at is not None
    assert load.lease_expires_at is not None
    assert load.lease_expires_at - load.started_at == timedelta(seconds=30)


async def test_finish_writes_outputs_timing_and_attempt_record(db: Database) -> None:
    run_id, _ = await make_run(db)
    await claim(db, run_id, "load")

    assert await finish(db, run_id, "load", outputs={"image": {"artifact_id": "art_1"}})

    load = await node(db, run_id, "load")
    assert load.status == NodeStatus.SUCCEEDED
    assert load.outputs == {"image": {"artifact_id": "art_1"}}
    assert (load.lease_owner, load.lease_expires_at) == (None, None)
    assert load.finished_at is not None
    assert load.started_at is not None
    assert load.duration_ms is not None
    assert load.duration_ms >= 0
    assert len(load.attempts) == 1
    assert load.attempts[0]["attempt"] == 1
    assert load.attempts[0]["status"] == "SUCCEEDED"
    assert load.attempts[0]["duration_ms"] == load.duration_ms


async def test_a_stale_attempt_cannot_finish(db: Database) -> None:
    run_id, _ = await make_run(db)
    await claim(db, run_id, "load")
    # The lease sweep gave up on attempt 1 and re-queued the node as attempt 2.
    async with db.write() as s:
        row = await NodeExecutionRepo(s).get(run_id=run_id, node_id="load")
        row.status, row.attempt = NodeStatus.READY, 2
    await claim(db, run_id, "load", attempt=2)

    assert not await finish(db, run_id, "load", attempt=1, outputs={"late": True})
    load = await node(db, run_id, "load")
    assert (load.status, load.outputs, load.attempts) == (NodeStatus.RUNNING, None, [])

    assert await finish(db, run_id, "load", attempt=2, outputs={"fresh": True})
    assert not await finish(db, run_id, "load", attempt=2, outputs={"twice": True})
    load = await node(db, run_id, "load")
    assert load.outputs == {"fresh": True}
    assert [a["attempt"] for a in load.attempts] == [2]


async def test_finish_refuses_statuses_that_do_not_end_an_attempt(db: Database) -> None:
    run_id, _ = await make_run(db)
    await claim(db, run_id, "load")
    for status in (NodeStatus.RUNNING, NodeStatus.READY, "DONE"):
        with pytest.raises(InputError):
            await finish(db, run_id, "load", status=status)
    assert (await node(db, run_id, "load")).status == NodeStatus.RUNNING


async def test_release_children_makes_ready_only_at_zero(db: Database) -> None:
    run_id, _ = await make_run(db)

    async with db.write() as s:
        first = await NodeExecutionRepo(s).release_children(
            run_id=run_id, child_node_ids=["crop", "resize"]
        )
    assert first == ["crop", "resize"]

    async with db.write() as s:
        one_parent_done = await NodeExecutionRepo(s).release_children(
            run_id=run_id, child_node_ids=["join"]
        )
    join = await node(db, run_id, "join")
    assert one_parent_done == []
    assert (join.status, join.pending_parents) == (NodeStatus.PENDING, 1)

    async with db.write() as s:
        both_done = await NodeExecutionRepo(s).release_children(
            run_id=run_id, child_node_ids=["join"]
        )
    join = await node(db, run_id, "join")
    assert both_done == ["join"]
    assert (join.status, join.pending_parents) == (NodeStatus.READY, 0)

    async with db.write() as s:
        again = await NodeExecutionRepo(s).release_children(run_id=run_id, child_node_ids=["join"])
    assert again == []
    assert (await node(db, run_id, "join")).pending_parents == 0


async def test_release_leaves_skipped_children_alone(db: Database) -> None:
    run_id, _ = await make_run(db)
    async with db.write() as s:
        row = await NodeExecutionRepo(s).get(run_id=run_id, node_id="crop")
        row.status = NodeStatus.SKIPPED
    async with db.write() as s:
        ready = await NodeExecutionRepo(s).release_children(
            run_id=run_id, child_node_ids=["crop", "resize"]
        )
    assert ready == ["resize"]
    crop = await node(db, run_id, "crop")
    assert (crop.status, crop.pending_parents) == (NodeStatus.SKIPPED, 1)


async def test_latest_success_outputs_of_a_workflows_node(db: Database) -> None:
    old_run, wf = await make_run(db)
    new_run, _ = await make_run(db, wf)
    failed_run, _ = await make_run(db, wf)
    for run_id, value, status in (
        (old_run, 1, NodeStatus.SUCCEEDED),
        (new_run, 2, NodeStatus.SUCCEEDED),
        (failed_run, 3, NodeStatus.FAILED),
    ):
        await claim(db, run_id, "load")
        await finish(db, run_id, "load", outputs={"n": value}, status=status)
    _other_run, other_wf = await make_run(db)

    async with db.read() as s:
        repo = NodeExecutionRepo(s)
        assert await repo.latest_success_outputs(workflow_id=wf, node_id="load") == {"n": 2}
        assert await repo.latest_success_outputs(workflow_id=wf, node_id="crop") is None
        assert await repo.latest_success_outputs(workflow_id=other_wf, node_id="load") is None


async def test_find_cached_returns_the_newest_success_with_the_signature(db: Database) -> None:
    signature = new_id("sig")[-26:].rjust(64, "0")
    runs = [(await make_run(db))[0] for _ in range(3)]
    for run_id, status in zip(
        runs, (NodeStatus.SUCCEEDED, NodeStatus.SUCCEEDED, NodeStatus.FAILED), strict=True
    ):
        async with db.write() as s:
            row = await NodeExecutionRepo(s).get(run_id=run_id, node_id="load")
            row.cache_signature = signature
        await claim(db, run_id, "load")
        await finish(db, run_id, "load", status=status, outputs={"run": run_id})

    async with db.read() as s:
        hit = await NodeExecutionRepo(s).find_cached(cache_signature=signature)
        miss = await NodeExecutionRepo(s).find_cached(cache_signature="0" * 64)
    assert hit is not None
    assert hit.outputs == {"run": runs[1]}
    assert miss is None


async def test_get_of_a_missing_node_is_not_found(db: Database) -> None:
    run_id, _ = await make_run(db)
    async with db.read() as s:
        with pytest.raises(NotFound):
            await NodeExecutionRepo(s).get(run_id=run_id, node_id="nope")
