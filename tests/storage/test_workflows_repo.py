"""Workflows: owner scoping, numbered versions, optimistic concurrency, soft delete, pages."""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

import pytest
from sqlalchemy import select

from flowloom.exceptions import Conflict, InputError, NotFound
from flowloom.storage.database import Database
from flowloom.storage.repos import UserRepo, WorkflowRepo
from flowloom.storage.tables import Workflow


def graph(label: str) -> dict[str, Any]:
    return {
        "schema_version": 1,
        "nodes": [{"id": "a", "type": "text.template", "data": {"label": label}}],
        "edges": [],
    }


async def new_user(db: Database) -> str:
    async with db.write() as s:
        user = await UserRepo(s).create(email=f"wf-{secrets.token_hex(4)}@example.com")
    return user.id


async def new_workflow(db: Database, owner: str, name: str = "wf") -> Workflow:
    async with db.write() as s:
        return await WorkflowRepo(s, owner_id=owner).create(name=name, definition=graph("v1"))


async def test_create_saves_version_one(db: Database) -> None:
    owner = await new_user(db)
    async with db.write() as s:
        made = await WorkflowRepo(s, owner_id=owner).create(
            name=" Resize photos ",
            definition=graph("v1"),
            description="crop then resize",
            nl_description="make thumbnails of my photos",
            is_valid=False,
        )

    async with db.read() as s:
        repo = WorkflowRepo(s, owner_id=owner)
        got = await repo.get(workflow_id=made.id)
        versions = await repo.list_versions(workflow_id=made.id)
    assert (got.name, got.version, got.is_valid) == ("Resize photos", 1, False)
    assert got.nl_description == "make thumbnails of my photos"
    assert [(v.version, v.definition, v.created_by) for v in versions.items] == [
        (1, graph("v1"), owner)
    ]


@pytest.mark.parametrize("name", ["", "   ", "x" * 201])
async def test_bad_name_is_refused(db: Database, name: str) -> None:
    owner = await new_user(db)
    with pytest.raises(InputError, match="name"):
        async with db.write() as s:
            await WorkflowRepo(s, owner_id=owner).create(name=name, definition=graph("v1"))


async def test_definition_changes_are_numbered_and_restorable(db: Database) -> None:
    owner = await new_user(db)
    made = await new_workflow(db, owner)
    async with db.write() as s:
        repo = WorkflowRepo(s, owner_id=owner)
        await repo.update(workflow_id=made.id, definition=graph("v2"), note="second")
        # Same definition again: not a new version.
        await repo.update(workflow_id=made.id, definition=graph("v2"), name="renamed")
        at_three = await repo.update(workflow_id=made.id, definition=graph("v3"))
    assert at_three.version == 3
    assert at_three.name == "renamed"

    async with db.write() as s:
        restored = await WorkflowRepo(s, owner_id=owner).restore_version(
            workflow_id=made.id, version=1
        )
    assert restored.version == 4
    assert restored.definition == graph("v1")

    async with db.read() as s:
        repo = WorkflowRepo(s, owner_id=owner)
        page = await repo.list_versions(workflow_id=made.id)
        second = await repo.get_version(workflow_id=made.id, version=2)
        current = await repo.get(workflow_id=made.id)
        with pytest.raises(NotFound):
            await repo.get_version(workflow_id=made.id, version=5)
    assert [v.version for v in page.items] == [4, 3, 2, 1]
    assert [v.definition for v in page.items] == [graph(x) for x in ("v1", "v3", "v2", "v1")]
    assert page.items[0].note == "restored from version 1"
    assert (second.note, second.definition) == ("second", graph("v2"))
    assert (current.version, current.definition) == (4, graph("v1"))


async def test_stale_expected_version_is_a_conflict_and_changes_nothing(db: Database) -> None:
    owner = await new_user(db)
    made = await new_workflow(db, owner)
    async with db.write() as s:
        await WorkflowRepo(s, owner_id=owner).update(
            workflow_id=made.id, definition=graph("mine"), expected_version=1
        )

    # A second editor who also loaded version 1 saves afterwards.
    with pytest.raises(Conflict, match="version 2, not 1"):
        async with db.write() as s:
            await WorkflowRepo(s, owner_id=owner).update(
                workflow_id=made.id, definition=graph("theirs"), expected_version=1
            )
    with pytest.raises(Conflict):
        async with db.write() as s:
            await WorkflowRepo(s, owner_id=owner).restore_version(
                workflow_id=made.id, version=1, expected_version=1
            )

    async with db.read() as s:
        repo = WorkflowRepo(s, owner_id=owner)
        current = await repo.get(workflow_id=made.id)
        versions = await repo.list_versions(workflow_id=made.id)
    assert (current.version, current.definition) == (2, graph("mine"))
    assert [v.version for v in versions.items] == [2, 1]


