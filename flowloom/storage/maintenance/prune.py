"""Retention: delete old runs in short transactions, archiving them first, and reclaim space.

Each pruned run can first be written as one JSON line to a cold-storage archive (seed 000);
the blobs only pruned artifacts referenced are deleted; on SQLite the file really shrinks.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import sqlite3
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import IO, Any, Final

from sqlalchemy import Connection, delete, func, or_, select
from sqlalchemy.orm import Session, aliased

from flowloom.exceptions import InputError
from flowloom.storage.blobs import BlobStore
from flowloom.storage.database import Database
from flowloom.storage.durable import fsync_directory
from flowloom.storage.enums import ACTIVE_RUN_STATUSES, FINISHED_RUN_STATUSES
from flowloom.storage.maintenance.files import sqlite_bytes, sqlite_file
from flowloom.storage.maintenance.pacing import BatchPacer
from flowloom.storage.tables import Artifact, NodeExecution, WorkflowRun

ARCHIVE_FORMAT = "flowloom.run.v1"
"""The ``format`` field of every archive line, bumped if the line's shape changes."""

DEFAULT_BLOB_GRACE = timedelta(hours=1)
"""A blob put this recently is never deleted by a prune, even if nothing refers to it yet.

save_artifact writes the blob before its row commits; the grace covers that window, so a prune
racing a new artifact with the same content cannot delete the blob under it.
"""

_RUNS = WorkflowRun.__table__
_NODES = NodeExecution.__table__
_ARTIFACTS = Artifact.__table__

_MAX_BATCH = 5_000  # each id is bound twice in one statement; drivers cap binds at ~32k


@dataclass(frozen=True, slots=True)
class PruneReport:
    """What ``prune_runs`` removed."""

    cutoff: datetime
    """Runs created before this moment were pruned."""
    runs: int = 0
    node_executions: int = 0
    artifacts: int = 0
    blobs_deleted: int = 0
    bytes_freed: int = 0
    """Bytes of the deleted blobs."""
    archive_files: tuple[Path, ...] = ()
    database_bytes_before: int | None = None
    """SQLite only: the database file plus its WAL, before and after (shows the space returned)."""
    database_bytes_after: int | None = None


async def prune_runs(
    db: Database,
    *,
    older_than: timedelta | None = None,
    before: datetime | None = None,
    archive_dir: Path | None = None,
    blob_store: BlobStore | None = None,
    batch_size: int = 1000,
    now: datetime | None = None,
    blob_grace: timedelta = DEFAULT_BLOB_GRACE,
) -> PruneReport:
    """Delete the finished runs created before ``now - older_than`` (or before ``before``:
    give one). Runs that are PENDING, RUNNING or WAITING are never pruned, whatever their age,
    nor the sub-runs of such a run.

    Runs go oldest first, ``batch_size`` at a time chosen (and archived) in a read transaction,
    then deleted in short write transactions of a few runs each, sized and spaced by a
    BatchPacer, so a prune of millions never keeps a run start or a node commit
    waiting behind it for long, and an interrupted prune leaves every remaining finished run
    newer than every pruned one. A run's node executions, artifacts, debug session and
    sub-runs go with it (the sub-runs are counted and archived as runs too); its usage rows
    stay, with ``run_id`` NULL.

    With ``archive_dir``, every run is first written as one line of
    ``archive_dir/runs-YYYYMMDD-HHMMSS.jsonl`` (``{"format", "run", "node_executions",
    "artifacts"}``; artifact rows, not blob bytes) and the file fsynced before its batch is
    deleted: nothing is deleted that was not archived. An archive_dir that cannot be written
    raises InputError before anything is deleted. If a deletion fails after its batch was
    archived, a later prune archives those runs again: readers keep the last line per run id.

    With ``blob_store``, blobs that no remaining artifact refers to are deleted, except those
    put within ``blob_grace`` (see DEFAULT_BLOB_GRACE). On SQLite the freed pages are then
    returned to the file system (incremental vacuum and a WAL checkpoint).
    """
    started = datetime.now(UTC)
    now = _aware(now, "now") if now is not None else started
    cutoff = _cutoff(older_than=older_than, before=before, now=now)
    if not 1 <= batch_size <= _MAX_BATCH:
        raise InputError(f"batch size must be 1 to {_MAX_BATCH}, not {batch_size}")
    archive = _Archive.prepare(archive_dir, now) if archive_dir is not None else None
    db_path = sqlite_file(db)
    size_before = sqlite_bytes(db_path) if db_path else None
    runs = node_executions = artifacts = blobs_deleted = bytes_freed = 0
    pacer = BatchPacer(largest=batch_size)
    wal = _WalKeeper(db_path) if db_path is not None else None
    cursor: datetime | None = None
    try:
        while True:
            # Chosen (and archived) in a read transaction, ``batch_size`` at a time: no write
            # lock while rows are scanned. Then deleted in short paced write transactions.
            # Off the event loop (a reader thread on SQLite): a batch is thousands of rows.
            found = await db.run_read(
                functools.partial(
                    _read_batch,
                    cutoff=cutoff,
                    cursor=cursor,
                    size=batch_size,
                    archiving=archive is not None,
                )
            )
            if found is None:
                break
            batch, lines = found
            if archive is not None:
                # Written and fsynced before the batch is deleted: if this raises, nothing is.
                await asyncio.to_thread(archive.append, lines)
            cursor = batch.last_created_at
            deleted = 0
            left = batch.run_ids
            while left:
                chunk, left = left[: pacer.size], left[pacer.size :]
                # The engine's own writes go through db.write(): the same connection, so its
                # page cache stays warm between their transactions and these.
                async with pacer.timed(), db.write() as session:
                    deleted += await session.run_sync(_delete_in_session, chunk)
                if wal is not None:
                    await wal.keep_short()
                await pacer.pause()
            runs += deleted
            node_executions += batch.node_executions
            artifacts += batch.artifacts
            if blob_store is not None and batch.blobs:
                gone, freed = await _delete_unreferenced_blobs(
                    db, blob_store, batch.blobs, grace=blob_grace
                )
                blobs_deleted += gone
                bytes_freed += freed
    finally:
        if archive is not None:
            archive.close()
        if wal is not None:
            wal.close()
    if db_path is not None and runs:
        await _sqlite_reclaim(db_path)
    return PruneReport(
        cutoff=cutoff,
        runs=runs,
        node_executions=node_executions,
        artifacts=artifacts,
        blobs_deleted=blobs_deleted,
        bytes_freed=bytes_freed,
        archive_files=tuple(archive.paths) if archive is not None else (),
        database_bytes_before=size_before,
        database_bytes_after=sqlite_bytes(db_path) if db_path else None,
    )


