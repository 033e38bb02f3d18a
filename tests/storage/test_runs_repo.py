"""RunRepo on SQLite and PostgreSQL: creation rules, owner scoping, history pages, statuses."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import update

from flowloom.exceptions import Conflict, InputError, NotFound
from flowloom.ids import new_id
from flowloom.storage.database import Database
from flowloom.storage.enums import NodeStatus, RunScope, RunStatus
from flowloom.storage.repos.runs import (
    NodeSpec,
    RunRepo,
    active_runs_by_status,
    average_successful_duration,
)
from flowloom.storage.tables import User, Workflow, WorkflowRun

DEFINITION = {"schema_version": 1, "nodes": [], "edges": []}


async def make_owner(db: Database, *, workflows: int = 1) -> tuple[str, list[str]]:
    """A fresh user with ``workflows`` workflows (each at version 2)."""
    user_id = new_id("usr")
    workflow_ids = [new_id("wf") for _ in range(workflows)]
    async with db.write() as s:
        s.add(User(id=user_id, email=f"{user_id}@example.com"))
        await s.flush()
        for wf in workflow_ids:
            s.add(Workflow(id=wf, user_id=user_id, name=wf, definition=DEFINITION, version=2))
    return user_id, workflow_ids


async def create_run(db: Database, user_id: str, workflow_id: str, **kwargs: Any) -> str:
    async with db.write() as s:
        run = await RunRepo(s, owner_id=user_id).create(
            workflow_id=workflow_id, workflow_version=1, **kwargs
        )
        return run.id


async def walk(db: Database, user_id: str, **filters: Any) -> list[list[str]]:
    """Every page of the user's history, as lists of run ids."""
    pages: list[list[str]] = []
    cursor: str | None = None
    while True:
        async with db.read() as s:
            page = await RunRepo(s, owner_id=user_id).history(cursor=cursor, **filters)
        pages.append([run.id for run in page.items])
        if page.next_cursor is None:
            return pages
        cursor = page.next_cursor


async def test_history_pages_of_ten_newest_first(db: Database) -> None:
    user, (wf,) = await make_owner(db)
    created = [await create_run(db, user, wf) for _ in range(25)]

    pages = await walk(db, user)

    assert [len(p) for p in pages] == [10, 10, 5]
    assert [run for page in pages for run in page] == created[::-1]


async def test_history_has_no_duplicates_or_gaps_while_runs_arrive(db: Database) -> None:
    user, (wf,) = await make_owner(db)
    before = [await create_run(db, user, wf) for _ in range(30)]

    seen: list[str] = []
    arrived: list[str] = []
    cursor: str | None = None
    while True:
        async with db.read() as s:
            page = await RunRepo(s, owner_id=user).history(cursor=cursor)
        seen.extend(run.id for run in page.items)
        # New runs land between every two fetches; they are newer than the cursor.
        arrived += [await create_run(db, user, wf) for _ in range(3)]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor

    assert seen == before[::-1]
    assert len(set(seen)) == len(seen)
    first_page_now = (await walk(db, user))[0]
    assert first_page_now == (arrived[::-1] + before[::-1])[:10]


async def test_history_of_one_workflow(db: Database) -> None:
    user, (wf_a, wf_b) = await make_owner(db, workflows=2)
    runs_a = [await create_run(db, user, wf_a) for _ in range(12)]
    runs_b = [await create_run(db, user, wf_b) for _ in range(3)]

    assert [r for p in await walk(db, user, workflow_id=wf_a) for r in p] == runs_a[::-1]
    assert await walk(db, user, workflow_id=wf_b) == [runs_b[::-1]]
    assert len([r for p in await walk(db, user) for r in p]) == 15


async def test_history_filtered_by_status(db: Database) -> None:
    user, (wf,) = await make_owner(db)
    runs = [await create_run(db, user, wf) for _ in range(4)]
    async with db.write() as s:
        await s.execute(
            update(WorkflowRun).where(WorkflowRun.id == runs[1]).values(status=RunStatus.RUNNING)
        )

    assert await walk(db, user, status=RunStatus.RUNNING) == [[runs[1]]]
    assert await walk(db, user, status=RunStatus.PENDING) == [[runs[3], runs[2], runs[0]]]


