"""What this process commits to a SQLite file reaches the file, whatever other processes do.

SQLite in WAL mode keeps a shared POSIX lock on the database file for as long as a connection
is open; a process that closes its connection and can take the exclusive lock concludes it was
the last one, checkpoints, and deletes the ``-wal`` and ``-shm`` files. POSIX drops every lock a
process holds on a file when it closes ANY descriptor of that file, and SQLite does not notice:
so a process that opens and closes its own database file while connected (as
``Settings.ensure_data_dir`` did, called by ``load_secret_key`` when the engine starts) loses
its lock, and the first other process to close a connection (the crash suite's outage, a
sqlite3 shell, a backup) deletes the WAL under it. Its commits then go to the deleted file:
its own connections read them, no other process does, and a kill loses every one of them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from outagekit import sqlite_in_another_process
from sqlalchemy import text
from sqlalchemy.engine import Connection

from flowloom.settings import Settings
from flowloom.storage.database import Database
from flowloom.storage.migrate import upgrade_database
from flowloom.storage.vault import Vault


def _insert(value: str) -> Callable[[Connection], None]:
    def write(conn: Connection) -> None:
        conn.exec_driver_sql("INSERT INTO probe (value) VALUES (?)", (value,))

    return write


async def test_commits_after_the_data_dir_is_checked_again_are_seen_by_other_processes(
    tmp_path: Path,
) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    path = settings.sqlite_path
    assert path is not None
    db = Database.from_settings(settings)
    try:
        await upgrade_database(db)
        async with db.write() as session:
            await session.execute(text("CREATE TABLE probe (value TEXT NOT NULL)"))
        await db.run_write(_insert("before"), inline=True)  # the fast path's connections open

        # What the engine does when it starts, with the database already open: its vault
        # loads the secret key, which checks the data dir (and the database file) again.
        Vault.from_settings(settings)
        settings.ensure_data_dir()
        # Another process takes the write lock, gives it back and closes its connection (the
        # crash suite's outage, or anyone's sqlite3 shell).
        sqlite_in_another_process(path, ["BEGIN EXCLUSIVE", "ROLLBACK"])

        await db.run_write(_insert("inline"), inline=True)  # the tick's way
        await db.run_write(_insert("writer thread"))
        async with db.write() as session:  # the ORM's way (start_run, the API)
            await session.execute(text("INSERT INTO probe (value) VALUES ('orm')"))

        (found,) = sqlite_in_another_process(path, ["SELECT value FROM probe"])
        assert sorted(value for (value,) in found) == [
            "before",
            "inline",
            "orm",
            "writer thread",
        ], "a commit this process saw is not in the file"
        assert path.with_name(path.name + "-wal").exists(), "the WAL was deleted under us"
        mine = await db.run_read(lambda conn: conn.exec_driver_sql("SELECT value FROM probe").all())
        assert sorted(value for (value,) in mine) == ["before", "inline", "orm", "writer thread"]
    finally:
        await db.dispose()
