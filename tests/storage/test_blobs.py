"""The blob store: content addressing, atomic writes, refused keys, and save_artifact's order."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from flowloom.exceptions import InputError, NotFound
from flowloom.ids import new_id
from flowloom.storage.blobs import BlobStore, FileBlobStore, MemoryBlobStore, save_artifact
from flowloom.storage.database import Database
from flowloom.storage.tables import Artifact, User


@pytest.fixture(params=["file", "memory"])
def store(request: pytest.FixtureRequest, blob_dir: Path) -> BlobStore:
    if request.param == "file":
        return FileBlobStore(blob_dir)
    return MemoryBlobStore()


def test_put_returns_the_sha256_and_read_gives_the_bytes_back(store: BlobStore) -> None:
    data = b"\x89PNG fake image bytes"
    sha256 = store.put(data)
    assert sha256 == hashlib.sha256(data).hexdigest()
    assert store.exists(sha256)
    assert store.read(sha256) == data
    with store.open(sha256) as file:
        assert file.read() == data


def test_same_content_is_stored_once(store: BlobStore) -> None:
    first = store.put(b"same")
    second = store.put(b"same")
    assert first == second
    assert store.read(first) == b"same"
    if isinstance(store, MemoryBlobStore):
        assert len(store) == 1


def test_empty_blob_is_a_blob(store: BlobStore) -> None:
    sha256 = store.put(b"")
    assert store.read(sha256) == b""
    assert store.delete(sha256)
    assert not store.exists(sha256)


def test_missing_blob_is_not_found(store: BlobStore) -> None:
    missing = hashlib.sha256(b"never stored").hexdigest()
    assert not store.exists(missing)
    with pytest.raises(NotFound):
        store.read(missing)
    with pytest.raises(NotFound):
        store.open(missing)
    assert store.delete(missing) is False


@pytest.mark.parametrize(
    "key",
    [
        "../../etc/passwd",
        "ab/../../../../etc/passwd" + "0" * 40,
        "/" + "a" * 63,
        "A" * 64,
        "a" * 63,
        "a" * 65,
        "g" * 64,
        "",
        "a" * 64 + "\n",
    ],
)
def test_malformed_keys_are_refused_before_touching_anything(store: BlobStore, key: str) -> None:
    for call in (store.read, store.exists, store.delete, store.open):
        with pytest.raises(InputError, match="SHA-256"):
            call(key)


def test_delete_keeps_a_blob_put_after_the_given_moment(store: BlobStore) -> None:
    sha256 = store.put(b"fresh")
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
    assert store.delete(sha256, only_if_put_before=an_hour_ago) is False
    assert store.exists(sha256)
    in_a_minute = datetime.now(UTC) + timedelta(minutes=1)
    assert store.delete(sha256, only_if_put_before=in_a_minute) is True
    assert not store.exists(sha256)


def test_putting_again_renews_the_blob_against_a_racing_delete(blob_dir: Path) -> None:
    store = FileBlobStore(blob_dir)
    sha256 = store.put(b"old image")
    long_ago = (datetime.now(UTC) - timedelta(days=40)).timestamp()
    os.utime(store.path_for(sha256), (long_ago, long_ago))
    store.put(b"old image")  # a new artifact with the same content is being saved
    assert store.delete(sha256, only_if_put_before=datetime.now(UTC) - timedelta(hours=1)) is False
    assert store.read(sha256) == b"old image"


def test_files_are_fanned_out_by_hash_prefix(blob_dir: Path) -> None:
    store = FileBlobStore(blob_dir)
    sha256 = store.put(b"layout")
    path = store.path_for(sha256)
    assert path == blob_dir / sha256[:2] / sha256[2:4] / sha256
    assert path.read_bytes() == b"layout"
    assert [p.name for p in path.parent.iterdir()] == [sha256]  # no temporary file left behind


def test_a_truncated_file_under_a_blob_name_is_rewritten(blob_dir: Path) -> None:
    store = FileBlobStore(blob_dir)
    sha256 = store.put(b"complete content")
    store.path_for(sha256).write_bytes(b"compl")  # damage from outside flowloom
    store.put(b"complete content")
    assert store.read(sha256) == b"complete content"


def test_a_failed_write_leaves_neither_blob_nor_temporary_file(
    blob_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = FileBlobStore(blob_dir)

    def disk_full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space"):
        store.put(b"doomed")
    monkeypatch.undo()
    sha256 = hashlib.sha256(b"doomed").hexdigest()
    assert not store.exists(sha256)
    assert [p for p in blob_dir.rglob("*") if p.is_file()] == []


def test_a_crash_before_the_rename_never_shows_a_partial_blob(blob_dir: Path) -> None:
    # A real process dies between writing the temporary file and renaming it: no cleanup runs.
    script = textwrap.dedent(
        f"""
        import os
        from pathlib import Path
        from flowloom.storage.blobs import FileBlobStore

        def crash(src, dst):
            os._exit(9)

        os.replace = crash
        FileBlobStore(Path({str(blob_dir)!r})).put(b"x" * 1_000_000)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], check=False)
    assert done.returncode == 9
    sha256 = hashlib.sha256(b"x" * 1_000_000).hexdigest()
    store = FileBlobStore(blob_dir)
    assert not store.exists(sha256)
    leftovers = [p for p in blob_dir.rglob("*") if p.is_file()]
    assert len(leftovers) == 1
    assert leftovers[0].name.startswith(".tmp-")
    assert store.put(b"x" * 1_000_000) == sha256
    assert store.read(sha256) == b"x" * 1_000_000