async def test_history_refuses_bad_cursor_and_limit(db: Database) -> None:
    user, _ = await make_owner(db)
    async with db.read() as s:
        repo = RunRepo(s, owner_id=user)
        with pytest.raises(InputError):
            await repo.history(cursor="wf_01jd4y9q6xf3k8r2m5t7v9w0ab")
        with pytest.raises(InputError):
            await repo.history(cursor="run_nonsense")
        with pytest.raises(InputError):
            await repo.history(limit=0)
        with pytest.raises(InputError):
            await repo.history(limit=101)


async def test_another_users_run_is_not_found_and_not_listed(db: Database) -> None:
    alice, (wf_alice,) = await make_owner(db)
    bob, _ = await make_owner(db)
    run = await create_run(db, alice, wf_alice)

    async with db.write() as s:
        bobs = RunRepo(s, owner_id=bob)
        with pytest.raises(NotFound):
            await bobs.get(run_id=run)
        with pytest.raises(NotFound):
            await bobs.get_with_nodes(run_id=run)
        with pytest.raises(NotFound):
            await bobs.add_node_executions(run_id=run, nodes=[NodeSpec("a", "text", 0)])
        assert (await bobs.history()).items == []
        assert (await bobs.history(workflow_id=wf_alice)).items == []

    async with db.read() as s:
        assert (await RunRepo(s, owner_id=alice).get(run_id=run)).status == RunStatus.PENDING


async def test_a_run_of_another_users_or_a_missing_workflow_is_refused(db: Database) -> None:
    alice, (wf_alice,) = await make_owner(db)
    bob, _ = await make_owner(db)
    for workflow_id in (wf_alice, new_id("wf")):
        with pytest.raises(NotFound):
            await create_run(db, bob, workflow_id)
    with pytest.raises(NotFound):
        async with db.write() as s:
            await RunRepo(s, owner_id=alice).create(workflow_id=wf_alice, workflow_version=3)
    async with db.read() as s:
        assert (await RunRepo(s, owner_id=bob).history()).items == []


async def test_no_version_means_the_current_one_and_still_only_the_owners(db: Database) -> None:
    alice, (wf_alice,) = await make_owner(db)
    bob, _ = await make_owner(db)
    async with db.write() as s:
        run = await RunRepo(s, owner_id=alice).create(workflow_id=wf_alice, workflow_version=None)
    assert run.workflow_version == 2
    with pytest.raises(NotFound):
        async with db.write() as s:
            await RunRepo(s, owner_id=bob).create(workflow_id=wf_alice, workflow_version=None)


async def test_scope_and_target_node_must_agree(db: Database) -> None:
    user, (wf,) = await make_owner(db)
    with pytest.raises(InputError):
        await create_run(db, user, wf, scope=RunScope.NODE)
    with pytest.raises(InputError):
        await create_run(db, user, wf, target_node_id="crop")
    run_id = await create_run(db, user, wf, scope=RunScope.NODE, target_node_id="crop")
    async with db.read() as s:
        run = await RunRepo(s, owner_id=user).get(run_id=run_id)
    assert (run.scope, run.target_node_id) == (RunScope.NODE, "crop")


async def test_idempotency_key_returns_the_same_run(db: Database) -> None:
    alice, (wf, other_wf) = await make_owner(db, workflows=2)
    bob, (bobs_wf,) = await make_owner(db)

    first = await create_run(db, alice, wf, idempotency_key="req-1", inputs={"n": 1})
    again = await create_run(db, alice, wf, idempotency_key="req-1", inputs={"n": 2})
    bobs = await create_run(db, bob, bobs_wf, idempotency_key="req-1")

    assert again == first
    assert bobs != first
    assert len([r for p in await walk(db, alice) for r in p]) == 1
    async with db.read() as s:
        assert (await RunRepo(s, owner_id=alice).get(run_id=first)).inputs == {"n": 1}
    with pytest.raises(Conflict):
        await create_run(db, alice, other_wf, idempotency_key="req-1")


