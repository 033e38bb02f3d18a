"""Backups: a consistent online copy of a SQLite database, ``pg_dump`` for PostgreSQL (when it
is installed), a check that a backup opens and is whole, and the copy taken before migrating."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import shutil
import sqlite3
import subprocess
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.engine import make_url

from flowloom.exceptions import ConfigurationError, InputError, StorageError
from flowloom.storage.database import Database
from flowloom.storage.durable import fsync_directory
from flowloom.storage.maintenance.files import sqlite_file


@dataclass(frozen=True, slots=True)
class BackupCheck:
    """What ``verify_backup`` found: the backup opened and passed its integrity check."""

    path: Path
    kind: str
    """``sqlite`` or ``pg_dump``."""
    revision: str | None
    """The schema revision the backed-up database was at (SQLite; None if it had none)."""
    tables: int


async def backup_database(db: Database, target: Path) -> Path:
    """Copy the database to the new file ``target`` while others keep using it.

    PostgreSQL: ``pg_dump --format=custom`` when it is installed; otherwise ConfigurationError
    whose message says so and gives the command to run where it is.

    SQLite:

    The copy is one consistent snapshot (SQLite's online backup API, in a single step on a
    connection of its own: in WAL mode writers carry on meanwhile), written under a temporary
    name, fsynced, and only then given the name ``target``, so a crash never leaves a partial
    backup there. An existing ``target`` raises InputError; it is never overwritten. Returns
    the absolute path of the backup.
    """
    if not db.is_sqlite:
        return await asyncio.to_thread(_pg_dump, db.url, Path(target))
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


def _pg_dump(url: str, target: Path) -> Path:
    target = target.absolute()
    if target.exists():
        raise InputError(f"backup target {target} already exists; choose a new path")
    command = pg_dump_command(url, target)
    if shutil.which("pg_dump") is None:
        raise ConfigurationError(
            "pg_dump is not installed here, so flowloom cannot back up this PostgreSQL "
            f"database; install the PostgreSQL client tools, or run where they are: {command}"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    password = make_url(url).password
    if password:
        env["PGPASSWORD"] = str(password)
    done = subprocess.run(
        shlex.split(command), env=env, capture_output=True, text=True, timeout=3600, check=False
    )
    if done.returncode != 0:
        with contextlib.suppress(FileNotFoundError):
            target.unlink()
        raise StorageError(f"pg_dump failed ({done.returncode}): {done.stderr.strip()[:500]}")
    return target


async def verify_backup(path: Path) -> BackupCheck:
    """Open the backup at ``path`` and check it whole: SQLite's ``PRAGMA integrity_check``
    (read-only, the file is not changed), or ``pg_restore --list`` for a pg_dump archive.
    InputError naming what is wrong otherwise."""
    return await asyncio.to_thread(_verify, Path(path))


def _verify(path: Path) -> BackupCheck:
    if not path.is_file():
        raise InputError(f"backup {path} does not exist", field="path")
    with path.open("rb") as file:
        head = file.read(16)
    if head.startswith(b"PGDMP"):
        if shutil.which("pg_restore") is None:
            raise ConfigurationError("pg_restore is not installed here to check a pg_dump archive")
        done = subprocess.run(
            ["pg_restore", "--list", str(path)],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if done.returncode != 0:
            raise InputError(f"backup {path} is damaged: {done.stderr.strip()[:300]}")
        tables = sum(1 for line in done.stdout.splitlines() if " TABLE " in line)
        return BackupCheck(path=path, kind="pg_dump", revision=None, tables=tables)
    if head != b"SQLite format 3\x00":
        raise InputError(f"backup {path} is neither a SQLite database nor a pg_dump archive")
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            problems = [row[0] for row in conn.execute("PRAGMA integrity_check").fetchall()]
            if problems != ["ok"]:
                raise InputError(f"backup {path} fails its integrity check: {problems[:5]}")
            names = {
                row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
            revision = None
            if "alembic_version" in names:
                row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
                revision = None if row is None else str(row[0])
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise InputError(f"backup {path} cannot be read as a database: {exc}") from None
    return BackupCheck(path=path, kind="sqlite", revision=revision, tables=len(names))


async def backup_before_migrate(
    db: Database, folder: Path, *, at: str | None, head: str
) -> Path | None:
    """Back up a database that is about to be migrated from revision ``at`` to ``head`` into
    ``folder`` (named for both revisions and the time); None when there is nothing to keep:
    a new database (``at`` None), one already at ``head``, or an in-memory one."""
    if at is None or at == head:
        return None
    if db.is_sqlite and sqlite_file(db) is None:
        return None
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    suffix = ".db" if db.is_sqlite else ".dump"
    return await backup_database(db, folder / f"flowloom-{at}-before-{head}-{stamp}{suffix}")


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
