"""Node executions: the engine's per-node checkpoints, claimed under a lease and fenced by attempt.

Engine-internal and NOT owner-scoped: the engine reaches a node execution through a run it has
already loaded for its owner (``RunRepo``), so it knows whose it is. Nothing that answers a user
request may call this repository with an id the user supplied.

The protocol, one transaction per step (DESIGN.md §3, §6):

- ``mark_running`` claims a READY node for one attempt, setting the lease;
- ``finish`` writes the result only if that attempt still holds the claim (the attempt number is
  the fencing token: a stale or duplicate worker finds it changed and writes nothing);
- ``release_children`` in the same transaction decrements the children's unfinished-parent
  counters and turns those at zero READY.

Lease times are on the database clock on PostgreSQL, where workers on several machines compare
them; on SQLite (one machine by construction) the process clock is the database clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Interval, case, func, literal, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from flowloom.exceptions import InputError, NotFound
from flowloom.storage.enums import NodeStatus
from flowloom.storage.tables import NodeExecution, WorkflowRun
from flowloom.storage.tables.base import UTCDateTime, utcnow

__all__ = ["FINISH_STATUSES", "NodeExecutionRepo"]

FINISH_STATUSES = frozenset(
    {
        NodeStatus.SUCCEEDED,
        NodeStatus.FAILED,
        NodeStatus.SKIPPED,
        NodeStatus.CANCELLED,
        NodeStatus.CACHED,
        NodeStatus.WAITING,
    }
)
"""What ``finish`` may write: how an attempt ends (WAITING parks the node, freeing its slot)."""


class NodeExecutionRepo:
    """Checkpoint rows of nodes in runs, for the engine. Methods flush, never commit."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, *, run_id: str, node_id: str) -> NodeExecution:
        """The checkpoint of ``node_id`` in ``run_id``, or NotFound."""
        row = await self.session.scalar(
            select(NodeExecution).where(
                NodeExecution.run_id == run_id, NodeExecution.node_id == node_id
            )
        )
        if row is None:
            raise NotFound("node execution", f"{run_id}/{node_id}")
        return row

    async def mark_running(
        self, *, run_id: str, node_id: str, attempt: int, lease_owner: str, lease_s: float
    ) -> bool:
        """Claim the node for ``attempt``: True if this call took it, False if it was not free.

        Succeeds only while the node is READY at exactly ``attempt``; it then becomes RUNNING
        with ``lease_owner``, ``lease_expires_at`` = now + ``lease_s`` and ``started_at`` = now.
        A duplicate delivery, or one for an older attempt, gets False and must do nothing.
        """
        if not lease_s > 0:
            raise InputError("lease_s must be positive", field="lease_s")
        now, expires_at = self._clock(0.0, lease_s)
        result = await self.session.execute(
            update(NodeExecution)
            .where(
                NodeExecution.run_id == run_id,
                NodeExecution.node_id == node_id,
                NodeExecution.status == NodeStatus.READY,
                NodeExecution.attempt == attempt,
            )
            .values(
                status=NodeStatus.RUNNING,
                lease_owner=lease_owner,
                lease_expires_at=expires_at,
                started_at=now,
                finished_at=None,
                duration_ms=None,
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        )
        return _rowcount(result) == 1

    async def finish(
        self,
        *,
        run_id: str,
        node_id: str,
        attempt: int,
        status: NodeStatus,
        outputs: dict[str, Any] | None = None,
        error: dict[str, Any] | None = None,
    ) -> bool:
        """End ``attempt`` with ``status``: True if written, False if the attempt lost its claim.

        Writes only while the node is RUNNING at exactly ``attempt`` (fencing: once the lease
        sweep re-queues the node as attempt + 1, the old attempt's late result is dropped). It
        clears the lease, stores ``outputs`` and ``error``, sets ``finished_at`` and
        ``duration_ms``, and appends ``{attempt, status, started_at, finished_at, duration_ms,
        error}`` to ``attempts``. ``status`` must be one of ``FINISH_STATUSES``.
        """
        try:
            status = NodeStatus(status)
        except ValueError:
            raise InputError(f"unknown node status {status!r}", field="status") from None
        if status not in FINISH_STATUSES:
            raise InputError(f"an attempt cannot finish as {status}", field="status")
        held = (
            NodeExecution.run_id == run_id,
            NodeExecution.node_id == node_id,
            NodeExecution.status == NodeStatus.RUNNING,
            NodeExecution.attempt == attempt,
        )
        # Read the clock in the same statement as the row, so duration and finished_at agree
        # with the database clock that set started_at.
        found = (
            await self.session.execute(
                select(NodeExecution.started_at, NodeExecution.attempts, *self._clock(0.0)).where(
                    *held
                )
            )
        ).first()
        if found is None:
            return False
        started_at, attempts, now = found
        duration_ms = (
            None if started_at is None else max(0, round((now - started_at).total_seconds() * 1e3))
        )
        record = {
            "attempt": attempt,
            "status": str(status),
            "started_at": None if started_at is None else started_at.isoformat(),
            "finished_at": now.isoformat(),
            "duration_ms": duration_ms,
            "error": error,
        }
        # The WHERE repeats the claim: if another worker re-queued the node between the read
        # and this write, the update matches nothing and the stale result is dropped.
        result = await self.session.execute(
            update(NodeExecution)
            .where(*held)
            .values(
                status=status,
                outputs=outputs,
                error=error,
                attempts=[*attempts, record],
                lease_owner=None,
                lease_expires_at=None,
                finished_at=now,
                duration_ms=duration_ms,
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        )
        return _rowcount(result) == 1

    async def release_children(self, *, run_id: str, child_node_ids: Sequence[str]) -> list[str]:
        """One parent finished: decrement each PENDING child's unfinished-parent count.

        One UPDATE. A child whose count reaches zero becomes READY; the ids of those are
        returned, for the engine to dispatch after the transaction commits. Children that are
        not PENDING (skipped, cancelled) are left alone.
        """
        if not child_node_ids:
            return []
        remaining = NodeExecution.pending_parents - 1
        result = await self.session.execute(
            update(NodeExecution)
            .where(
                NodeExecution.run_id == run_id,
                NodeExecution.node_id.in_(list(child_node_ids)),
                NodeExecution.status == NodeStatus.PENDING,
                NodeExecution.pending_parents > 0,
            )
            .values(
                pending_parents=remaining,
                status=case((remaining == 0, NodeStatus.READY.value), else_=NodeExecution.status),
                updated_at=utcnow(),
            )
            .returning(NodeExecution.node_id, NodeExecution.status)
            .execution_options(synchronize_session=False)
        )
        return sorted(node for node, status in result if status == NodeStatus.READY)

    async def latest_success_outputs(
        self, *, workflow_id: str, node_id: str
    ) -> dict[str, Any] | None:
        """The outputs of ``node_id``'s newest SUCCEEDED or CACHED execution in ``workflow_id``.

        What a NODE-scope run feeds a node from its parents. None if the node never succeeded.
        """
        return await self.session.scalar(
            select(NodeExecution.outputs)
            .join(WorkflowRun, WorkflowRun.id == NodeExecution.run_id)
            .where(
                WorkflowRun.workflow_id == workflow_id,
                NodeExecution.node_id == node_id,
                NodeExecution.status.in_((NodeStatus.SUCCEEDED, NodeStatus.CACHED)),
            )
            .order_by(WorkflowRun.id.desc())
            .limit(1)
        )

    async def find_cached(self, *, cache_signature: str) -> NodeExecution | None:
        """The newest SUCCEEDED execution with ``cache_signature``, or None.

        The signature is the whole key: the cache is shared by every run and every user that
        computes the same signature, so whatever must not be shared belongs in the signature.
        """
        return await self.session.scalar(
            select(NodeExecution)
            .where(
                NodeExecution.cache_signature == cache_signature,
                NodeExecution.status == NodeStatus.SUCCEEDED,
            )
            .order_by(NodeExecution.id.desc())
            .limit(1)
        )

    def _clock(self, *offsets_s: float) -> list[ColumnElement[datetime]]:
        """One reading of the database clock, plus each offset, as SQL expressions."""
        if self.session.get_bind().dialect.name == "postgresql":
            # now() is fixed for the transaction, so every expression sees the same instant.
            now = func.now(type_=UTCDateTime())
            return [
                now + literal(timedelta(seconds=offset), Interval()) if offset else now
                for offset in offsets_s
            ]
        # SQLite has no time arithmetic worth using and lives on this machine: the process
        # clock is its clock.
        reading = utcnow()
        return [literal(reading + timedelta(seconds=o), UTCDateTime()) for o in offsets_s]


def _rowcount(result: Any) -> int:
    return int(result.rowcount)