def _cutoff(*, older_than: timedelta | None, before: datetime | None, now: datetime) -> datetime:
    if (older_than is None) == (before is None):
        raise InputError("give exactly one of older_than and before")
    if before is not None:
        return _aware(before, "before")
    assert older_than is not None
    if older_than < timedelta(0):
        raise InputError(f"older_than must not be negative, not {older_than}")
    return now - older_than


def _aware(moment: datetime, name: str) -> datetime:
    if moment.tzinfo is None:
        raise InputError(f"{name} must be timezone-aware, not {moment.isoformat()}", field=name)
    return moment.astimezone(UTC)


@dataclass(slots=True)
class _Batch:
    run_ids: list[str]
    last_created_at: datetime
    """The cursor: the next batch starts at this moment (inclusive, so runs created in the
    same instant are never skipped; the ones deleted here are gone by then)."""
    node_executions: int
    artifacts: int
    blobs: dict[str, int]
    """sha256 -> size of the blobs the deleted artifacts referred to."""


def _read_batch(
    conn: Connection,
    *,
    cutoff: datetime,
    cursor: datetime | None,
    size: int,
    archiving: bool,
) -> tuple[_Batch, list[str]] | None:
    """The next ``size`` prunable runs from ``cursor`` on, oldest first, and their archive
    lines when ``archiving``; None when none is left."""
    parent = aliased(WorkflowRun)
    parent_unfinished = (
        select(parent.id)
        .where(parent.id == WorkflowRun.parent_run_id, parent.status.in_(ACTIVE_RUN_STATUSES))
        .exists()
    )
    oldest = (
        select(WorkflowRun.id, WorkflowRun.created_at)
        .where(
            WorkflowRun.created_at < cutoff,
            # Unfinished runs stay whatever their age (a run may wait weeks for an approval),
            # and so do the finished sub-runs of an unfinished parent, which it may still read.
            WorkflowRun.status.in_(FINISHED_RUN_STATUSES),
            ~parent_unfinished,
        )
        .order_by(WorkflowRun.created_at)
        .limit(size)
    )
    if cursor is not None:
        # Inclusive: a strict ">" would skip the runs sharing the last batch's newest moment.
        oldest = oldest.where(WorkflowRun.created_at >= cursor)
    chosen = conn.execute(oldest).all()
    if not chosen:
        return None
    run_ids = _with_sub_runs(conn, [row[0] for row in chosen])

    in_runs = NodeExecution.run_id.in_(run_ids)
    artifact_rows = [
        dict(row._mapping)
        for row in conn.execute(
            select(_ARTIFACTS)
            .where(
                or_(
                    Artifact.run_id.in_(run_ids),
                    Artifact.node_execution_id.in_(select(NodeExecution.id).where(in_runs)),
                )
            )
            .order_by(Artifact.id)
        )
    ]
    lines: list[str] = []
    if archiving:
        runs = [
            dict(row._mapping)
            for row in conn.execute(
                select(_RUNS).where(WorkflowRun.id.in_(run_ids)).order_by(WorkflowRun.id)
            )
        ]
        nodes = [
            dict(row._mapping)
            for row in conn.execute(
                select(_NODES).where(in_runs).order_by(NodeExecution.run_id, NodeExecution.id)
            )
        ]
        node_count = len(nodes)
        lines = _archive_lines(runs, nodes, artifact_rows)
    else:
        node_count = (
            conn.execute(select(func.count()).select_from(NodeExecution).where(in_runs)).scalar()
            or 0
        )
    batch = _Batch(
        run_ids=run_ids,
        last_created_at=chosen[-1][1],
        node_executions=node_count,
        artifacts=len(artifact_rows),
        blobs={a["sha256"]: a["size"] for a in artifact_rows},
    )
    return batch, lines