async def test_concurrent_saves_of_one_version_let_exactly_one_win(db: Database) -> None:
    owner = await new_user(db)
    made = await new_workflow(db, owner)

    async def save(label: str, expected_version: int | None) -> int:
        async with db.write() as s:
            saved = await WorkflowRepo(s, owner_id=owner).update(
                workflow_id=made.id, definition=graph(label), expected_version=expected_version
            )
            # Hold the transaction so the other save really overlaps it.
            await asyncio.sleep(0.1)
            return saved.version

    outcomes = await asyncio.gather(save("a", 1), save("b", 1), return_exceptions=True)
    assert sorted(type(o).__name__ for o in outcomes) == ["Conflict", "int"]
    # Without expected_version, overlapping saves both land, one after the other.
    assert sorted(await asyncio.gather(save("c", None), save("d", None))) == [3, 4]

    async with db.read() as s:
        versions = await WorkflowRepo(s, owner_id=owner).list_versions(workflow_id=made.id)
    assert [v.version for v in versions.items] == [4, 3, 2, 1]


async def test_description_can_be_cleared_and_untouched_fields_stay(db: Database) -> None:
    owner = await new_user(db)
    async with db.write() as s:
        made = await WorkflowRepo(s, owner_id=owner).create(
            name="n", definition=graph("v1"), description="d", nl_description="nl"
        )
    async with db.write() as s:
        changed = await WorkflowRepo(s, owner_id=owner).update(
            workflow_id=made.id, description=None, is_valid=False, active=False
        )
    assert (changed.description, changed.nl_description) == (None, "nl")
    assert (changed.is_valid, changed.active, changed.version) == (False, False, 1)


async def test_soft_deleted_workflow_vanishes_from_get_list_and_versions(db: Database) -> None:
    owner = await new_user(db)
    kept = await new_workflow(db, owner, name="kept")
    gone = await new_workflow(db, owner, name="gone")
    async with db.write() as s:
        await WorkflowRepo(s, owner_id=owner).soft_delete(workflow_id=gone.id)

    async with db.write() as s:
        repo = WorkflowRepo(s, owner_id=owner)
        assert [w.id for w in (await repo.list()).items] == [kept.id]
        with pytest.raises(NotFound):
            await repo.get(workflow_id=gone.id)
        with pytest.raises(NotFound):
            await repo.list_versions(workflow_id=gone.id)
        with pytest.raises(NotFound):
            await repo.update(workflow_id=gone.id, name="back")
        with pytest.raises(NotFound):
            await repo.soft_delete(workflow_id=gone.id)
        row = await s.get(Workflow, gone.id)
    assert row is not None
    assert row.deleted_at is not None
    assert not row.active


async def test_another_users_workflow_behaves_as_missing_and_stays_unchanged(
    db: Database,
) -> None:
    alice, bob = await new_user(db), await new_user(db)
    bobs = await new_workflow(db, bob, name="bob's")
    await new_workflow(db, alice, name="alice's")

    async with db.write() as s:
        alices = WorkflowRepo(s, owner_id=alice)
        assert [w.name for w in (await alices.list()).items] == ["alice's"]
        for attempt in (
            alices.get(workflow_id=bobs.id),
            alices.update(workflow_id=bobs.id, name="mine", definition=graph("x")),
            alices.soft_delete(workflow_id=bobs.id),
            alices.list_versions(workflow_id=bobs.id),
            alices.get_version(workflow_id=bobs.id, version=1),
            alices.restore_version(workflow_id=bobs.id, version=1),
            alices.log_validation(workflow_id=bobs.id, version=1, valid=True),
            alices.list_validation_logs(workflow_id=bobs.id),
        ):
            with pytest.raises(NotFound, match="workflow"):
                await attempt

    async with db.read() as s:
        row = await s.scalar(select(Workflow).where(Workflow.id == bobs.id))
        logs = await WorkflowRepo(s, owner_id=bob).list_validation_logs(workflow_id=bobs.id)
    assert row is not None
    assert (row.name, row.version, row.deleted_at, row.definition) == (
        "bob's",
        1,
        None,
        graph("v1"),
    )
    assert logs.items == []


