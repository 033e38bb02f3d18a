"""The tick as ``TickStore`` writes it (SQL tuned per database) against the portable reference
(``portable_ticks.commit_portably``): the same ticks, applied to two identical runs, leave the
same rows behind, and a tick whose fence fails writes nothing either way."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import select

from benchmarks.ticks import new_bare_run
from flowloom.engine.ports import Tick
from flowloom.engine.run_state import NodeSlot
from flowloom.engine.sql import ticks
from flowloom.engine.sql.portable_ticks import commit_portably
from flowloom.engine.sql.ticks import TickStore, load_slots
from flowloom.exceptions import StorageError
from flowloom.storage.database import Database
from flowloom.storage.enums import NodeStatus
from flowloom.storage.tables import WorkflowRun
from flowloom.storage.tables.base import utcnow

Commit = Callable[[Tick], Awaitable[bool]]


async def _new_run(db: Database) -> str:
    return await new_bare_run(db, [("a", "t", 0), ("b", "t", 1), ("c", "t", 1)])


async def _slots(db: Database, run_id: str) -> dict[str, NodeSlot]:
    return await db.run_read(lambda conn: load_slots(conn, run_id))


async def _run_row(db: Database, run_id: str) -> tuple[Any, ...]:
    async with db.read() as session:
        row = (
            await session.execute(
                select(WorkflowRun.status, WorkflowRun.outputs, WorkflowRun.updated_at).where(
                    WorkflowRun.id == run_id
                )
            )
        ).one()
    return tuple(row)


def _comparable(slots: dict[str, NodeSlot]) -> dict[str, dict[str, Any]]:
    return {
        node_id: {k: v for k, v in dataclasses.asdict(slot).items() if k != "row_id"}
        for node_id, slot in slots.items()
    }


async def _play(db: Database, run_id: str, commit: Commit, now: datetime) -> list[bool]:
    """A run's life in ticks at ``now``, some refused by the fence; what each commit answered."""
    slots = await _slots(db, run_id)
    a, b, c = slots["a"], slots["b"], slots["c"]
    answers = []
    a.status, a.lease_owner = NodeStatus.RUNNING, "one"
    a.lease_expires_at, a.started_at = now + timedelta(seconds=30), now
    answers.append(await commit(Tick(run_id, "one", now, [a], set(), {"status": "RUNNING"})))
    # Engine "two" does not hold a's lease: nothing of this tick lands.
    a.status, a.outputs, a.lease_owner = NodeStatus.SUCCEEDED, {"x": [1, "ü"]}, None
    b.status, b.pending = NodeStatus.READY, 0
    answers.append(await commit(Tick(run_id, "two", now, [a, b], {a.row_id}, {"outputs": {}})))
    # The holder writes it, b claimed in the same tick, c's cache signature set.
    b.status, b.lease_owner, b.attempt = NodeStatus.RUNNING, "one", 1
    c.cache_signature, c.inputs = "sig-c", {"value": 2}
    a.finished_at, a.duration_ms, a.attempts = now, 5, [{"attempt": 1, "status": "SUCCEEDED"}]
    answers.append(await commit(Tick(run_id, "one", now, [a, b, c], {a.row_id}, {})))
    b.status, b.lease_owner, b.error = NodeStatus.FAILED, None, {"message": "no"}
    c.status, c.pending = NodeStatus.SKIPPED, 0
    finished = {"status": "FAILED", "outputs": {"a": {"x": 1}}}
    answers.append(await commit(Tick(run_id, "one", now, [b, c], {b.row_id}, finished)))
    # A finished run is never changed again.
    answers.append(await commit(Tick(run_id, "one", now, [], set(), {"status": "RUNNING"})))
    return answers


async def test_the_tuned_tick_and_the_portable_one_leave_the_same_rows(db: Database) -> None:
    tuned, portable = await _new_run(db), await _new_run(db)
    store = TickStore(db)

    async def by_reference(tick: Tick) -> bool:
        return await commit_portably(db, tick)

    # One moment for both: rows played a second apart would differ in their times alone.
    now = utcnow().replace(microsecond=0)
    assert await _play(db, tuned, store.commit, now) == [True, False, True, True, True]
    assert await _play(db, portable, by_reference, now) == [True, False, True, True, True]

    tuned_rows, portable_rows = await _slots(db, tuned), await _slots(db, portable)
    assert _comparable(tuned_rows) == _comparable(portable_rows)
    assert tuned_rows["a"].outputs == {"x": [1, "ü"]}
    assert tuned_rows["c"].status is NodeStatus.SKIPPED
    assert await _run_row(db, tuned) == await _run_row(db, portable)
    assert (await _run_row(db, tuned))[:2] == ("FAILED", {"a": {"x": 1}})


