"""The tick in plain, portable SQLAlchemy Core: the reference for ``TickStore``.

``TickStore`` writes a tick with SQL tuned per database (SQLite: statements compiled once and run
straight on ``sqlite3``; PostgreSQL: one hand-written statement on asyncpg). This is the same
contract written the obvious way, one ORM-free Core statement at a time through
``Database.run_write``, on any database. It is not used by the engine: the tests check that
both ways leave the same rows behind (``tests/engine/test_tick_paths.py``) and the benchmark
measures what the tuned ways gain over it (``benchmarks/ticks.py``).

The contract: every changed node row written whole, the run row when it changed (never once
it finished), the debug session when there is one; and nothing at all unless every fenced row
is still RUNNING under the tick's owner's lease.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from flowloom.engine.ports import Tick
from flowloom.engine.sql.ticks import TICK_DEBUG, TICK_NODES, TICK_RUNS, node_row_values
from flowloom.storage.database import Database
from flowloom.storage.enums import FINISHED_RUN_STATUSES, NodeStatus

__all__ = ["commit_portably"]


class _Fenced(Exception):
    """A fenced row was not held: the transaction rolls back."""


async def commit_portably(db: Database, tick: Tick) -> bool:
    """Write ``tick`` in one transaction; False (nothing written) if the fence fails."""
    if not (tick.slots or tick.run_values or tick.debug is not None):
        return True
    if not tick.fenced.issubset(slot.row_id for slot in tick.slots):
        raise ValueError("every fenced row must be among the tick's rows")

    def write(conn: Connection) -> bool:
        if tick.fenced:
            held = conn.execute(
                select(TICK_NODES.c.id)
                .where(
                    TICK_NODES.c.id.in_(sorted(tick.fenced)),
                    TICK_NODES.c.status == NodeStatus.RUNNING.value,
                    TICK_NODES.c.lease_owner == tick.owner,
                )
                .with_for_update()
            ).all()
            if len(held) != len(tick.fenced):
                raise _Fenced
        for slot in tick.slots:
            values = node_row_values(slot, tick.run_id, tick.now)
            conn.execute(update(TICK_NODES).where(TICK_NODES.c.id == slot.row_id).values(values))
        if tick.run_values:
            run_values: dict[str, Any] = {**tick.run_values, "updated_at": tick.now}
            conn.execute(
                update(TICK_RUNS)
                .where(
                    TICK_RUNS.c.id == tick.run_id,
                    TICK_RUNS.c.status.not_in([s.value for s in FINISHED_RUN_STATUSES]),
                )
                .values(run_values)
            )
        debug = tick.debug
        if debug is not None:
            conn.execute(
                update(TICK_DEBUG)
                .where(TICK_DEBUG.c.id == debug.session_id)
                .values(
                    mode=debug.mode,
                    paused_node_id=debug.paused_node_id,
                    status=tick.debug_status,
                    updated_at=tick.now,
                )
            )
        return True

    try:
        return await db.run_write(write, inline=True)  # as TickStore does for small ticks
    except _Fenced:
        return False
