"""Workflow memory: typed values per key and scope, expiry, and owner scoping."""

from __future__ import annotations

import asyncio
import math
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from flowloom.exceptions import InputError, NotFound
from flowloom.storage.database import Database
from flowloom.storage.repos import MemoryRepo, UserRepo, WorkflowRepo, purge_expired_memory
from flowloom.storage.tables import WorkflowMemory


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2030, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


async def new_workflow(db: Database) -> tuple[str, str]:
    async with db.write() as s:
        user = await UserRepo(s).create(email=f"mem-{secrets.token_hex(4)}@example.com")
        workflow = await WorkflowRepo(s, owner_id=user.id).create(name="w", definition={})
    return user.id, workflow.id


@pytest.mark.parametrize(
    ("value", "value_type"),
    [
        ("hello", "string"),
        (42, "number"),
        (2.5, "number"),
        (True, "boolean"),
        (False, "boolean"),
        ({"a": [1, 2]}, "object"),
        ([1, "two"], "array"),
        (None, "null"),
    ],
)
async def test_values_round_trip_with_their_json_type(
    db: Database, value: Any, value_type: str
) -> None:
    owner, workflow = await new_workflow(db)
    async with db.write() as s:
        entry = await MemoryRepo(s, owner_id=owner, workflow_id=workflow).set(key="k", value=value)
    assert entry.value_type == value_type

    async with db.read() as s:
        got = await MemoryRepo(s, owner_id=owner, workflow_id=workflow).get(key="k")
    assert got == value
    assert type(got) is type(value)


async def test_set_replaces_and_scopes_keep_keys_apart(db: Database) -> None:
    owner, workflow = await new_workflow(db)
    async with db.write() as s:
        memory = MemoryRepo(s, owner_id=owner, workflow_id=workflow)
        await memory.set(key="count", value=1)
        await memory.set(key="count", value=2)
        await memory.set(key="count", value="thread's own", scope="thrd_1")
        await memory.set(key="b", value=True)

    async with db.read() as s:
        memory = MemoryRepo(s, owner_id=owner, workflow_id=workflow)
        assert await memory.get(key="count") == 2
        assert await memory.get(key="count", scope="thrd_1") == "thread's own"
        assert [(e.key, e.value) for e in await memory.list()] == [("b", True), ("count", 2)]
        rows = await s.scalar(
            select(func.count())
            .select_from(WorkflowMemory)
            .where(WorkflowMemory.workflow_id == workflow)
        )
    assert rows == 3


async def test_expired_entries_are_gone_at_once_and_purged_later(db: Database) -> None:
    owner, workflow = await new_workflow(db)
    clock = Clock()
    async with db.write() as s:
        memory = MemoryRepo(s, owner_id=owner, workflow_id=workflow, clock=clock)
        await memory.set(key="short", value="x", ttl_s=60)
        await memory.set(key="long", value="y", ttl_s=3600)
        await memory.set(key="forever", value="z")

    clock.now += timedelta(seconds=61)
    async with db.write() as s:
        memory = MemoryRepo(s, owner_id=owner, workflow_id=workflow, clock=clock)
        with pytest.raises(NotFound):
            await memory.get(key="short")
        assert [e.key for e in await memory.list()] == ["forever", "long"]
    with pytest.raises(NotFound):
        async with db.write() as s:
            await MemoryRepo(s, owner_id=owner, workflow_id=workflow, clock=clock).delete(
                key="short"
            )

    async with db.write() as s:
        # Instance-wide: counts other workflows' expired entries too.
        purged = await purge_expired_memory(s, now=clock.now)
    assert purged >= 1
    async with db.read() as s:
        keys = await s.scalars(
            select(WorkflowMemory.key).where(WorkflowMemory.workflow_id == workflow)
        )
        assert sorted(keys) == ["forever", "long"]


