"""A run's start as the engine writes it (``SqlRunStore.create_run`` without an idempotency key:
Core statements on SQLite, autocommit statements on asyncpg on PostgreSQL: two, or one once the
workflow's current version was seen) stores exactly
the rows the ORM writes for the same run (``RunRepo.create`` with a key, then
``add_node_executions``): every column, with defaults and with every optional field set.
"""

from __future__ import annotations

from typing import Any

import pytest
from enginekit import (
    chain,
    definition,
    edge,
    make_owner,
    node,
    registry,
    save_workflow,
    update_workflow,
)
from newrun import new_run, separate_lookups

from flowloom.engine.plans import PlanCache
from flowloom.engine.ports import NewRun, StoredRun
from flowloom.engine.sql import SqlRunStore
from flowloom.exceptions import LimitExceeded, NotFound
from flowloom.graph import Scope
from flowloom.ids import new_id
from flowloom.storage.database import Database
from flowloom.storage.enums import NodeStatus, RunScope, TriggerKind
from flowloom.storage.repos.api_keys import ApiKeyRepo
from flowloom.storage.repos.runs import RunRepo
from flowloom.storage.repos.workflows import WorkflowRepo
from flowloom.storage.tables import NodeExecution, WorkflowRun

VARYING = {"id", "run_id", "created_at", "updated_at", "idempotency_key"}
"""The columns that differ between two runs written alike."""


async def _written(db: Database, owner: str, run_id: str) -> tuple[dict[str, Any], list[Any]]:
    """The run's row and its node rows as stored, without what differs between two runs."""
    async with db.read() as s:
        run, nodes = await RunRepo(s, owner_id=owner).get_with_nodes(run_id=run_id)
    columns = WorkflowRun.__table__.columns.keys()
    node_columns = NodeExecution.__table__.columns.keys()
    return (
        {name: getattr(run, name) for name in columns if name not in VARYING},
        [{n: getattr(node, n) for n in node_columns if n not in VARYING} for node in nodes],
    )


def _node_specs(stored: StoredRun) -> list[tuple[str, str, int]]:
    specs = stored.prepared.specs
    return [
        (node, specs[node].definition.type, slot.pending) for node, slot in stored.slots.items()
    ]


@pytest.mark.parametrize("optional", [False, True])
async def test_the_engines_start_writes_what_the_orm_writes(db: Database, optional: bool) -> None:
    owner = await make_owner(db)
    wf = await save_workflow(db, owner, chain(3))
    store, plans = SqlRunStore(db), PlanCache(registry())
    fields: dict[str, Any] = {}
    repo_fields: dict[str, Any] = {}
    if optional:
        parent = await store.create_run(new_run(owner, wf), plans)
        async with db.write() as s:
            key, _ = await ApiKeyRepo(s, owner_id=owner).create(name="ci", scopes=["admin"])
        fields = {
            "version": 1,
            "scope": Scope.NODE,
            "target_node_id": "n2",
            "inputs": {"text": "é\n", "deep": {"a": []}},
            "trigger_kind": TriggerKind.WEBHOOK,
            "trigger_data": {"source": "webhook", "n": [1, None]},
            "timeout_s": 2.5,
            "use_cache": False,
            "use_pinned": True,
            "parent_run_id": parent.run_id,
            "parent_node_id": "call",
            "parent_attempt": 3,
            "api_key_id": key.id,
        }
        repo_fields = {
            **{k: v for k, v in fields.items() if k not in ("version", "scope")},
            "scope": RunScope.NODE,
            "depth": 1,
        }
    started = await store.create_run(new_run(owner, wf, **fields), plans)
    assert started.run_id.startswith("run")

    async with db.write() as s:
        repo = RunRepo(s, owner_id=owner)
        orm = await repo.create(
            workflow_id=wf,
            workflow_version=fields.get("version"),
            idempotency_key=f"orm-{optional}",
            **repo_fields,
        )
        await repo.add_node_executions(run_id=orm.id, nodes=_node_specs(started))

    stored_run, stored_nodes = await _written(db, owner, started.run_id)
    assert (stored_run, stored_nodes) == await _written(db, owner, orm.id)
    assert len(stored_nodes) == (1 if optional else 3)
    async with db.read() as s:
        _, rows = await RunRepo(s, owner_id=owner).get_with_nodes(run_id=started.run_id)
    assert {row.node_id: row.id for row in rows} == {
        node: slot.row_id for node, slot in started.slots.items()
    }
    assert [row.idempotency_key for row in rows] == [
        f"{started.run_id}:{row.node_id}" for row in rows
    ]
    # What a driver loads from the rows is what the start handed it.
    loaded = await store.load_run(started.run_id, plans)
    assert loaded.slots == started.slots
    assert loaded.run_inputs == started.run_inputs
    assert loaded.outside_outputs == started.outside_outputs
    assert (loaded.timeout_s, loaded.api_key_id, loaded.use_cache, loaded.use_pinned) == (
        started.timeout_s,
        started.api_key_id,
        started.use_cache,
        started.use_pinned,
    )


