"""``flowloom db ...``: migrate, prune with an archive, back up, and inspect the database."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from flowloom.cli.common import open_database
from flowloom.settings import Settings
from flowloom.storage.blobs import FileBlobStore
from flowloom.storage.maintenance import (
    PruneReport,
    TableStat,
    backup_database,
    prune_runs,
    table_stats,
)
from flowloom.storage.migrate import current_revision, upgrade_database

__all__ = ["backup", "prune", "stats", "upgrade"]


async def upgrade(settings: Settings) -> str:
    """Migrate the database to the newest schema; the revision it is at afterwards."""
    async with open_database(settings) as db:
        await upgrade_database(db)
        return await current_revision(db) or "(none)"


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


async def backup(settings: Settings, *, target: Path) -> Path:
    """A consistent copy of a running SQLite database (PostgreSQL: says how to use pg_dump)."""
    async with open_database(settings) as db:
        return await backup_database(db, target)


async def stats(settings: Settings) -> list[TableStat]:
    async with open_database(settings) as db:
        return await table_stats(db)
