"""Failing a run whose driver cannot go on, in a transaction of its own.

When a tick's commit is refused for good (the database will not take what it was given) or a
run cannot be loaded, the driver's view of the run is no longer something it can write. Rather
than leave the run RUNNING for ever, it is failed here from the rows alone: the nodes whose
results were being committed FAILED with the reason, every other unfinished node CANCELLED,
the run FAILED with a readable error, its debug session finished. Each statement is guarded
by status, so a run or node that already finished is left as it is.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any, Final, cast

from sqlalchemy import Table, update

from flowloom.storage.database import Database
from flowloom.storage.enums import FINISHED_RUN_STATUSES, NodeStatus, RunStatus
from flowloom.storage.tables import DebugSession, NodeExecution, WorkflowRun

__all__ = ["fail_run"]

_NODES = cast(Table, NodeExecution.__table__)
_RUNS = cast(Table, WorkflowRun.__table__)
_DEBUG = cast(Table, DebugSession.__table__)

_UNFINISHED: Final = tuple(
    status.value
    for status in (NodeStatus.PENDING, NodeStatus.READY, NodeStatus.RUNNING, NodeStatus.WAITING)
)


async def fail_run(
    db: Database,
    *,
    run_id: str,
    error: dict[str, Any],
    now: datetime,
    started_at: datetime | None = None,
    culprits: Collection[str] = (),
) -> bool:
    """Fail ``run_id`` with ``error`` (every value storable); whether the run row changed.

    ``culprits`` are node row ids whose results could not be stored: FAILED with ``error``.
    The other unfinished nodes are CANCELLED. Raises what the database raises (a caller waits
    out ``DatabaseUnavailable`` and tries again: every statement can run twice).
    """
    finished = [status.value for status in FINISHED_RUN_STATUSES]
    released = {"lease_owner": None, "lease_expires_at": None, "updated_at": now}
    run_values: dict[str, Any] = {
        "status": RunStatus.FAILED.value,
        "error": error,
        "finished_at": now,
        "updated_at": now,
    }
    if started_at is not None:
        run_values["duration_ms"] = max(0, round((now - started_at).total_seconds() * 1000))
    async with db.write() as session:
        if culprits:
            await session.execute(
                update(_NODES)
                .where(_NODES.c.id.in_(sorted(culprits)), _NODES.c.status.in_(_UNFINISHED))
                .values(status=NodeStatus.FAILED.value, error=error, finished_at=now, **released)
            )
        await session.execute(
            update(_NODES)
            .where(_NODES.c.run_id == run_id, _NODES.c.status.in_(_UNFINISHED))
            .values(status=NodeStatus.CANCELLED.value, finished_at=now, **released)
        )
        await session.execute(
            update(_DEBUG)
            .where(_DEBUG.c.run_id == run_id)
            .values(status="finished", paused_node_id=None, updated_at=now)
        )
        changed = await session.execute(
            update(_RUNS)
            .where(_RUNS.c.id == run_id, _RUNS.c.status.notin_(finished))
            .values(**run_values)
        )
        return bool(getattr(changed, "rowcount", 0))
