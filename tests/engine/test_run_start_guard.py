"""A run start with a ``StartGuard`` (``NewRun.guard``): on PostgreSQL the guard is read by the
statement that writes the run when that start is one statement (a workflow seen before), else
alone before the start; either way nothing is written when it does not hold, and
``StartRefused`` carries what it read. SQLite and the memory store refuse guards outright."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from enginekit import chain, make_owner, registry, save_workflow
from newrun import new_run, separate_lookups

from flowloom.engine.memory_store import MemoryRunStore
from flowloom.engine.plans import PlanCache
from flowloom.engine.ports import StartRefused
from flowloom.engine.sql import SqlRunStore
from flowloom.exceptions import NotFound
from flowloom.storage.database import Database
from flowloom.storage.repos.runs import RunRepo


class _Guard:
    """Holds when ``ok``; its row says so, then a word of its own."""

    def __init__(self, ok: bool, word: str = "seen") -> None:
        self.args: Sequence[Any] = (ok, word)
        self.reads = 0

    def pg_sql(self, first: int) -> str:
        self.reads += 1
        return f"SELECT ${first}::boolean AS ok, ${first + 1}::text AS word"


async def _run_ids(db: Database, owner: str) -> set[str]:
    async with db.read() as s:
        page = await RunRepo(s, owner_id=owner).history(limit=100)
    return {run.id for run in page.items}


@pytest.mark.parametrize("db_kind", ["postgresql"], indirect=True)
@pytest.mark.parametrize("key", [None, "delivery-1"])
async def test_a_guard_that_does_not_hold_writes_nothing(db: Database, key: str | None) -> None:
    owner = await make_owner(db)
    wf = await save_workflow(db, owner, chain(2))
    store, plans = SqlRunStore(db), PlanCache(registry())
    # The first start (the workflow not seen yet), then one seen before: both refused.
    for _ in range(2):
        before = await _run_ids(db, owner)
        with pytest.raises(StartRefused) as caught:
            await store.create_run(new_run(owner, wf, guard=_Guard(False, "moved")), plans)
        assert caught.value.row == (False, "moved")
        assert await _run_ids(db, owner) == before
        await store.create_run(new_run(owner, wf), plans)  # seen from now on
    started = await store.create_run(
        new_run(owner, wf, idempotency_key=key, guard=_Guard(True)), plans
    )
    assert started.run_id in await _run_ids(db, owner)
    with pytest.raises(StartRefused):
        await store.create_run(new_run(owner, wf, idempotency_key=key, guard=_Guard(False)), plans)
    assert len(await _run_ids(db, owner)) == 3


@pytest.mark.parametrize("db_kind", ["postgresql"], indirect=True)
async def test_a_guard_rides_in_the_start_of_a_workflow_seen_before(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:

    owner = await make_owner(db)
    other = await make_owner(db)
    wf = await save_workflow(db, owner, chain(2))
    store, plans = SqlRunStore(db), PlanCache(registry())
    await store.create_run(new_run(owner, wf), plans)
    alone = separate_lookups(monkeypatch)
    guard = _Guard(True)
    started = await store.create_run(new_run(owner, wf, guard=guard), plans)
    assert (len(alone), guard.reads) == (0, 1)  # one statement: the look-ups, the guard, the write
    assert started.run_id in await _run_ids(db, owner)
    # The guard holds but the look-ups refuse: the checks go on as without a guard.
    with pytest.raises(NotFound) as caught:
        await store.create_run(new_run(other, wf, guard=_Guard(True)), plans)
    assert caught.value.kind == "workflow"
    # Refused by both: the guard's refusal is the one told.
    with pytest.raises(StartRefused):
        await store.create_run(new_run(other, wf, guard=_Guard(False)), plans)
    assert len(await _run_ids(db, owner)) == 2


@pytest.mark.parametrize("db_kind", ["sqlite"], indirect=True)
async def test_sqlite_and_memory_refuse_a_guard(db: Database) -> None:
    owner = await make_owner(db)
    wf = await save_workflow(db, owner, chain(2))
    plans = PlanCache(registry())
    with pytest.raises(ValueError, match="PostgreSQL"):
        await SqlRunStore(db).create_run(new_run(owner, wf, guard=_Guard(True)), plans)
    assert await _run_ids(db, owner) == set()
    with pytest.raises(ValueError, match="PostgreSQL"):
        await MemoryRunStore().create_run(new_run(owner, wf, guard=_Guard(True)), plans)
