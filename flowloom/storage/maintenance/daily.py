"""The maintenance pass a server runs once a day: retention, expiry, purges.

One pass (``run_maintenance``) reads the instance's retention settings and then, each step in
small paced batches (see BatchPacer):

- deletes finished runs older than ``retain_runs_days`` (archived first to JSON Lines when an
  archive folder is configured; PENDING, RUNNING and WAITING runs always stay),
- clears node inputs and outputs older than ``retain_node_outputs_days``,
- deletes usage, audit, generation and validation rows past their settings,
- purges expired and revoked sessions and expired memory entries,
- marks subscriptions whose period ended as ``expired`` (their users fall back to the default
  package; limits already stopped counting them when the period ended).

A pass writes one audit entry (``system.maintenance``, no actor) with what it did.
``MaintenanceLoop`` runs a pass shortly after start and then every ``interval_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import update

from flowloom.storage.blobs import BlobStore
from flowloom.storage.database import Database
from flowloom.storage.enums import SubscriptionStatus
from flowloom.storage.maintenance.prune import prune_runs
from flowloom.storage.maintenance.retention import (
    RETAINED_TABLES,
    clear_node_outputs,
    prune_table,
)
from flowloom.storage.repos.audit import AuditRepo
from flowloom.storage.repos.memory import purge_expired_memory
from flowloom.storage.repos.sessions import purge_expired_sessions
from flowloom.storage.repos.system_settings import InstanceSettings, SystemSettingsRepo
from flowloom.storage.tables import UserSubscription
from flowloom.storage.tables.base import utcnow

__all__ = ["MaintenanceLoop", "MaintenanceReport", "expire_subscriptions", "run_maintenance"]

_log = logging.getLogger(__name__)


@dataclass(slots=True)
class MaintenanceReport:
    """What one pass did."""

    started_at: datetime
    finished_at: datetime | None = None
    runs_deleted: int = 0
    node_outputs_cleared: int = 0
    rows_deleted: dict[str, int] = field(default_factory=dict)
    """Per table (usage, audit_log, ...), the rows deleted for being older than kept."""
    sessions_purged: int = 0
    memory_purged: int = 0
    subscriptions_expired: int = 0
    archive_files: list[str] = field(default_factory=list)
    error: str | None = None
    """Set when the pass stopped early; what it had done by then is counted above."""


async def expire_subscriptions(db: Database, *, now: datetime) -> int:
    """Mark every active subscription whose end date has passed as ``expired``; how many."""
    async with db.write() as session:
        result = await session.execute(
            update(UserSubscription)
            .where(
                UserSubscription.status == SubscriptionStatus.ACTIVE,
                UserSubscription.end_date.is_not(None),
                UserSubscription.end_date <= now,
            )
            .values(status=SubscriptionStatus.EXPIRED, updated_at=now)
            .execution_options(synchronize_session=False)
        )
    return int(getattr(result, "rowcount", 0) or 0)


async def run_maintenance(
    db: Database,
    *,
    blob_store: BlobStore | None = None,
    archive_dir: Path | None = None,
    now: datetime | None = None,
) -> MaintenanceReport:
    """One pass at ``now`` (default: the current time); see the module docstring."""
    at = now or utcnow()
    report = MaintenanceReport(started_at=utcnow())
    try:
        async with db.read() as session:
            kept = await SystemSettingsRepo(session).read()
        await _retention(db, kept, at, report, blob_store=blob_store, archive_dir=archive_dir)
        async with db.write() as session:
            report.sessions_purged = await purge_expired_sessions(session, before=at)
        async with db.write() as session:
            report.memory_purged = await purge_expired_memory(session, now=at)
        report.subscriptions_expired = await expire_subscriptions(db, now=at)
    except Exception as exc:
        _log.exception("the maintenance pass stopped early")
        report.error = f"{type(exc).__name__}: {exc}"[:500]
    report.finished_at = utcnow()
    await _record(db, report)
    return report


async def _retention(
    db: Database,
    kept: InstanceSettings,
    at: datetime,
    report: MaintenanceReport,
    *,
    blob_store: BlobStore | None,
    archive_dir: Path | None,
) -> None:
    if kept.retain_runs_days is not None:
        pruned = await prune_runs(
            db,
            older_than=timedelta(days=kept.retain_runs_days),
            archive_dir=archive_dir,
            blob_store=blob_store,
            now=at,
        )
        report.runs_deleted = pruned.runs
        report.archive_files = [str(path) for path in pruned.archive_files]
    if kept.retain_node_outputs_days is not None:
        report.node_outputs_cleared = await clear_node_outputs(
            db, cutoff=at - timedelta(days=kept.retain_node_outputs_days)
        )
    for retained in RETAINED_TABLES:
        days = getattr(kept, retained.setting)
        if days is not None:
            report.rows_deleted[retained.table.name] = await prune_table(
                db, retained, cutoff=at - timedelta(days=days)
            )


async def _record(db: Database, report: MaintenanceReport) -> None:
    details = {
        "runs_deleted": report.runs_deleted,
        "node_outputs_cleared": report.node_outputs_cleared,
        "rows_deleted": report.rows_deleted,
        "sessions_purged": report.sessions_purged,
        "memory_purged": report.memory_purged,
        "subscriptions_expired": report.subscriptions_expired,
        "error": report.error,
    }
    with contextlib.suppress(Exception):
        async with db.write() as session:
            await AuditRepo(session).record(
                user_id=None, action="system.maintenance", details=details
            )


class MaintenanceLoop:
    """Runs ``run_maintenance`` ``first_delay_s`` after ``start`` and then every ``interval_s``;
    ``last`` is the newest pass's report."""

    def __init__(
        self,
        db: Database,
        *,
        interval_s: float,
        first_delay_s: float = 60.0,
        blob_store: BlobStore | None = None,
        archive_dir: Path | None = None,
    ) -> None:
        if interval_s <= 0 or first_delay_s < 0:
            raise ValueError("interval_s must be positive and first_delay_s not negative")
        self.db = db
        self.interval_s = interval_s
        self.first_delay_s = first_delay_s
        self.blob_store = blob_store
        self.archive_dir = archive_dir
        self.last: MaintenanceReport | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is not None:
            raise RuntimeError("the maintenance loop is already running")
        self._task = asyncio.create_task(self._run(), name="flowloom-maintenance")

    async def stop(self) -> None:
        """Stop at once; a pass in progress is cut between two batches (each is complete)."""
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def _run(self) -> None:
        await asyncio.sleep(self.first_delay_s)
        while True:
            self.last = await run_maintenance(
                self.db, blob_store=self.blob_store, archive_dir=self.archive_dir
            )
            await asyncio.sleep(self.interval_s)
