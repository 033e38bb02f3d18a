"""Where a SQLite database lives on disk, and how many bytes it takes."""

from __future__ import annotations

import contextlib
from pathlib import Path

from sqlalchemy.engine import make_url

from flowloom.storage.database import Database


def sqlite_file(db: Database) -> Path | None:
    """The SQLite database file, or None for PostgreSQL and in-memory SQLite."""
    if not db.is_sqlite:
        return None
    name = make_url(db.url).database
    if not name or name == ":memory:" or name.startswith("file::memory:"):
        return None
    return Path(name)


def sqlite_bytes(path: Path) -> int:
    total = 0
    for file in (path, Path(f"{path}-wal")):
        with contextlib.suppress(FileNotFoundError):
            total += file.stat().st_size
    return total
