"""Content-addressed blob storage: bytes are stored once under their SHA-256.

Binary data (images, files) never goes into JSON columns. It goes here, and the database keeps an
``artifacts`` row that points at it by hash. Several artifacts may share one blob, so a blob is
removed only when no artifact refers to it any longer (see ``maintenance.prune_runs``).

``FileBlobStore`` keeps blobs in a folder, at ``root/ab/cd/<sha256>``; ``MemoryBlobStore`` keeps
them in a dict, for tests. Both satisfy the ``BlobStore`` protocol.

The store's methods are synchronous (plain file I/O); async callers run them in a thread, as
``save_artifact`` does.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import os
import re
import tempfile
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, Protocol, runtime_checkable

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from flowloom.exceptions import InputError, NotFound
from flowloom.ids import new_id
from flowloom.storage.durable import fsync_directory
from flowloom.storage.errors import translate_integrity_error
from flowloom.storage.tables import Artifact

__all__ = [
    "BlobStore",
    "FileBlobStore",
    "MemoryBlobStore",
    "check_sha256",
    "save_artifact",
]

_SHA256 = re.compile(r"[0-9a-f]{64}")
_TEMP_PREFIX = ".tmp-"
_PRIVATE_DIR = 0o700
_PRIVATE_FILE = 0o600


def check_sha256(sha256: str) -> str:
    """``sha256`` itself if it is 64 lower-case hex digits, else InputError.

    Every store checks its keys with this, so a key can never name a path outside the store.
    """
    if not isinstance(sha256, str) or _SHA256.fullmatch(sha256) is None:
        raise InputError(
            f"blob key {sha256!r} is not a SHA-256 (64 lower-case hex digits)", field="sha256"
        )
    return sha256


@runtime_checkable
class BlobStore(Protocol):
    """Where blob bytes live, keyed by the SHA-256 of their content.

    Every method that takes a key raises InputError for a malformed one; ``read`` and ``open``
    raise NotFound for a missing blob.
    """

    def put(self, data: bytes) -> str:
        """Store ``data`` and return its SHA-256 (hex). Storing the same bytes again is a no-op
        apart from marking the blob as put now (see ``delete``)."""
        ...

    def read(self, sha256: str) -> bytes:
        """The whole blob."""
        ...

    def open(self, sha256: str) -> BinaryIO:
        """The blob as a binary file object to stream from; the caller closes it."""
        ...

    def exists(self, sha256: str) -> bool: ...

    def delete(self, sha256: str, *, only_if_put_before: datetime | None = None) -> bool:
        """Remove the blob; True if it was there and is now gone.

        With ``only_if_put_before``, a blob that was put (or put again) at or after that moment
        is kept and False returned: a writer that has just stored the blob may not have committed
        the row referring to it yet, so the caller's "unreferenced" verdict may be stale.
        """
        ...


class FileBlobStore:
    """Blobs in a folder: ``root/ab/cd/<sha256>``, two levels of fan-out by the hash prefix.

    Writes are atomic: the bytes go to a temporary file in the blob's own folder, are fsynced,
    and only then renamed to the final name, so a crash never leaves a partial blob under a
    blob's name (at worst a ``.tmp-*`` file, which no lookup ever returns).

    Owner-only on disk: every folder it creates (the root included) is 0700 and every blob
    file 0600, set with chmod whatever the process umask.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"FileBlobStore({str(self.root)!r})"

    def path_for(self, sha256: str) -> Path:
        """The file a blob lives in (whether or not it exists yet)."""
        check_sha256(sha256)
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def put(self, data: bytes) -> str:
        sha256 = hashlib.sha256(data).hexdigest()
        path = self.path_for(sha256)
        try:
            if path.stat().st_size == len(data):
                # Refresh the mtime: it is the "put at" time that guards a concurrent delete.
                os.utime(path)
                return sha256
        except FileNotFoundError:
            pass
        _make_private_dirs(path.parent)
        _write_atomically(path, data)
        return sha256

    def read(self, sha256: str) -> bytes:
        with self.open(sha256) as file:
            return file.read()

    def open(self, sha256: str) -> BinaryIO:
        path = self.path_for(sha256)
        try:
            return path.open("rb")
        except FileNotFoundError:
            raise NotFound("blob", sha256) from None

    def exists(self, sha256: str) -> bool:
        return self.path_for(sha256).is_file()

    def delete(self, sha256: str, *, only_if_put_before: datetime | None = None) -> bool:
        path = self.path_for(sha256)
        try:
            # The check is not atomic with the unlink; the grace the caller leaves covers that.
            if only_if_put_before is not None and path.stat().st_mtime >= _epoch_s(
                only_if_put_before
            ):
                return False
            path.unlink()
        except FileNotFoundError:
            return False
        return True


