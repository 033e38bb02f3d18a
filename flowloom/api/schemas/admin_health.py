"""The instance's health for administrators: runs, workers, errors, maintenance, durations."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from flowloom.api.schemas.common import ApiModel


class RunCounts(ApiModel):
    queued: int
    """PENDING: waiting for a slot (in process) or a worker (distributed)."""
    running: int
    waiting: int
    """Parked on an approval, a delay or an external event."""


class WorkerLoad(ApiModel):
    name: str
    running_nodes: int


class HourErrors(ApiModel):
    hour: datetime
    """The start of the hour (UTC)."""
    failed_runs: int


class MaintenanceSummary(ApiModel):
    started_at: datetime
    finished_at: datetime | None
    runs_deleted: int
    node_outputs_cleared: int
    rows_deleted: dict[str, int]
    sessions_purged: int
    memory_purged: int
    subscriptions_expired: int
    error: str | None


class InstanceHealth(ApiModel):
    executor: Literal["local", "celery"]
    runs: RunCounts
    workers: list[WorkerLoad] | None
    """Distributed mode: each worker holding node leases now; null in process."""
    database_kind: Literal["sqlite", "postgresql"]
    database_bytes: int
    errors_per_hour: list[HourErrors]
    """The last 24 hours, oldest first, every hour present."""
    failed_runs_24h: int
    maintenance_interval_s: float
    """0: the server runs no maintenance pass (``flowloom db maintain`` does)."""
    last_maintenance: MaintenanceSummary | None
    """The last pass this server ran since it started."""


class Durations(ApiModel):
    key: str
    """The workflow id, or the node type."""
    name: str
    finished: int
    failed: int
    failure_rate: float
    """Failed over completed plus failed, 0 to 1 (cancelled ones count for neither)."""
    mean_ms: float | None
    p95_ms: float | None


class DurationReport(ApiModel):
    since: datetime
    workflows: list[Durations]
    """Most failures first, then the slowest p95."""
    node_types: list[Durations]
    truncated: bool
    """The window held more rows than are summarised; its newest were."""
