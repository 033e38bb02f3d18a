"""The database's side of distributed mode: which runs need a driver, and queueing them.

The database stays the truth: a run needs a driver when it is PENDING or RUNNING, or WAITING
with something to do (a node answered and READY again, a timed wait that came due, or a
cancellation asked for). Whether somebody already drives it is the claims' question
(``claims.py``), never this module's.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from flowloom.storage.database import Database
from flowloom.storage.enums import NodeStatus, RunStatus
from flowloom.storage.tables import NodeExecution, WorkflowRun
from flowloom.worker.claims import RunClaims

__all__ = ["RunQueue", "runs_needing_a_driver"]


def _due(wait: dict[str, Any] | None, now: datetime) -> bool:
    if not wait or "answer" in wait:
        return False
    raw = wait.get("resume_at")
    return isinstance(raw, str) and datetime.fromisoformat(raw) <= now


async def runs_needing_a_driver(
    db: Database,
    *,
    now: datetime,
    run_ids: Sequence[str] | None = None,
    older_than_s: float = 0.0,
) -> list[str]:
    """The unfinished runs (of ``run_ids``, or all created over ``older_than_s`` ago) that a
    driver has work in: PENDING or RUNNING, or WAITING with a READY node, a due timer, or a
    cancellation requested."""
    query = select(WorkflowRun.id, WorkflowRun.status, WorkflowRun.cancel_requested).where(
        WorkflowRun.status.in_([RunStatus.PENDING, RunStatus.RUNNING, RunStatus.WAITING])
    )
    if run_ids is not None:
        if not run_ids:
            return []
        query = query.where(WorkflowRun.id.in_(list(run_ids)))
    if older_than_s > 0:
        query = query.where(WorkflowRun.created_at < now - timedelta(seconds=older_than_s))
    async with db.read() as session:
        runs = (await session.execute(query)).all()
        needed = [
            run_id
            for run_id, status, cancelling in runs
            if status != RunStatus.WAITING or cancelling
        ]
        waiting = [
            run_id
            for run_id, status, cancelling in runs
            if status == RunStatus.WAITING and not cancelling
        ]
        if waiting:
            nodes = (
                await session.execute(
                    select(NodeExecution.run_id, NodeExecution.status, NodeExecution.wait).where(
                        NodeExecution.run_id.in_(waiting),
                        NodeExecution.status.in_([NodeStatus.READY, NodeStatus.WAITING]),
                    )
                )
            ).all()
            chosen: set[str] = set()
            for run_id, status, wait in nodes:
                if run_id in chosen:
                    continue
                if status == NodeStatus.READY or _due(wait, now):
                    chosen.add(run_id)
                    needed.append(run_id)
    return needed


class RunQueue:
    """Puts ``drive_run`` tasks on the Celery queue; ``send`` is the (blocking) sender."""

    def __init__(
        self, claims: RunClaims, send: Callable[[str], None], *, queued_for_s: float
    ) -> None:
        self.claims = claims
        self._send = send
        self.queued_for_s = queued_for_s
        """How long a queued run is left to its task before a sweep may queue it again."""

    async def put(self, run_id: str, *, always: bool = False) -> bool:
        """Queue a task for the run unless one is queued or a worker drives it (``always``:
        queue anyway, e.g. for an answer or a cancellation); whether a task was sent."""
        marked = await self.claims.mark_queued(run_id, for_s=self.queued_for_s)
        if not (marked or always):
            return False
        # Sending is blocking network I/O (kombu), so it runs beside the event loop.
        try:
            await asyncio.to_thread(self._send, run_id)
        except BaseException:
            # No task is queued after all: a mark left behind would hide the run from the
            # sweep for ``queued_for_s``.
            with contextlib.suppress(Exception):
                await self.claims.unmark_queued(run_id)
            raise
        return True
