"""``flowloom db ...``: migrate, prune with an archive, back up, and inspect the database."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from flowloom.cli.common import open_database
from flowloom.settings import Settings
from flowloom.storage.blobs import FileBlobStore
from flowloom.storage.maintenance import (
    MaintenanceReport,
    PruneReport,
    TableStat,
    backup_database,
    prune_runs,
    run_maintenance,
    table_stats,
)
from flowloom.storage.maintenance.backup import BackupCheck, backup_before_migrate, verify_backup
from flowloom.storage.migrate import current_revision, head_revision, upgrade_database

__all__ = ["backup", "maintain", "prune", "stats", "upgrade"]


async def upgrade(settings: Settings) -> tuple[str, Path | None]:
    """Migrate the database to the newest schema, backed up first (see backup_before_migrate)
    unless the settings say not to; the revision it is at afterwards and the backup."""
    async with open_database(settings) as db:
        copy = None
        if settings.backup_before_migrate:
            copy = await backup_before_migrate(
                db,
                settings.data_dir / "backups",
                at=await current_revision(db),
                head=head_revision(),
            )
        await upgrade_database(db)
        return await current_revision(db) or "(none)", copy


async def prune(
    settings: Settings,
    *,
    older_than: timedelta | None,
    before: datetime | None,
    archive: Path | None,
) -> PruneReport:
    """Delete runs older than ``older_than`` or created ``before`` (archived first if asked)."""
    async with open_database(settings) as db:
        return await prune_runs(
            db,
            older_than=older_than,
            before=before,
            archive_dir=archive,
            blob_store=FileBlobStore(settings.blob_dir),
        )


async def backup(
    settings: Settings, *, target: Path, verify: bool = False
) -> tuple[Path, BackupCheck | None]:
    """A consistent copy of the running database, checked whole when ``verify``."""
    async with open_database(settings) as db:
        written = await backup_database(db, target)
    return written, (await verify_backup(written) if verify else None)


async def maintain(settings: Settings) -> MaintenanceReport:
    """One maintenance pass now (what the server runs daily)."""
    async with open_database(settings) as db:
        return await run_maintenance(
            db,
            blob_store=FileBlobStore(settings.blob_dir),
            archive_dir=settings.retention_archive_dir,
        )


async def stats(settings: Settings) -> list[TableStat]:
    async with open_database(settings) as db:
        return await table_stats(db)