async def test_times_and_json_values_land_as_the_portable_tick_writes_them(db: Database) -> None:
    """Times off UTC and with microseconds, JSON null against SQL NULL, nested and non-ASCII
    JSON: the tuned tick (on PostgreSQL one JSON text for every row) writes what the portable
    one writes."""
    tuned, portable = await _new_run(db), await _new_run(db)
    store = TickStore(db)
    east = timezone(timedelta(hours=3, minutes=30))
    now = datetime(2026, 3, 4, 5, 6, 7, 891_011, tzinfo=east)
    later = now + timedelta(seconds=30, microseconds=7)

    def tick(run_id: str, slots: dict[str, NodeSlot]) -> Tick:
        a, b = slots["a"], slots["b"]
        a.status, a.lease_owner, a.lease_expires_at, a.started_at = (
            NodeStatus.RUNNING,
            "one",
            later,
            now,
        )
        a.inputs = {"text": 'quote " and \\ back\nslash', "é": ["ü", None, 1.5, 10**15]}
        a.attempts = [{"attempt": 1, "nested": {"deep": [[], {}]}}]
        b.status, b.pending, b.retry_at = NodeStatus.READY, 0, later
        b.error, b.wait = None, {"kind": "delay", "payload": None}
        return Tick(run_id, "one", now, [a, b], set(), {"status": "RUNNING"})

    async def by_reference(tick: Tick) -> bool:
        return await commit_portably(db, tick)

    assert await store.commit(tick(tuned, await _slots(db, tuned)))
    assert await by_reference(tick(portable, await _slots(db, portable)))
    tuned_rows, portable_rows = await _slots(db, tuned), await _slots(db, portable)
    assert _comparable(tuned_rows) == _comparable(portable_rows)
    assert tuned_rows["a"].lease_expires_at == later
    assert tuned_rows["a"].started_at == now
    assert tuned_rows["b"].retry_at == later
    assert tuned_rows["a"].inputs == {
        "text": 'quote " and \\ back\nslash',
        "é": ["ü", None, 1.5, 10**15],
    }
    assert tuned_rows["b"].wait == {"kind": "delay", "payload": None}


async def test_a_value_that_is_not_json_writes_nothing(db: Database) -> None:
    run_id = await _new_run(db)
    before = await _slots(db, run_id)
    slots = await _slots(db, run_id)
    a = slots["a"]
    a.status, a.lease_owner, a.outputs = NodeStatus.RUNNING, "one", {"when": {1, 2}}
    with pytest.raises((TypeError, StorageError)):
        await TickStore(db).commit(Tick(run_id, "one", utcnow(), [a], set(), {}))
    assert _comparable(await _slots(db, run_id)) == _comparable(before)


@pytest.mark.parametrize("db_kind", ["postgresql"], indirect=True)
async def test_postgres_tick_sends_its_rows_in_a_few_parameters_and_reads_them_by_key(
    db: Database,
) -> None:
    """On PostgreSQL the tick's parameters do not grow with the node columns (its rows travel
    as one JSON text), and its plan finds the rows to write by primary key, never by a hash
    of the table's rows (what a join on a set read from the JSON was planned as)."""
    for _ in range(30):
        await _new_run(db)
    run_id = await _new_run(db)
    slots = await _slots(db, run_id)
    a, b = slots["a"], slots["b"]
    a.status, a.lease_owner = NodeStatus.RUNNING, "one"
    store = TickStore(db)
    assert await store.commit(Tick(run_id, "one", utcnow(), [a], set(), {}))
    a.status, a.outputs, b.status = NodeStatus.SUCCEEDED, {"x": 1}, NodeStatus.READY
    tick = Tick(run_id, "one", utcnow(), [a, b], {a.row_id}, {})
    sql = ticks._pg_tick_statement(())
    assert max(int(n) for n in re.findall(r"\$(\d+)", sql)) == 4
    args = [sorted(tick.fenced), tick.owner, [a.row_id, b.row_id], ticks._pg_rows(tick)]
    async with db.asyncpg_connection() as pg:
        # The engine's sessions plan generically (``plan_cache_mode``): as the tick runs.
        explain = await pg.prepare("EXPLAIN (FORMAT JSON) " + sql)
        plan = await explain.fetchval(*args)
    nodes = _plan_nodes(plan[0]["Plan"])
    assert not [n for n in nodes if n["Node Type"] in ("Hash Join", "Seq Scan", "Merge Join")]
    scans = [
        n
        for n in nodes
        if n.get("Relation Name") == "node_executions" and n["Node Type"] != "ModifyTable"
    ]
    assert scans
    assert all("Index Cond" in n for n in scans)
    assert await store.commit(tick)
    assert (await _slots(db, run_id))["a"].outputs == {"x": 1}


def _plan_nodes(node: dict[str, Any]) -> list[dict[str, Any]]:
    found = [node]
    for child in node.get("Plans", []):
        found += _plan_nodes(child)
    return found
