"""The data directory and every data file are the owner's alone (0700 folders, 0600 files),
whatever the process umask: the SQLite file and its -wal and -shm, the blob folders and blob
files, and the secret key."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from flowloom.settings import Settings
from flowloom.storage.blobs import FileBlobStore
from flowloom.storage.database import Database
from flowloom.storage.migrate import upgrade_database


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    """A umask that would leave new files readable and writable by everyone."""
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


async def test_a_new_data_dir_and_sqlite_files_are_private(
    tmp_path: Path, permissive_umask: None
) -> None:
    settings = Settings(data_dir=tmp_path / "data")

    db = Database.from_settings(settings)
    try:
        await upgrade_database(db)
        async with db.write() as session:
            await session.execute(text("CREATE TABLE IF NOT EXISTS probe (x INTEGER)"))
            await session.execute(text("INSERT INTO probe VALUES (1)"))
        database = tmp_path / "data" / "flowloom.db"
        wal = database.with_name("flowloom.db-wal")
        shm = database.with_name("flowloom.db-shm")
        assert wal.exists()
        assert shm.exists()
        assert {p.name: mode(p) for p in (database, wal, shm)} == {
            "flowloom.db": 0o600,
            "flowloom.db-wal": 0o600,
            "flowloom.db-shm": 0o600,
        }
    finally:
        await db.dispose()
    settings.load_secret_key()

    assert mode(tmp_path / "data") == 0o700
    assert mode(settings.blob_dir) == 0o700
    assert mode(tmp_path / "data" / "secret.key") == 0o600


def test_an_existing_open_data_dir_is_tightened(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "blobs").mkdir(parents=True)
    (data / "flowloom.db").write_bytes(b"")
    (data / "flowloom.db-wal").write_bytes(b"")
    for path, wide in ((data, 0o755), (data / "blobs", 0o777)):
        os.chmod(path, wide)
    os.chmod(data / "flowloom.db", 0o644)
    os.chmod(data / "flowloom.db-wal", 0o666)

    Settings(data_dir=data).ensure_data_dir()

    assert mode(data) == mode(data / "blobs") == 0o700
    assert mode(data / "flowloom.db") == mode(data / "flowloom.db-wal") == 0o600


def test_blob_folders_and_files_are_private(tmp_path: Path, permissive_umask: None) -> None:
    root = tmp_path / "store" / "blobs"
    store = FileBlobStore(root)

    sha256 = store.put(b"private bytes")

    path = store.path_for(sha256)
    assert mode(path) == 0o600
    for folder in (root, path.parent.parent, path.parent):
        assert mode(folder) == 0o700, folder
    # A second blob in a folder that exists already is private too.
    other = store.path_for(store.put(b"more private bytes"))
    assert mode(other) == 0o600


def test_a_sqlite_file_elsewhere_is_private_too(tmp_path: Path, permissive_umask: None) -> None:
    database = tmp_path / "elsewhere" / "app.db"
    database.parent.mkdir()

    Settings(data_dir=tmp_path / "data", database_url=f"sqlite:///{database}").ensure_data_dir()

    assert mode(database) == 0o600
    assert Settings(database_url="postgresql://u@h/db").sqlite_path is None