def _delete_runs(conn: Connection, *, run_ids: list[str]) -> int:
    """Delete the runs (their rows cascade) that are still finished; how many went, sub-runs
    that went with their parent included (a row count would miss those).

    The statuses are read by primary key (locked on PostgreSQL) and the delete names ids only:
    a ``status IN (...)`` beside ``id IN (...)`` lets SQLite's planner, without statistics,
    walk the status index over every finished run (40 ms per statement at 50,000 runs).
    """
    finished = {str(status) for status in FINISHED_RUN_STATUSES}
    rows = conn.execute(
        select(WorkflowRun.id, WorkflowRun.status)
        .where(WorkflowRun.id.in_(run_ids))
        .with_for_update()
    ).all()
    doomed = [run_id for run_id, status in rows if str(status) in finished]
    if doomed:
        conn.execute(delete(WorkflowRun).where(WorkflowRun.id.in_(doomed)))
    left = conn.execute(
        select(func.count()).select_from(WorkflowRun).where(WorkflowRun.id.in_(run_ids))
    ).scalar()
    return len(run_ids) - int(left or 0)


def _delete_in_session(session: Session, run_ids: list[str]) -> int:
    return _delete_runs(session.connection(), run_ids=run_ids)


def _with_sub_runs(conn: Connection, run_ids: list[str]) -> list[str]:
    """``run_ids`` plus all their descendants, which the delete would cascade to anyway."""
    seen = set(run_ids)
    result = list(run_ids)
    frontier = run_ids
    while frontier:
        children = (
            conn.execute(select(WorkflowRun.id).where(WorkflowRun.parent_run_id.in_(frontier)))
            .scalars()
            .all()
        )
        frontier = [child for child in children if child not in seen]
        seen.update(frontier)
        result.extend(frontier)
    return result


async def _delete_unreferenced_blobs(
    db: Database, store: BlobStore, candidates: dict[str, int], *, grace: timedelta
) -> tuple[int, int]:
    """Delete the blobs among ``candidates`` (sha256 -> size) no artifact refers to any more."""
    checked_at = datetime.now(UTC)
    async with db.read() as session:
        referenced = set(
            (
                await session.scalars(
                    select(Artifact.sha256).where(Artifact.sha256.in_(candidates)).distinct()
                )
            ).all()
        )
    deleted = freed = 0
    for sha256 in sorted(candidates.keys() - referenced):
        if await asyncio.to_thread(store.delete, sha256, only_if_put_before=checked_at - grace):
            deleted += 1
            freed += candidates[sha256]
    return deleted, freed


Row = dict[str, Any]


def _archive_lines(runs: list[Row], nodes: list[Row], artifacts: list[Row]) -> list[str]:
    nodes_by_run: dict[str, list[Row]] = {}
    run_of_node: dict[str, str] = {}
    for node in nodes:
        nodes_by_run.setdefault(node["run_id"], []).append(node)
        run_of_node[node["id"]] = node["run_id"]
    artifacts_by_run: dict[str, list[Row]] = {}
    for artifact in artifacts:
        # An artifact may name only its node execution; it belongs to that node's run.
        owner = run_of_node.get(artifact["node_execution_id"], artifact["run_id"])
        if owner is not None:
            artifacts_by_run.setdefault(owner, []).append(artifact)
    return [
        json.dumps(
            {
                "format": ARCHIVE_FORMAT,
                "run": run,
                "node_executions": nodes_by_run.get(run["id"], []),
                "artifacts": artifacts_by_run.get(run["id"], []),
            },
            default=_json_default,
            ensure_ascii=False,
            separators=(",", ":"),
        )
        for run in runs
    ]


