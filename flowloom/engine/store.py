"""The engine's statements beyond the repositories: few, set-based, and Core rather than ORM.

The scheduler's tick is the hot path (one transaction per tick for every node of a run), so it
writes changed node rows with one executemany by primary key instead of loading ORM objects,
and checks its leases with one SELECT. Creating runs and their checkpoints goes through
``RunRepo`` like everything else.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Row, Table, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from flowloom.engine.run_state import DebugState, NodeSlot
from flowloom.storage.enums import NodeStatus, RunStatus
from flowloom.storage.tables import DebugSession, NodeExecution, WorkflowRun

__all__ = [
    "find_cached",
    "held_leases",
    "load_debug",
    "load_slots",
    "write_debug",
    "write_run",
    "write_slots",
]

# Typed as Table (``__table__`` is only known as a FromClause) so Core update() accepts them.
_NODES = cast(Table, NodeExecution.__table__)
_RUNS = cast(Table, WorkflowRun.__table__)
_DEBUG = cast(Table, DebugSession.__table__)

_SLOT_COLUMNS = (
    "id",
    "node_id",
    "status",
    "attempt",
    "pending_parents",
    "outputs",
    "error",
    "attempts",
    "inputs",
    "started_at",
    "finished_at",
    "duration_ms",
    "retry_at",
    "wait",
    "cache_signature",
    "cached_from_id",
    "lease_owner",
    "lease_expires_at",
)
_MUTABLE = _SLOT_COLUMNS[2:]

_WRITE_SLOT = (
    update(_NODES)
    .where(_NODES.c.id == bindparam("b_id"))
    .values(
        {name: bindparam(f"b_{name}") for name in _MUTABLE}
        | {"idempotency_key": bindparam("b_idempotency_key"), "updated_at": bindparam("b_now")}
    )
)

# Built once: the fencing check runs in every tick, and Core statements on the connection skip
# the ORM session's per-call work.
_HELD = select(_NODES.c.id).where(
    _NODES.c.id.in_(bindparam("ids", expanding=True)),
    _NODES.c.status == NodeStatus.RUNNING.value,
    _NODES.c.lease_owner == bindparam("owner"),
)
_HELD_FOR_UPDATE = _HELD.with_for_update()


async def load_slots(session: AsyncSession, run_id: str) -> dict[str, NodeSlot]:
    """Every node row of the run, as slots keyed by node id (in checkpoint order)."""
    rows = await session.execute(
        select(*(_NODES.c[name] for name in _SLOT_COLUMNS))
        .where(_NODES.c.run_id == run_id)
        .order_by(_NODES.c.id)
    )
    return {row.node_id: _slot(row) for row in rows}


def _slot(row: Row[Any]) -> NodeSlot:
    return NodeSlot(
        row_id=row.id,
        node_id=row.node_id,
        status=NodeStatus(row.status),
        attempt=row.attempt,
        pending=row.pending_parents,
        outputs=row.outputs,
        error=row.error,
        attempts=list(row.attempts or []),
        inputs=row.inputs,
        started_at=row.started_at,
        finished_at=row.finished_at,
        duration_ms=row.duration_ms,
        retry_at=row.retry_at,
        wait=row.wait,
        cache_signature=row.cache_signature,
        cached_from_id=row.cached_from_id,
        lease_owner=row.lease_owner,
        lease_expires_at=row.lease_expires_at,
    )


async def held_leases(
    session: AsyncSession, row_ids: Sequence[str], *, owner: str, for_update: bool
) -> set[str]:
    """Which of ``row_ids`` are RUNNING under ``owner``'s lease (locked on PostgreSQL).

    The fencing check: a result is written only for a row still held, so an attempt whose node
    was re-queued elsewhere cannot overwrite the newer attempt.
    """
    if not row_ids:
        return set()
    connection = await session.connection()
    query = _HELD_FOR_UPDATE if for_update else _HELD
    rows = await connection.execute(query, {"ids": list(row_ids), "owner": owner})
    return {row_id for (row_id,) in rows}


async def find_cached(
    session: AsyncSession, signatures: Iterable[str]
) -> dict[str, tuple[str, dict[str, Any]]]:
    """For each signature with an earlier success: the newest such row's id and outputs."""
    wanted = sorted(set(signatures))
    if not wanted:
        return {}
    rows = await session.execute(
        select(_NODES.c.cache_signature, _NODES.c.id, _NODES.c.outputs)
        .where(
            _NODES.c.cache_signature.in_(wanted),
            _NODES.c.status == NodeStatus.SUCCEEDED.value,
        )
        .order_by(_NODES.c.id.desc())
    )
    found: dict[str, tuple[str, dict[str, Any]]] = {}
    for signature, row_id, outputs in rows:
        found.setdefault(signature, (row_id, outputs or {}))
    return found


async def write_slots(
    session: AsyncSession, run_id: str, slots: Iterable[NodeSlot], now: datetime
) -> None:
    """Write every given slot back to its row, in one executemany."""
    params = [
        {
            "b_id": slot.row_id,
            "b_status": slot.status.value,
            "b_attempt": slot.attempt,
            "b_pending_parents": slot.pending,
            "b_outputs": slot.outputs,
            "b_error": slot.error,
            "b_attempts": slot.attempts,
            "b_inputs": slot.inputs,
            "b_started_at": slot.started_at,
            "b_finished_at": slot.finished_at,
            "b_duration_ms": slot.duration_ms,
            "b_retry_at": slot.retry_at,
            "b_wait": slot.wait,
            "b_cache_signature": slot.cache_signature,
            "b_cached_from_id": slot.cached_from_id,
            "b_lease_owner": slot.lease_owner,
            "b_lease_expires_at": slot.lease_expires_at,
            "b_idempotency_key": f"{run_id}:{slot.node_id}:{slot.attempt}",
            "b_now": now,
        }
        for slot in slots
    ]
    if params:
        connection = await session.connection()
        await connection.execute(_WRITE_SLOT, params)


async def write_run(session: AsyncSession, run_id: str, values: dict[str, Any]) -> None:
    """Change the run row; a finished run is never changed again."""
    finished = [
        status.value for status in (RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED)
    ]
    connection = await session.connection()
    await connection.execute(
        update(_RUNS).where(_RUNS.c.id == run_id, _RUNS.c.status.not_in(finished)).values(**values)
    )


async def load_debug(session: AsyncSession, run_id: str) -> DebugState | None:
    row = (
        await session.execute(
            select(_DEBUG.c.id, _DEBUG.c.breakpoints, _DEBUG.c.mode, _DEBUG.c.paused_node_id).where(
                _DEBUG.c.run_id == run_id
            )
        )
    ).first()
    if row is None:
        return None
    return DebugState(
        session_id=row.id,
        breakpoints=frozenset(row.breakpoints or []),
        mode=row.mode,
        paused_node_id=row.paused_node_id,
    )


async def write_debug(
    session: AsyncSession, debug: DebugState, *, status: str, now: datetime
) -> None:
    connection = await session.connection()
    await connection.execute(
        update(_DEBUG)
        .where(_DEBUG.c.id == debug.session_id)
        .values(mode=debug.mode, paused_node_id=debug.paused_node_id, status=status, updated_at=now)
    )
    debug.dirty = False
