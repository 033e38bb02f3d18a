"""The instance's health at a glance, for its administrators: the queue, what runs now, the
workers driving it (distributed mode), the database's size, failed runs per hour over the last
day, and the last maintenance pass."""

from datetime import timedelta
from typing import Annotated, Final

from fastapi import APIRouter, Query
from sqlalchemy import func, select

from flowloom.api.deps import AppStateDep, DatabaseDep, InstanceAdmin
from flowloom.api.schemas.admin_health import (
    DurationReport,
    Durations,
    HourErrors,
    InstanceHealth,
    MaintenanceSummary,
    RunCounts,
    WorkerLoad,
)
from flowloom.storage.enums import ACTIVE_RUN_STATUSES, NodeStatus, RunStatus
from flowloom.storage.maintenance import database_bytes
from flowloom.storage.repos.run_stats import DurationStats, node_type_durations, workflow_durations
from flowloom.storage.tables import NodeExecution, WorkflowRun
from flowloom.storage.tables.base import utcnow

__all__ = ["router"]

router = APIRouter(prefix="/admin", tags=["admin"])

_HOURS: Final = 24
_MOST_FAILURES_READ: Final = 50_000


@router.get("/health")
async def read_instance_health(admin: InstanceAdmin, state: AppStateDep) -> InstanceHealth:
    db = state.db
    now = utcnow()
    since = (now - timedelta(hours=_HOURS - 1)).replace(minute=0, second=0, microsecond=0)
    async with db.read() as session:
        by_status = dict(
            (
                await session.execute(
                    select(WorkflowRun.status, func.count())
                    .where(WorkflowRun.status.in_(ACTIVE_RUN_STATUSES))
                    .group_by(WorkflowRun.status)
                )
            ).all()
        )
        failed_at = list(
            await session.scalars(
                select(WorkflowRun.created_at)
                .where(WorkflowRun.created_at >= since, WorkflowRun.status == RunStatus.FAILED)
                .limit(_MOST_FAILURES_READ)
            )
        )
        workers = None
        if state.settings.executor == "celery":
            workers = [
                WorkerLoad(name=str(name)[:200], running_nodes=int(count))
                for name, count in (
                    await session.execute(
                        select(NodeExecution.lease_owner, func.count())
                        .where(
                            NodeExecution.status == NodeStatus.RUNNING,
                            NodeExecution.lease_expires_at > now,
                        )
                        .group_by(NodeExecution.lease_owner)
                    )
                ).all()
                if name
            ]
    hours = {since + timedelta(hours=i): 0 for i in range(_HOURS)}
    for moment in failed_at:
        hour = moment.replace(minute=0, second=0, microsecond=0)
        if hour in hours:
            hours[hour] += 1
    last = state.maintenance.last if state.maintenance is not None else None
    return InstanceHealth(
        executor=state.settings.executor,
        runs=RunCounts(
            queued=int(by_status.get(RunStatus.PENDING, 0)),
            running=int(by_status.get(RunStatus.RUNNING, 0)),
            waiting=int(by_status.get(RunStatus.WAITING, 0)),
        ),
        workers=workers,
        database_kind="sqlite" if db.is_sqlite else "postgresql",
        database_bytes=sum((await database_bytes(db)).values()),
        errors_per_hour=[HourErrors(hour=h, failed_runs=n) for h, n in hours.items()],
        failed_runs_24h=sum(hours.values()),
        maintenance_interval_s=state.settings.maintenance_interval_s,
        last_maintenance=None
        if last is None
        else MaintenanceSummary(
            started_at=last.started_at,
            finished_at=last.finished_at,
            runs_deleted=last.runs_deleted,
            node_outputs_cleared=last.node_outputs_cleared,
            rows_deleted=last.rows_deleted,
            sessions_purged=last.sessions_purged,
            memory_purged=last.memory_purged,
            subscriptions_expired=last.subscriptions_expired,
            error=last.error,
        ),
    )


def _durations(rows: list[DurationStats]) -> list[Durations]:
    return [
        Durations(
            key=r.key,
            name=r.name,
            finished=r.finished,
            failed=r.failed,
            failure_rate=r.failure_rate,
            mean_ms=r.mean_ms,
            p95_ms=r.p95_ms,
        )
        for r in rows
    ]


@router.get("/health/durations")
async def read_durations(
    admin: InstanceAdmin,
    db: DatabaseDep,
    hours: Annotated[int, Query(ge=1, le=24 * 30)] = 24,
) -> DurationReport:
    """Mean and p95 duration and failure rate per workflow and per node type, over the runs
    created in the last ``hours`` (seed 003's monitoring queries)."""
    since = utcnow() - timedelta(hours=hours)
    async with db.read() as session:
        workflows, cut_runs = await workflow_durations(session, since=since)
        nodes, cut_nodes = await node_type_durations(session, since=since)
    return DurationReport(
        since=since,
        workflows=_durations(workflows),
        node_types=_durations(nodes),
        truncated=cut_runs or cut_nodes,
    )