def _make_private_dirs(folder: Path) -> None:
    """``folder`` and any missing parents, each created 0700 (``mkdir(parents=True)`` would
    give the parents the umask's default mode)."""
    missing: list[Path] = []
    while not folder.is_dir():
        missing.append(folder)
        folder = folder.parent
    for path in reversed(missing):
        with contextlib.suppress(FileExistsError):  # a concurrent put made it first
            path.mkdir(mode=_PRIVATE_DIR)
        os.chmod(path, _PRIVATE_DIR)


def _write_atomically(path: Path, data: bytes) -> None:
    fd, temp_name = tempfile.mkstemp(prefix=_TEMP_PREFIX, dir=path.parent)
    try:
        os.fchmod(fd, _PRIVATE_FILE)
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp_name)
        raise
    fsync_directory(path.parent)


def _epoch_s(moment: datetime) -> float:
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment!r}: pass an aware UTC time")
    return moment.timestamp()


class MemoryBlobStore:
    """Blobs in a dict, for tests and for runs that must leave nothing on disk. Thread-safe."""

    def __init__(self) -> None:
        self._blobs: dict[str, tuple[bytes, datetime]] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._blobs)

    def put(self, data: bytes) -> str:
        sha256 = hashlib.sha256(data).hexdigest()
        with self._lock:
            self._blobs[sha256] = (bytes(data), datetime.now(UTC))
        return sha256

    def read(self, sha256: str) -> bytes:
        check_sha256(sha256)
        with self._lock:
            entry = self._blobs.get(sha256)
        if entry is None:
            raise NotFound("blob", sha256)
        return entry[0]

    def open(self, sha256: str) -> BinaryIO:
        return io.BytesIO(self.read(sha256))

    def exists(self, sha256: str) -> bool:
        check_sha256(sha256)
        return sha256 in self._blobs

    def delete(self, sha256: str, *, only_if_put_before: datetime | None = None) -> bool:
        check_sha256(sha256)
        with self._lock:
            entry = self._blobs.get(sha256)
            if entry is None:
                return False
            if only_if_put_before is not None and entry[1] >= only_if_put_before:
                return False
            del self._blobs[sha256]
        return True


async def save_artifact(
    session: AsyncSession,
    store: BlobStore,
    *,
    user_id: str,
    data: bytes,
    content_type: str,
    run_id: str | None = None,
    node_execution_id: str | None = None,
    width: int | None = None,
    height: int | None = None,
    filename: str | None = None,
) -> Artifact:
    """Store ``data`` in ``store``, then add its ``artifacts`` row to ``session`` and flush it.

    The blob is written first and the row second: a blob without a row is harmless (an orphan,
    collected later), a row without its blob is a broken reference. The row is committed with
    the caller's transaction. A missing user, run or node execution raises NotFound; a bad
    content type or size raises InputError before anything is written.
    """
    if not content_type or "/" not in content_type:
        raise InputError(
            f"content type {content_type!r} is not a MIME type such as image/png",
            field="content_type",
        )
    for name, value in (("width", width), ("height", height)):
        if value is not None and value <= 0:
            raise InputError(f"{name} must be positive, not {value}", field=name)
    sha256 = await asyncio.to_thread(store.put, data)
    artifact = Artifact(
        id=new_id("art"),
        user_id=user_id,
        run_id=run_id,
        node_execution_id=node_execution_id,
        sha256=sha256,
        content_type=content_type,
        size=len(data),
        width=width,
        height=height,
        filename=filename,
    )
    session.add(artifact)
    try:
        await session.flush()
    except IntegrityError as exc:
        raise translate_integrity_error(exc, what="artifact") from None
    return artifact