async def test_validation_logs_are_kept_per_version(db: Database) -> None:
    owner = await new_user(db)
    made = await new_workflow(db, owner)
    problems = [{"node_id": "a", "port": "text", "message": "required input missing"}]
    async with db.write() as s:
        repo = WorkflowRepo(s, owner_id=owner)
        await repo.log_validation(workflow_id=made.id, version=1, valid=False, problems=problems)
        await repo.update(workflow_id=made.id, definition=graph("v2"))
        await repo.log_validation(workflow_id=made.id, version=2, valid=True)
        with pytest.raises(NotFound):
            await repo.log_validation(workflow_id=made.id, version=3, valid=True)

    async with db.read() as s:
        repo = WorkflowRepo(s, owner_id=owner)
        every = await repo.list_validation_logs(workflow_id=made.id)
        first = await repo.list_validation_logs(workflow_id=made.id, version=1)
    assert [(e.version, e.valid) for e in every.items] == [(2, True), (1, False)]
    assert [e.problems for e in first.items] == [problems]


async def test_25_workflows_page_as_10_10_5_without_gaps_or_duplicates(db: Database) -> None:
    owner = await new_user(db)
    async with db.write() as s:
        repo = WorkflowRepo(s, owner_id=owner)
        made = [(await repo.create(name=f"w{i}", definition={})).id for i in range(25)]

    sizes: list[int] = []
    seen: list[str] = []
    cursor: str | None = None
    async with db.read() as s:
        repo = WorkflowRepo(s, owner_id=owner)
        while True:
            page = await repo.list(cursor=cursor, limit=10)
            sizes.append(len(page.items))
            seen.extend(w.id for w in page.items)
            if page.next_cursor is None:
                break
            cursor = page.next_cursor

    assert sizes == [10, 10, 5]
    assert seen == made[::-1]


async def test_new_workflows_do_not_shift_a_walk_in_progress(db: Database) -> None:
    owner = await new_user(db)
    async with db.write() as s:
        repo = WorkflowRepo(s, owner_id=owner)
        made = [(await repo.create(name=f"w{i}", definition={})).id for i in range(6)]
    async with db.read() as s:
        first = await WorkflowRepo(s, owner_id=owner).list(limit=3)
    await new_workflow(db, owner, name="newer")
    async with db.read() as s:
        second = await WorkflowRepo(s, owner_id=owner).list(cursor=first.next_cursor, limit=3)

    assert [w.id for w in first.items + second.items] == made[::-1]


@pytest.mark.parametrize(
    "cursor",
    ["garbage", "wf_short", "run_01jd4y9q6xf3k8r2m5t7v9w0ab", "wf_01jd4y9q6xf3k8r2m5t7v9w0aI"],
)
async def test_malformed_cursor_is_an_input_error(db: Database, cursor: str) -> None:
    owner = await new_user(db)
    async with db.read() as s:
        with pytest.raises(InputError) as caught:
            await WorkflowRepo(s, owner_id=owner).list(cursor=cursor)
    assert caught.value.field == "cursor"


@pytest.mark.parametrize("limit", [0, -1, 101])
async def test_limit_out_of_range_is_an_input_error(db: Database, limit: int) -> None:
    owner = await new_user(db)
    async with db.read() as s:
        with pytest.raises(InputError, match="limit"):
            await WorkflowRepo(s, owner_id=owner).list(limit=limit)


async def test_search_matches_name_or_description_ignoring_case(db: Database) -> None:
    owner = await new_user(db)
    async with db.write() as s:
        repo = WorkflowRepo(s, owner_id=owner)
        photo = await repo.create(name="Photo Resizer", definition={})
        notes = await repo.create(name="Notes", definition={}, description="summarise PHOTOS")
        await repo.create(name="100% todo_list", definition={})
        await repo.create(name="Other", definition={})

    async with db.read() as s:
        repo = WorkflowRepo(s, owner_id=owner)
        found = await repo.list(search="photo")
        # % and _ are matched literally, not as LIKE wildcards.
        percent = await repo.list(search="%")
        underscore = await repo.list(search="o_")
    assert {w.id for w in found.items} == {photo.id, notes.id}
    assert [w.name for w in percent.items] == ["100% todo_list"]
    assert [w.name for w in underscore.items] == ["100% todo_list"]