@pytest.mark.parametrize("length", [1, 2, 3, 15, 16, 17, 71, 200])
async def test_the_engines_node_rows_in_chunks_are_the_orms_rows(db: Database, length: int) -> None:
    # Each node fed by the two before it (unfinished parents 0, 1, then 2): on SQLite the rows
    # go in multi-row INSERTs of 64, 32 and 16 rows and one of the rest (3: one of 3; 17: 16 + 1;
    # 71: 64 + 7; 200: three of 64 and one of 8). The reference is the ORM's own write of the
    # same rows, one object a row.
    # Ids whose text JSON and array literals would have to escape, astral characters too.
    name = [f'n{i} é"\\{{,}} NULL\t😀' for i in range(length + 1)]
    nodes = [node(name[1], "test.add")] + [node(name[i], "test.sum") for i in range(2, length + 1)]
    edges = [
        edge(name[i], name[i + step], target_handle="values")
        for step in (1, 2)
        for i in range(1, length + 1 - step)
    ]
    owner = await make_owner(db)
    wf = await save_workflow(db, owner, definition(nodes, edges))
    store, plans = SqlRunStore(db), PlanCache(registry())
    started = [await store.create_run(new_run(owner, wf), plans) for _ in range(2)]

    specs = _node_specs(started[0])
    async with db.write() as s:
        orm = await RunRepo(s, owner_id=owner).create(
            workflow_id=wf, workflow_version=None, idempotency_key="orm"
        )
        s.add_all(
            NodeExecution(
                id=new_id("nex"),
                run_id=orm.id,
                node_id=node_id,
                node_type=node_type,
                status=NodeStatus.PENDING if pending else NodeStatus.READY,
                pending_parents=pending,
                idempotency_key=f"{orm.id}:{node_id}",
            )
            for node_id, node_type, pending in specs
        )
    expected = await _written(db, owner, orm.id)
    assert [row["pending_parents"] for row in expected[1]] == [0, 1, 2, 2, 2][:length] + [2] * (
        length - 5
    )
    for run in started:  # the second start: the plan's rows as the first made them
        assert await _written(db, owner, run.run_id) == expected
        async with db.read() as s:
            _, rows = await RunRepo(s, owner_id=owner).get_with_nodes(run_id=run.run_id)
        assert [(row.id, row.node_id, row.idempotency_key) for row in rows] == [
            (slot.row_id, node_id, f"{run.run_id}:{node_id}") for node_id, slot in run.slots.items()
        ]
        assert (await store.load_run(run.run_id, plans)).slots == run.slots