async def test_get_with_nodes_returns_checkpoints_in_order(db: Database) -> None:
    user, (wf,) = await make_owner(db)
    run_id = await create_run(db, user, wf)
    async with db.write() as s:
        count = await RunRepo(s, owner_id=user).add_node_executions(
            run_id=run_id,
            nodes=[("load", "image.load", 0), ("crop", "image.crop", 1), ("join", "text.join", 2)],
        )
    assert count == 3
    async with db.read() as s:
        run, nodes = await RunRepo(s, owner_id=user).get_with_nodes(run_id=run_id)
    assert run.id == run_id
    assert [(n.node_id, n.status, n.pending_parents, n.attempt) for n in nodes] == [
        ("load", NodeStatus.READY, 0, 1),
        ("crop", NodeStatus.PENDING, 1, 1),
        ("join", NodeStatus.PENDING, 2, 1),
    ]
    assert nodes[1].idempotency_key == f"{run_id}:crop"
    with pytest.raises(Conflict):
        async with db.write() as s:
            await RunRepo(s, owner_id=user).add_node_executions(
                run_id=run_id, nodes=[("load", "image.load", 0)]
            )


async def test_active_runs_counted_by_status(db: Database) -> None:
    async with db.read() as s:
        before = await active_runs_by_status(s)
    assert set(before) == {RunStatus.PENDING, RunStatus.RUNNING, RunStatus.WAITING}
    user, (wf,) = await make_owner(db)
    runs = [await create_run(db, user, wf) for _ in range(6)]
    moves = {runs[0]: RunStatus.WAITING, runs[1]: RunStatus.COMPLETED}
    moves.update(dict.fromkeys(runs[2:4], RunStatus.RUNNING))
    async with db.write() as s:
        for run_id, status in moves.items():
            await s.execute(
                update(WorkflowRun).where(WorkflowRun.id == run_id).values(status=status)
            )

    async with db.read() as s:
        after = await active_runs_by_status(s)
    assert after[RunStatus.PENDING] - before[RunStatus.PENDING] == 2
    assert after[RunStatus.RUNNING] - before[RunStatus.RUNNING] == 2
    assert after[RunStatus.WAITING] - before[RunStatus.WAITING] == 1


async def test_average_duration_of_successful_runs(db: Database) -> None:
    user, (wf, empty_wf) = await make_owner(db, workflows=2)
    t0 = datetime(2026, 2, 1, tzinfo=UTC)
    outcomes = [(RunStatus.COMPLETED, 100), (RunStatus.COMPLETED, 300), (RunStatus.FAILED, 9000)]
    async with db.write() as s:
        repo = RunRepo(s, owner_id=user)
        for status, ms in outcomes:
            run = await repo.create(workflow_id=wf, workflow_version=1)
            run.status, run.started_at = status, t0
            run.finished_at, run.duration_ms = t0 + timedelta(milliseconds=ms), ms
        await repo.create(workflow_id=wf, workflow_version=1)

    async with db.read() as s:
        stats = await average_successful_duration(s, workflow_id=wf)
        nothing = await average_successful_duration(s, workflow_id=empty_wf)
        everything = await average_successful_duration(s)
    assert stats == (200.0, 2)
    assert nothing == (None, 0)
    assert everything.runs >= 2


async def test_concurrent_requests_with_one_idempotency_key_make_one_run(db: Database) -> None:
    user, (wf,) = await make_owner(db)

    async def request() -> str:
        async with db.write() as s:
            run = await RunRepo(s, owner_id=user).create(
                workflow_id=wf, workflow_version=1, idempotency_key="same"
            )
            # Hold the transaction open so the other request's insert really collides.
            await asyncio.sleep(0.05)
            return run.id

    ids = await asyncio.gather(*(request() for _ in range(4)))

    assert len(set(ids)) == 1
    assert len([r for p in await walk(db, user) for r in p]) == 1
