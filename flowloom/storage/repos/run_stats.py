"""How long runs and nodes take and how often they fail, per workflow and per node type, over a
recent window (seed 003's monitoring queries): count, failures, failure rate, mean and p95.

The window is a range of ``workflow_runs.created_at`` (indexed); node executions are reached
through their runs. Percentiles are computed here from the window's durations, the same way on
SQLite and PostgreSQL; a window holding more than ``MOST_ROWS`` rows is summarised from its
newest ``MOST_ROWS`` (``truncated`` says so).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from flowloom.storage.enums import NodeStatus, RunStatus
from flowloom.storage.tables import NodeExecution, Workflow, WorkflowRun

__all__ = ["MOST_ROWS", "DurationStats", "node_type_durations", "workflow_durations"]

MOST_ROWS: Final = 200_000


@dataclass(frozen=True, slots=True)
class DurationStats:
    key: str
    """The workflow id, or the node type."""
    name: str
    finished: int
    failed: int
    failure_rate: float
    """Failed over completed plus failed (cancelled ones count for neither)."""
    mean_ms: float | None
    p95_ms: float | None
    """The 95th percentile (nearest rank) of the durations known."""


def _p95(ordered: list[int]) -> float | None:
    if not ordered:
        return None
    return float(ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)])


def _summarise(
    rows: Iterable[tuple[str, str, str, int | None]], failed_status: str, ok_status: str
) -> list[DurationStats]:
    groups: dict[str, list[tuple[str, int | None]]] = defaultdict(list)
    names: dict[str, str] = {}
    for key, name, status, duration_ms in rows:
        groups[key].append((status, duration_ms))
        names[key] = name
    stats = []
    for key, items in groups.items():
        failed = sum(1 for status, _ in items if status == failed_status)
        judged = failed + sum(1 for status, _ in items if status == ok_status)
        durations = sorted(d for _, d in items if d is not None)
        stats.append(
            DurationStats(
                key=key,
                name=names[key],
                finished=len(items),
                failed=failed,
                failure_rate=failed / judged if judged else 0.0,
                mean_ms=sum(durations) / len(durations) if durations else None,
                p95_ms=_p95(durations),
            )
        )
    return sorted(stats, key=lambda s: (-s.failed, -(s.p95_ms or 0), s.name))


async def workflow_durations(
    session: AsyncSession, *, since: datetime
) -> tuple[list[DurationStats], bool]:
    """Per workflow, the finished runs created since ``since``; and whether rows were cut."""
    rows = (
        await session.execute(
            select(
                WorkflowRun.workflow_id, Workflow.name, WorkflowRun.status, WorkflowRun.duration_ms
            )
            .join(Workflow, Workflow.id == WorkflowRun.workflow_id)
            .where(
                WorkflowRun.created_at >= since,
                WorkflowRun.status.in_(
                    (RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED)
                ),
            )
            .order_by(WorkflowRun.created_at.desc())
            .limit(MOST_ROWS + 1)
        )
    ).all()
    cut = len(rows) > MOST_ROWS
    summary = _summarise(
        ((r[0], r[1], r[2], r[3]) for r in rows[:MOST_ROWS]), RunStatus.FAILED, RunStatus.COMPLETED
    )
    return summary, cut


async def node_type_durations(
    session: AsyncSession, *, since: datetime
) -> tuple[list[DurationStats], bool]:
    """Per node type, the node executions that succeeded or failed in runs created since
    ``since``; and whether rows were cut."""
    rows = (
        await session.execute(
            select(NodeExecution.node_type, NodeExecution.status, NodeExecution.duration_ms)
            .join(WorkflowRun, WorkflowRun.id == NodeExecution.run_id)
            .where(
                WorkflowRun.created_at >= since,
                NodeExecution.status.in_((NodeStatus.SUCCEEDED, NodeStatus.FAILED)),
            )
            .limit(MOST_ROWS + 1)
        )
    ).all()
    cut = len(rows) > MOST_ROWS
    summary = _summarise(
        ((r[0], r[0], r[1], r[2]) for r in rows[:MOST_ROWS]),
        NodeStatus.FAILED,
        NodeStatus.SUCCEEDED,
    )
    return summary, cut