@pytest.fixture(scope="module")
async def user_id(db: Database) -> str:
    async with db.write() as session:
        user = User(id=new_id("usr"), email=f"{new_id('x')}@example.com")
        session.add(user)
    return user.id


async def _artifact_count(db: Database) -> int:
    async with db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(Artifact)) or 0)


async def test_save_artifact_writes_the_blob_and_the_row(
    db: Database, user_id: str, blob_dir: Path
) -> None:
    store = FileBlobStore(blob_dir)
    data = b"\x89PNG" + os.urandom(2048)
    async with db.write() as session:
        saved = await save_artifact(
            session,
            store,
            user_id=user_id,
            data=data,
            content_type="image/png",
            width=32,
            height=16,
            filename="crop.png",
        )
    async with db.read() as session:
        row = await session.get(Artifact, saved.id)
    assert row is not None
    assert (row.sha256, row.size, row.content_type) == (
        hashlib.sha256(data).hexdigest(),
        2052,
        "image/png",
    )
    assert (row.width, row.height, row.filename, row.run_id) == (32, 16, "crop.png", None)
    assert store.read(row.sha256) == data


async def test_a_refused_row_leaves_only_a_harmless_orphan_blob(
    db: Database, blob_dir: Path
) -> None:
    store = FileBlobStore(blob_dir)
    before = await _artifact_count(db)
    with pytest.raises(NotFound):
        async with db.write() as session:
            await save_artifact(
                session, store, user_id="usr_nobody", data=b"orphan", content_type="text/plain"
            )
    assert await _artifact_count(db) == before
    assert store.exists(hashlib.sha256(b"orphan").hexdigest())


async def test_no_row_is_written_when_the_blob_cannot_be(db: Database, user_id: str) -> None:
    class BrokenStore(MemoryBlobStore):
        def put(self, data: bytes) -> str:
            raise OSError(28, "No space left on device")

    before = await _artifact_count(db)
    with pytest.raises(OSError, match="No space"):
        async with db.write() as session:
            await save_artifact(
                session, BrokenStore(), user_id=user_id, data=b"x", content_type="text/plain"
            )
    assert await _artifact_count(db) == before


@pytest.mark.parametrize(
    ("content_type", "width"), [("", None), ("png", None), ("image/png", 0), ("image/png", -4)]
)
async def test_save_artifact_refuses_bad_metadata_before_writing(
    db: Database, user_id: str, content_type: str, width: int | None
) -> None:
    store = MemoryBlobStore()
    async with db.write() as session:
        with pytest.raises(InputError):
            await save_artifact(
                session,
                store,
                user_id=user_id,
                data=b"x",
                content_type=content_type,
                width=width,
            )
    assert len(store) == 0
