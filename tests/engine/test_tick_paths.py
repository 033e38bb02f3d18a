"""The tick as ``TickStore`` writes it (SQL tuned per database) against the portable reference
(``portable_ticks.commit_portably``): the same ticks, applied to two identical runs, leave the
same rows behind, and a tick whose fence fails writes nothing either way."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from benchmarks.ticks import new_bare_run
from flowloom.engine.ports import Tick
from flowloom.engine.run_state import NodeSlot
from flowloom.engine.sql.portable_ticks import commit_portably
from flowloom.engine.sql.ticks import TickStore, load_slots
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