async def test_the_engines_start_refuses_what_is_not_the_owners(db: Database) -> None:
    owner = await make_owner(db)
    other = await make_owner(db)
    wf = await save_workflow(db, owner, chain(2))
    theirs = await save_workflow(db, other, chain(2))
    store, plans = SqlRunStore(db), PlanCache(registry())
    their_run = await store.create_run(new_run(other, theirs), plans)
    async with db.write() as s:
        their_key, _ = await ApiKeyRepo(s, owner_id=other).create(name="ci", scopes=["admin"])
    refused = [
        (new_run(owner, "wf_missing"), "workflow"),
        (new_run(owner, theirs), "workflow"),
        (new_run(owner, wf, version=2), "workflow version"),
        (new_run(owner, wf, version=0), "workflow version"),
        (new_run(owner, wf, parent_run_id=their_run.run_id), "run"),
        (new_run(owner, wf, parent_run_id="run_missing"), "run"),
        (new_run(owner, wf, api_key_id=their_key.id), "API key"),
        (new_run(owner, wf, api_key_id="key_missing"), "API key"),
    ]
    await _not_found(store, plans, refused)
    parent = await store.create_run(new_run(owner, wf), plans)
    child = await store.create_run(new_run(owner, wf, parent_run_id=parent.run_id), plans)
    with pytest.raises(LimitExceeded, match="2 deep, over the limit of 1"):
        await store.create_run(new_run(owner, wf, parent_run_id=child.run_id, max_depth=1), plans)
    async with db.read() as s:
        page = await RunRepo(s, owner_id=owner).history(limit=100)
    assert {run.id for run in page.items} == {parent.run_id, child.run_id}


async def test_a_start_of_a_version_seen_before_checks_as_ever(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once a workflow's current version was seen (with its plan made), a start on PostgreSQL
    is tried in one statement that writes only if the look-ups allow it as they are: it
    writes what the two statements write, and anything else (another user, another user's
    key, a version moved on, a deleted workflow) goes through the checks, as ever."""

    owner = await make_owner(db)
    other = await make_owner(db)
    wf = await save_workflow(db, owner, chain(2))
    store, plans = SqlRunStore(db), PlanCache(registry())
    first = await store.create_run(new_run(owner, wf), plans)
    lookups = separate_lookups(monkeypatch)
    second = await store.create_run(new_run(owner, wf, inputs={"x": 1}), plans)
    assert lookups == []  # one statement on PostgreSQL; SQLite writes in its transaction
    assert (await _written(db, owner, second.run_id))[0] == {
        **(await _written(db, owner, first.run_id))[0],
        "inputs": {"x": 1},
    }
    async with db.write() as s:
        their_key, _ = await ApiKeyRepo(s, owner_id=other).create(name="ci", scopes=["admin"])
    refused = [
        (new_run(other, wf), "workflow"),
        (new_run(owner, wf, api_key_id=their_key.id), "API key"),
        (new_run(owner, wf, api_key_id="key_missing"), "API key"),
    ]
    await _not_found(store, plans, refused)

    assert await update_workflow(db, owner, wf, chain(3)) == 2
    moved = await store.create_run(new_run(owner, wf), plans)
    assert len(moved.slots) == 3
    async with db.write() as s:
        await WorkflowRepo(s, owner_id=owner).soft_delete(workflow_id=wf)
    with pytest.raises(NotFound) as caught:
        await store.create_run(new_run(owner, wf), plans)
    assert caught.value.kind == "workflow"
    async with db.read() as s:
        page = await RunRepo(s, owner_id=owner).history(limit=100)
        assert {run.id: run.workflow_version for run in page.items} == {
            first.run_id: 1,
            second.run_id: 1,
            moved.run_id: 2,
        }
    async with db.read() as s:
        assert (await RunRepo(s, owner_id=other).history(limit=100)).items == []


async def _not_found(
    store: SqlRunStore, plans: PlanCache, refused: list[tuple[NewRun, str]]
) -> None:
    """Each start of ``refused`` fails NotFound for the kind of thing beside it."""
    for new, what in refused:
        with pytest.raises(NotFound) as caught:
            await store.create_run(new, plans)
        assert caught.value.kind == what, (new, caught.value)