def _json_default(value: object) -> object:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"cannot archive a {type(value).__name__}")


class _Archive:
    """One JSON Lines file of pruned runs, created on the first batch, fsynced per batch."""

    def __init__(self, folder: Path, stem: str) -> None:
        self.folder = folder
        self.stem = stem
        self.paths: list[Path] = []
        self._file: IO[str] | None = None

    @classmethod
    def prepare(cls, folder: Path, now: datetime) -> _Archive:
        """Make sure ``folder`` can take the archive before anything is deleted."""
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(
                f"archive dir {folder} cannot be created: {exc.strerror}", field="archive_dir"
            ) from None
        if not folder.is_dir():
            raise InputError(f"archive dir {folder} is not a directory", field="archive_dir")
        if not os.access(folder, os.W_OK | os.X_OK):
            raise InputError(f"archive dir {folder} is not writable", field="archive_dir")
        return cls(folder, f"runs-{now:%Y%m%d-%H%M%S}")

    def append(self, lines: list[str]) -> None:
        file = self._file or self._create()
        offset = file.tell()
        try:
            file.write("".join(line + "\n" for line in lines))
            file.flush()
            os.fsync(file.fileno())
        except BaseException:
            # Leave no lines for runs that this failure keeps in the database.
            with contextlib.suppress(OSError):
                file.truncate(offset)
                file.seek(offset)
            raise

    def _create(self) -> IO[str]:
        for attempt in range(1, 1000):
            suffix = "" if attempt == 1 else f"-{attempt}"
            path = self.folder / f"{self.stem}{suffix}.jsonl"
            try:
                self._file = path.open("x", encoding="utf-8")
            except FileExistsError:
                continue
            except OSError as exc:
                raise InputError(
                    f"archive file {path} cannot be created: {exc.strerror}", field="archive_dir"
                ) from None
            self.paths.append(path)
            fsync_directory(self.folder)
            return self._file
        raise InputError(f"too many archives named {self.stem}* in {self.folder}")

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class _WalKeeper:
    """Copies the WAL into the database between batches (a PASSIVE checkpoint, which never
    blocks a writer), so that the pages a prune writes never pile up into the automatic
    checkpoint some run start's commit would otherwise run while its caller waits."""

    _BYTES: Final = 1 << 20

    def __init__(self, path: Path) -> None:
        self._path = path
        self._wal = Path(f"{path}-wal")
        self._conn: sqlite3.Connection | None = None

    async def keep_short(self) -> None:
        try:
            size = self._wal.stat().st_size
        except FileNotFoundError:
            return
        if size >= self._BYTES:
            await asyncio.to_thread(self._checkpoint)

    def _checkpoint(self) -> None:
        if self._conn is None:
            self._conn = sqlite3.connect(
                self._path, isolation_level=None, timeout=30, check_same_thread=False
            )
        self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


async def _sqlite_reclaim(path: Path) -> None:
    await asyncio.to_thread(_reclaim, path)


_VACUUM_CHUNK_PAGES = 500
"""Pages freed per step (2 MB at 4 KiB): each step holds the write lock for a few ms."""


def _reclaim(path: Path) -> None:
    """Give the pages freed by deletes back to the file system.

    Files are created with auto_vacuum=INCREMENTAL, so the free pages can be dropped without a
    full VACUUM (which rewrites the whole file and needs as much space again). In WAL mode the
    shorter file reaches the disk only when the WAL is checkpointed.
    """
    # A connection of its own, because the pool's connections always open a transaction (the
    # checkpoint needs none), and because the pragma frees one page per step: only
    # executescript steps it to the end, while execute() stops after the first.
    conn = sqlite3.connect(path, isolation_level=None, timeout=30)
    try:
        incremental = conn.execute("PRAGMA auto_vacuum").fetchone()[0] == 2
        free_pages = conn.execute("PRAGMA freelist_count").fetchone()[0]
        while incremental and free_pages > 0:
            # In chunks, so that other writers get the lock in between.
            began = time.perf_counter()
            conn.executescript(f"PRAGMA incremental_vacuum({_VACUUM_CHUNK_PAGES})")
            time.sleep(max(time.perf_counter() - began, 0.002))
            left = conn.execute("PRAGMA freelist_count").fetchone()[0]
            if left >= free_pages:
                break
            free_pages = left
        # PASSIVE copies the WAL into the file without ever blocking a writer; the TRUNCATE
        # after it, which does block writers while it runs, then has only the last few frames
        # to copy before it empties the WAL file.
        conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    finally:
        conn.close()
