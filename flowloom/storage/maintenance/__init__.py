"""Keeping a database healthy: retention with a cold-storage archive, sizes, and backups.

- ``prune_runs`` deletes old runs in short transactions, writing each one to a JSON Lines
  archive first when asked (seed 000's cold storage), removes the blobs only they referenced,
  and gives the space back to the file system on SQLite.
- ``run_maintenance`` is the daily pass (retention of runs, node outputs, usage, audit,
  generation and validation rows; expired sessions, memory and subscriptions), in paced batches;
  ``MaintenanceLoop`` runs it in the server.
- ``table_stats`` and ``database_bytes`` answer "what takes the space" (seed 003's storage query).
- ``backup_database`` copies a live SQLite database consistently; PostgreSQL has pg_dump.
- ``parse_duration`` and ``parse_date`` read the ``--older-than 30d`` and ``--before DATE``
  arguments of those commands, refusing anything ambiguous with an InputError.
"""

from flowloom.storage.maintenance.args import parse_date, parse_duration
from flowloom.storage.maintenance.backup import backup_database, pg_dump_command
from flowloom.storage.maintenance.daily import (
    MaintenanceLoop,
    MaintenanceReport,
    expire_subscriptions,
    run_maintenance,
)
from flowloom.storage.maintenance.prune import (
    ARCHIVE_FORMAT,
    DEFAULT_BLOB_GRACE,
    PruneReport,
    prune_runs,
)
from flowloom.storage.maintenance.stats import TableStat, database_bytes, table_stats

__all__ = [
    "ARCHIVE_FORMAT",
    "DEFAULT_BLOB_GRACE",
    "MaintenanceLoop",
    "MaintenanceReport",
    "PruneReport",
    "TableStat",
    "backup_database",
    "database_bytes",
    "expire_subscriptions",
    "parse_date",
    "parse_duration",
    "pg_dump_command",
    "prune_runs",
    "run_maintenance",
    "table_stats",
]
