"""Backups: a consistent online copy of a SQLite database; PostgreSQL is pointed at pg_dump."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import sqlite3
import tempfile
from pathlib import Path

from sqlalchemy.engine import make_url

from flowloom.exceptions import ConfigurationError, InputError, StorageError
from flowloom.storage.database import Database
from flowloom.storage.durable import fsync_directory
from flowloom.storage.maintenance.files import sqlite_file


async def backup_database(db: Database, target: Path) -> Path:
    """Copy a SQLite database to the new file ``target`` while others keep using it.

    The copy is one consistent snapshot (SQLite's online backup API, in a single step on a
    connection of its own: in WAL mode writers carry on meanwhile), written under a temporary
    name, fsynced, and only then given the name ``target``, so a crash never leaves a partial
    backup there. An existing ``target`` raises InputError; it is never overwritten. Returns
    the absolute path of the backup.

    PostgreSQL databases raise ConfigurationError whose message is the pg_dump command to use.
    """
    if not db.is_sqlite:
        raise ConfigurationError(
            "flowloom backs up SQLite databases only; back up this PostgreSQL database with: "
            + pg_dump_command(db.url, target)
        )
    source = sqlite_file(db)
    if source is None:
        raise InputError("an in-memory SQLite database has no file to back up")
    return await asyncio.to_thread(_sqlite_backup, source, Path(target))


def _sqlite_backup(source: Path, target: Path) -> Path:
    target = target.absolute()
    if target.exists() or target.is_symlink():
        raise InputError(f"backup target {target} already exists; choose a new path")
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    temp = Path(temp_name)
    try:
        src = sqlite3.connect(source, timeout=30)
        dst = sqlite3.connect(temp)
        try:
            # pages=-1: one step, one read snapshot. Stepwise copies restart on every write.
            src.backup(dst, pages=-1)
            # The copy keeps the source's WAL mode; make it one self-contained file.
            dst.execute("PRAGMA journal_mode = DELETE").fetchall()
        finally:
            dst.close()
            src.close()
        with temp.open("rb+") as file:
            os.fsync(file.fileno())
        try:
            # link() fails if target exists, where rename() would silently replace it.
            os.link(temp, target)
        except FileExistsError:
            raise InputError(f"backup target {target} already exists; choose a new path") from None
        fsync_directory(target.parent)
        return target
    except sqlite3.Error as exc:
        raise StorageError(f"backup of {source} failed: {exc}") from None
    finally:
        for leftover in (temp, Path(f"{temp}-journal"), Path(f"{temp}-wal"), Path(f"{temp}-shm")):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()


def pg_dump_command(url: str, target: Path) -> str:
    """The pg_dump command line that backs up the PostgreSQL database at ``url`` into
    ``target``, without the password (pg_dump reads it from PGPASSWORD or ~/.pgpass)."""
    parsed = make_url(url)
    parts = ["pg_dump", "--format=custom", f"--file={target}"]
    if parsed.host:
        parts.append(f"--host={parsed.host}")
    if parsed.port:
        parts.append(f"--port={parsed.port}")
    if parsed.username:
        parts.append(f"--username={parsed.username}")
    parts.append(parsed.database or "postgres")
    return shlex.join(parts)
