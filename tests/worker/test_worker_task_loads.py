"""A worker loads the runs of one task at once (``WorkerEngine.load_runs``: one statement for
them all, after their claims were taken), and falls back to each driver's own load when that
read fails: a WorkerHost in this process on the test's PostgreSQL schema and Redis."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection, Iterator
from typing import Any

import pytest
from enginekit import chain, make_owner, node_rows, save_workflow
from newrun import new_run
from workerkit import Cluster, schema_database, worker_registry

from flowloom.engine.plans import PlanCache
from flowloom.engine.ports import PlanSource, StoredRun
from flowloom.engine.sql import SqlRunStore
from flowloom.ids import PREFIXES, new_id
from flowloom.storage.database import Database
from flowloom.storage.enums import RunStatus
from flowloom.worker import host as host_module
from flowloom.worker.host import WorkerHost

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


@pytest.fixture
def loads(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[list[str]]]:
    """The run ids of every ``load_run`` and ``load_runs`` from now on (any store)."""
    seen: dict[str, list[list[str]]] = {"one": [], "many": []}
    load_run, load_runs = SqlRunStore.load_run, SqlRunStore.load_runs

    async def one(self: SqlRunStore, run_id: str, plans: PlanSource) -> StoredRun:
        seen["one"].append([run_id])
        return await load_run(self, run_id, plans)

    async def many(
        self: SqlRunStore, run_ids: Collection[str], plans: PlanSource
    ) -> dict[str, StoredRun]:
        seen["many"].append(list(run_ids))
        return await load_runs(self, run_ids, plans)

    monkeypatch.setattr(SqlRunStore, "load_run", one)
    monkeypatch.setattr(SqlRunStore, "load_runs", many)
    return seen


@pytest.fixture
def host(pg: tuple[Database, str], cluster: Cluster) -> Iterator[WorkerHost]:
    found = WorkerHost(
        cluster.settings(),
        lambda run_ids: None,
        worker_registry(),
        open_database=schema_database(pg[1]),
    )
    found.start()
    yield found
    found.stop()


async def _runs(db: Database, count: int) -> list[str]:
    owner = await make_owner(db)
    workflow = await save_workflow(db, owner, chain(3))
    store, plans = SqlRunStore(db), PlanCache(worker_registry())
    return [(await store.create_run(new_run(owner, workflow), plans)).run_id for _ in range(count)]


async def _statuses(db: Database, run_ids: list[str]) -> list[RunStatus]:
    return [(await SqlRunStore(db).outcome(run_id)).status for run_id in run_ids]


async def test_the_runs_of_a_task_are_loaded_in_one_read(
    pg: tuple[Database, str], host: WorkerHost, loads: dict[str, Any]
) -> None:
    ids = await _runs(pg[0], 3)

    done = await asyncio.to_thread(host.drive_many, [*ids, ids[0]])

    assert done == ["driven to the end"] * 4
    assert await _statuses(pg[0], ids) == [RunStatus.COMPLETED] * 3
    assert loads == {"one": [], "many": [ids]}
    # Handed again (a stale delivery): loaded at once again, found finished, nothing written.
    assert await asyncio.to_thread(host.drive_many, ids) == ["nothing to do"] * 3
    assert loads == {"one": [], "many": [ids, ids]}


async def test_a_task_of_one_run_is_loaded_by_its_driver(
    pg: tuple[Database, str], host: WorkerHost, loads: dict[str, Any]
) -> None:
    ids = await _runs(pg[0], 1)

    assert await asyncio.to_thread(host.drive_many, ids) == ["driven to the end"]
    assert loads == {"one": [ids], "many": []}


async def test_a_run_that_does_not_exist_is_left_to_its_own_driver(
    pg: tuple[Database, str], host: WorkerHost, loads: dict[str, Any]
) -> None:
    ids = await _runs(pg[0], 2)
    missing = new_id(PREFIXES["workflow_runs"])

    await asyncio.to_thread(host.drive_many, [ids[0], missing, ids[1]])

    assert await _statuses(pg[0], ids) == [RunStatus.COMPLETED] * 2
    # Absent from the load of the task, it was left to its driver, which found no run.
    assert loads == {"one": [[missing]], "many": [[ids[0], missing, ids[1]]]}


async def test_a_failed_load_of_a_task_leaves_each_run_to_its_driver(
    pg: tuple[Database, str],
    host: WorkerHost,
    loads: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    ids = await _runs(pg[0], 3)

    async def refused(self: SqlRunStore, run_ids: Collection[str], plans: PlanSource) -> None:
        loads["many"].append(list(run_ids))
        raise ConnectionError("the database went away")

    monkeypatch.setattr(SqlRunStore, "load_runs", refused)
    with caplog.at_level(logging.WARNING, logger="flowloom.worker"):
        done = await asyncio.to_thread(host.drive_many, ids)

    assert done == ["driven to the end"] * 3
    assert await _statuses(pg[0], ids) == [RunStatus.COMPLETED] * 3
    assert loads["many"] == [ids]
    assert sorted(loads["one"]) == sorted([run_id] for run_id in ids)
    assert "loading 3 runs at once failed" in caplog.text


async def test_a_big_task_is_loaded_a_part_at_a_time(
    pg: tuple[Database, str],
    host: WorkerHost,
    loads: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A task the sweep queued (it may carry hundreds of runs) is read ``LOAD_AT_ONCE`` runs
    a statement, not all in one result."""
    monkeypatch.setattr(host_module, "LOAD_AT_ONCE", 2)
    ids = await _runs(pg[0], 5)

    assert await asyncio.to_thread(host.drive_many, ids) == ["driven to the end"] * 5
    assert loads == {"one": [], "many": [ids[0:2], ids[2:4], ids[4:5]]}


async def test_the_first_cache_look_ups_of_a_task_s_runs_are_one_statement(
    pg: tuple[Database, str], host: WorkerHost, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Their drivers start together and each asks the cache when its first commit (which
    probed its first node) comes back: asked close together, the look-ups reach the store as
    one (``BatchedLookups``), and every run is served what a look-up of its own would serve."""
    made: list[list[str]] = []
    find_cached = SqlRunStore.find_cached

    async def counted(self: SqlRunStore, signatures: Any, *, near: bool = False) -> Any:
        made.append(list(signatures))
        return await find_cached(self, made[-1], near=near)

    monkeypatch.setattr(SqlRunStore, "find_cached", counted)
    first, *ids = await _runs(pg[0], 4)
    assert host.engine is not None
    host.engine.lookups.window_s = 5.0  # every driver asks: none waits that long
    await asyncio.to_thread(host.drive_many, [first])  # its results are the cache of the rest
    made.clear()

    assert await asyncio.to_thread(host.drive_many, ids) == ["driven to the end"] * 3

    assert await _statuses(pg[0], ids) == [RunStatus.COMPLETED] * 3
    assert len(made) == 1
    nodes = [await node_rows(pg[0], run_id) for run_id in ids]
    assert [[row.status for row in rows.values()] for rows in nodes] == [["CACHED"] * 3] * 3
