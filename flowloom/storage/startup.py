"""What a server does to its database before serving: ``prepare_database(db, settings)``.

An embedded SQLite database is brought to the newest revision: left alone when it is there
already (one read of its revision), created from the models when it is empty (a first start),
and otherwise copied aside (``backup_before_migrate``) and migrated. A PostgreSQL database must
already be at the newest revision (``flowloom db upgrade``): migrating a shared database is an
operator's step, not a side effect of starting one of its servers.
"""

from __future__ import annotations

import logging

from flowloom.exceptions import ConfigurationError
from flowloom.settings import Settings
from flowloom.storage.database import Database
from flowloom.storage.maintenance.backup import backup_before_migrate
from flowloom.storage.migrate import current_revision, install_or_upgrade
from flowloom.storage.revision import HEAD_REVISION

__all__ = ["prepare_database"]

_log = logging.getLogger(__name__)


async def prepare_database(db: Database, settings: Settings) -> None:
    """Make ``db`` ready to serve (see the module docstring); ConfigurationError for a
    PostgreSQL database that is not at the newest revision."""
    at, head = await current_revision(db), HEAD_REVISION
    if at == head:
        return
    if not db.is_sqlite:
        raise ConfigurationError(
            f"the database is at revision {at or 'none'}, not {head}: "
            "run `flowloom db upgrade` first"
        )
    if settings.backup_before_migrate:
        copy = await backup_before_migrate(db, settings.data_dir / "backups", at=at, head=head)
        if copy is not None:
            _log.warning("before migrating, the database was copied to %s", copy)
    await install_or_upgrade(db)