async def test_setting_again_without_ttl_makes_an_entry_permanent(db: Database) -> None:
    owner, workflow = await new_workflow(db)
    clock = Clock()
    async with db.write() as s:
        memory = MemoryRepo(s, owner_id=owner, workflow_id=workflow, clock=clock)
        await memory.set(key="k", value=1, ttl_s=1)
        await memory.set(key="k", value=2)
    clock.now += timedelta(days=1)
    async with db.read() as s:
        assert (
            await MemoryRepo(s, owner_id=owner, workflow_id=workflow, clock=clock).get(key="k") == 2
        )


async def test_concurrent_sets_of_one_key_leave_one_entry(db: Database) -> None:
    owner, workflow = await new_workflow(db)

    async def put(value: int) -> None:
        async with db.write() as s:
            await MemoryRepo(s, owner_id=owner, workflow_id=workflow).set(key="k", value=value)
            await asyncio.sleep(0.05)

    await asyncio.gather(*(put(i) for i in range(5)))

    async with db.read() as s:
        entries = await MemoryRepo(s, owner_id=owner, workflow_id=workflow).list()
    assert len(entries) == 1
    assert entries[0].value in range(5)


async def test_delete_removes_and_a_second_delete_is_not_found(db: Database) -> None:
    owner, workflow = await new_workflow(db)
    async with db.write() as s:
        await MemoryRepo(s, owner_id=owner, workflow_id=workflow).set(key="k", value=1)
    async with db.write() as s:
        await MemoryRepo(s, owner_id=owner, workflow_id=workflow).delete(key="k")
    with pytest.raises(NotFound):
        async with db.write() as s:
            await MemoryRepo(s, owner_id=owner, workflow_id=workflow).delete(key="k")


@pytest.mark.parametrize(
    ("key", "value", "ttl_s", "field"),
    [
        ("", 1, None, "key"),
        ("k" * 201, 1, None, "key"),
        ("k", {1, 2}, None, "value"),
        ("k", math.nan, None, "value"),
        ("k", 1, 0, "ttl_s"),
        ("k", 1, -5, "ttl_s"),
    ],
)
async def test_bad_input_is_refused_naming_the_field(
    db: Database, key: str, value: Any, ttl_s: float | None, field: str
) -> None:
    owner, workflow = await new_workflow(db)
    async with db.write() as s:
        with pytest.raises(InputError) as caught:
            await MemoryRepo(s, owner_id=owner, workflow_id=workflow).set(
                key=key, value=value, ttl_s=ttl_s
            )
    assert caught.value.field == field


async def test_another_users_workflow_memory_is_out_of_reach(db: Database) -> None:
    alice, _ = await new_workflow(db)
    bob, bobs_workflow = await new_workflow(db)
    async with db.write() as s:
        await MemoryRepo(s, owner_id=bob, workflow_id=bobs_workflow).set(key="k", value="bob's")

    async with db.write() as s:
        alices = MemoryRepo(s, owner_id=alice, workflow_id=bobs_workflow)
        for attempt in (
            alices.get(key="k"),
            alices.set(key="k", value="alice's"),
            alices.delete(key="k"),
            alices.list(),
        ):
            with pytest.raises(NotFound, match="workflow"):
                await attempt

    async with db.read() as s:
        assert await MemoryRepo(s, owner_id=bob, workflow_id=bobs_workflow).get(key="k") == "bob's"


async def test_memory_of_a_deleted_workflow_is_out_of_reach(db: Database) -> None:
    owner, workflow = await new_workflow(db)
    async with db.write() as s:
        await MemoryRepo(s, owner_id=owner, workflow_id=workflow).set(key="k", value=1)
        await WorkflowRepo(s, owner_id=owner).soft_delete(workflow_id=workflow)

    async with db.read() as s:
        with pytest.raises(NotFound, match="workflow"):
            await MemoryRepo(s, owner_id=owner, workflow_id=workflow).get(key="k")
