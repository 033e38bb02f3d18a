"""Retention, cold-storage archive, sizes and backups, on SQLite and PostgreSQL.

Pruning deletes across the whole database, so every test here gets a database of its own.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import sqlite3
import stat
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pgkit import drop_postgres_schema, make_postgres_database
from sqlalchemy import func, insert, select, text, update

from flowloom.exceptions import ConfigurationError, InputError
from flowloom.ids import new_id
from flowloom.storage.blobs import FileBlobStore
from flowloom.storage.database import Database
from flowloom.storage.enums import RunStatus
from flowloom.storage.maintenance import (
    ARCHIVE_FORMAT,
    backup_database,
    database_bytes,
    pg_dump_command,
    prune_runs,
    table_stats,
)
from flowloom.storage.migrate import upgrade_database
from flowloom.storage.tables import (
    Artifact,
    NodeExecution,
    Usage,
    User,
    Workflow,
    WorkflowRun,
    metadata,
)

NOW = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)
OLD = NOW - timedelta(days=40)
RECENT = NOW - timedelta(days=1)
DEFINITION = {"schema_version": 1, "nodes": [], "edges": []}


@pytest.fixture
async def fresh_db(db_kind: str, tmp_path: Path) -> AsyncIterator[Database]:
    if db_kind == "sqlite":
        database = Database(f"sqlite:///{tmp_path / 'flowloom.db'}")
        await upgrade_database(database)
        yield database
        await database.dispose()
        return
    schema = f"t_{secrets.token_hex(6)}"
    database = await make_postgres_database(schema)
    await upgrade_database(database)
    yield database
    await database.dispose()
    await drop_postgres_schema(schema)


class World:
    """One user and one workflow, and helpers to give them runs, artifacts and usage."""

    def __init__(self, db: Database, store: FileBlobStore) -> None:
        self.db = db
        self.store = store
        self.user_id = new_id("usr")
        self.workflow_id = new_id("wf")

    async def setup(self) -> World:
        async with self.db.write() as s:
            s.add(User(id=self.user_id, email=f"{self.user_id}@example.com"))
            await s.flush()
            s.add(Workflow(id=self.workflow_id, user_id=self.user_id, name="w", definition={}))
        return self

    async def run(
        self, created_at: datetime, *, nodes: int = 2, parent: str | None = None
    ) -> tuple[str, list[str]]:
        run_id = new_id("run")
        node_ids = [new_id("nex") for _ in range(nodes)]
        async with self.db.write() as s:
            s.add(
                WorkflowRun(
                    id=run_id,
                    workflow_id=self.workflow_id,
                    workflow_version=1,
                    user_id=self.user_id,
                    status="COMPLETED",
                    parent_run_id=parent,
                    parent_node_id="call" if parent else None,
                    outputs={"text": f"result of {run_id}"},
                    created_at=created_at,
                    updated_at=created_at,
                )
            )
            await s.flush()
            for i, nex in enumerate(node_ids):
                s.add(
                    NodeExecution(
                        id=nex,
                        run_id=run_id,
                        node_id=f"n{i}",
                        node_type="text.template",
                        status="SUCCEEDED",
                        outputs={"text": f"n{i}"},
                        idempotency_key=f"{run_id}:n{i}:1",
                        created_at=created_at,
                        updated_at=created_at,
                    )
                )
        return run_id, node_ids

    async def artifact(
        self, data: bytes, *, run_id: str | None = None, node_execution_id: str | None = None
    ) -> str:
        sha256 = self.store.put(data)
        async with self.db.write() as s:
            s.add(
                Artifact(
                    id=new_id("art"),
                    user_id=self.user_id,
                    run_id=run_id,
                    node_execution_id=node_execution_id,
                    sha256=sha256,
                    content_type="image/png",
                    size=len(data),
                )
            )
        return sha256

    async def usage(self, run_id: str, node_execution_id: str) -> str:
        usage_id = new_id("use")
        async with self.db.write() as s:
            s.add(
                Usage(
                    id=usage_id,
                    user_id=self.user_id,
                    run_id=run_id,
                    node_execution_id=node_execution_id,
                    provider="openai",
                    model="gpt-4o-mini",
                    tokens_in=10,
                    tokens_out=5,
                    tokens_total=15,
                )
            )
        return usage_id


async def ids(db: Database, column: Any) -> set[str]:
    async with db.read() as s:
        return set((await s.scalars(select(column))).all())


async def count(db: Database, table: Any) -> int:
    async with db.read() as s:
        return int(await s.scalar(select(func.count()).select_from(table)) or 0)


async def test_prune_removes_only_old_runs_with_their_executions_artifacts_and_lone_blobs(
    fresh_db: Database, blob_dir: Path
) -> None:
    db = fresh_db
    world = await World(db, FileBlobStore(blob_dir)).setup()
    old_a, old_a_nodes = await world.run(OLD)
    old_b, _ = await world.run(OLD + timedelta(hours=1))
    _, old_c_nodes = await world.run(OLD + timedelta(hours=2))
    new_a, new_a_nodes = await world.run(RECENT)
    new_b, _ = await world.run(RECENT + timedelta(hours=1))

    lone = await world.artifact(b"only the old run has this", run_id=old_a)
    shared = await world.artifact(b"shared image", run_id=old_b)
    await world.artifact(b"shared image", run_id=new_a, node_execution_id=new_a_nodes[0])
    by_node = await world.artifact(b"attached to a node only", node_execution_id=old_c_nodes[1])
    upload = await world.artifact(b"uploaded, in no run")
    usage_id = await world.usage(old_a, old_a_nodes[0])

    report = await prune_runs(
        db,
        older_than=timedelta(days=30),
        blob_store=world.store,
        batch_size=2,
        now=NOW,
        blob_grace=timedelta(0),
    )

    assert (report.runs, report.node_executions, report.artifacts) == (3, 6, 3)
    assert report.cutoff == NOW - timedelta(days=30)
    assert report.blobs_deleted == 2
    assert report.bytes_freed == len(b"only the old run has this") + len(b"attached to a node only")
    assert await ids(db, WorkflowRun.id) == {new_a, new_b}
    assert await ids(db, NodeExecution.run_id) == {new_a, new_b}
    assert await ids(db, Artifact.sha256) == {shared, upload}
    assert not world.store.exists(lone)
    assert not world.store.exists(by_node)
    assert world.store.exists(shared)
    assert world.store.exists(upload)
    async with db.read() as s:
        usage = await s.get(Usage, usage_id)
    assert usage is not None, "billing history outlives pruned runs"
    assert (usage.run_id, usage.node_execution_id, usage.tokens_total) == (None, None, 15)


async def test_sub_runs_go_with_their_parent_and_are_counted(
    fresh_db: Database, blob_dir: Path, tmp_path: Path
) -> None:
    world = await World(fresh_db, FileBlobStore(blob_dir)).setup()
    parent, _ = await world.run(OLD)
    # Started by the parent, but created after the cutoff: the cascade would take it anyway.
    child, _ = await world.run(NOW - timedelta(days=5), nodes=1, parent=parent)
    keep, _ = await world.run(RECENT)

    report = await prune_runs(
        fresh_db, older_than=timedelta(days=30), archive_dir=tmp_path / "cold", now=NOW
    )

    assert (report.runs, report.node_executions) == (2, 3)
    assert await ids(fresh_db, WorkflowRun.id) == {keep}
    archived = {json.loads(line)["run"]["id"] for line in _archive_lines(report.archive_files)}
    assert archived == {parent, child}


def _archive_lines(paths: tuple[Path, ...]) -> list[str]:
    return [line for path in paths for line in path.read_text().splitlines()]


async def test_archive_holds_one_line_per_pruned_run_with_its_node_executions(
    fresh_db: Database, blob_dir: Path, tmp_path: Path
) -> None:
    world = await World(fresh_db, FileBlobStore(blob_dir)).setup()
    old = [await world.run(OLD + timedelta(minutes=i), nodes=3) for i in range(5)]
    await world.artifact(b"png", run_id=old[0][0], node_execution_id=old[0][1][2])
    kept, _ = await world.run(RECENT)
    archive_dir = tmp_path / "cold" / "storage"

    report = await prune_runs(
        fresh_db, older_than=timedelta(days=30), archive_dir=archive_dir, batch_size=2, now=NOW
    )

    assert report.archive_files == (archive_dir / "runs-20250601-120000.jsonl",)
    lines = [json.loads(line) for line in _archive_lines(report.archive_files)]
    assert len(lines) == 5
    by_id = {line["run"]["id"]: line for line in lines}
    assert set(by_id) == {run_id for run_id, _ in old}
    for run_id, node_ids in old:
        line = by_id[run_id]
        assert line["format"] == ARCHIVE_FORMAT
        assert line["run"]["outputs"] == {"text": f"result of {run_id}"}
        assert line["run"]["created_at"].startswith(OLD.date().isoformat())
        assert [n["id"] for n in line["node_executions"]] == node_ids
        assert {n["run_id"] for n in line["node_executions"]} == {run_id}
    assert [a["node_execution_id"] for a in by_id[old[0][0]]["artifacts"]] == [old[0][1][2]]
    assert await ids(fresh_db, WorkflowRun.id) == {kept}


async def test_an_archive_dir_that_cannot_be_written_deletes_nothing(
    fresh_db: Database, blob_dir: Path, tmp_path: Path
) -> None:
    world = await World(fresh_db, FileBlobStore(blob_dir)).setup()
    for _ in range(3):
        await world.run(OLD)
    not_a_dir = tmp_path / "archive"
    not_a_dir.write_text("a file where the archive folder should be")

    for bad in (not_a_dir, not_a_dir / "below"):
        with pytest.raises(InputError, match="archive"):
            await prune_runs(fresh_db, older_than=timedelta(days=30), archive_dir=bad, now=NOW)

    assert await count(fresh_db, WorkflowRun) == 3
    assert await count(fresh_db, NodeExecution) == 6


async def test_an_archive_write_failing_midway_keeps_every_unarchived_run(
    fresh_db: Database, blob_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = await World(fresh_db, FileBlobStore(blob_dir)).setup()
    old = [(await world.run(OLD + timedelta(minutes=i)))[0] for i in range(6)]
    real_fsync = os.fsync
    file_syncs = 0

    def fsync_failing_on_second_batch(fd: int) -> None:
        nonlocal file_syncs
        if stat.S_ISREG(os.fstat(fd).st_mode):
            file_syncs += 1
            if file_syncs == 2:
                raise OSError(28, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync_failing_on_second_batch)
    with pytest.raises(OSError, match="No space"):
        await prune_runs(
            fresh_db,
            older_than=timedelta(days=30),
            archive_dir=tmp_path / "cold",
            batch_size=2,
            now=NOW,
        )
    monkeypatch.undo()

    remaining = await ids(fresh_db, WorkflowRun.id)
    archived = [
        json.loads(line)["run"]["id"]
        for line in _archive_lines(tuple((tmp_path / "cold").iterdir()))
    ]
    assert remaining == set(old[2:]), "the first batch went, the failed one stayed"
    assert sorted(archived) == sorted(old[:2]), "exactly the deleted runs, no half batch"


async def test_recently_put_blobs_survive_even_unreferenced(
    fresh_db: Database, blob_dir: Path
) -> None:
    world = await World(fresh_db, FileBlobStore(blob_dir)).setup()
    run_id, _ = await world.run(OLD)
    sha256 = await world.artifact(b"just stored again by a save still in flight", run_id=run_id)

    report = await prune_runs(
        fresh_db, older_than=timedelta(days=30), blob_store=world.store, now=NOW
    )

    assert (report.runs, report.artifacts, report.blobs_deleted) == (1, 1, 0)
    assert world.store.exists(sha256)


async def test_nothing_old_means_nothing_pruned_and_no_archive_file(
    fresh_db: Database, blob_dir: Path, tmp_path: Path
) -> None:
    world = await World(fresh_db, FileBlobStore(blob_dir)).setup()
    await world.run(RECENT)
    report = await prune_runs(
        fresh_db, older_than=timedelta(days=30), archive_dir=tmp_path / "cold", now=NOW
    )
    assert (report.runs, report.node_executions, report.archive_files) == (0, 0, ())
    assert list((tmp_path / "cold").iterdir()) == []
    assert await count(fresh_db, WorkflowRun) == 1


async def test_prune_before_a_date_and_refused_arguments(
    fresh_db: Database, blob_dir: Path
) -> None:
    world = await World(fresh_db, FileBlobStore(blob_dir)).setup()
    old, _ = await world.run(OLD)
    kept, _ = await world.run(RECENT)
    for kwargs in (
        {},
        {"older_than": timedelta(days=1), "before": NOW},
        {"older_than": timedelta(days=-1)},
        {"older_than": timedelta(days=1), "now": datetime(2025, 1, 1)},
        {"before": datetime(2025, 1, 1)},
        {"older_than": timedelta(days=1), "batch_size": 0},
    ):
        with pytest.raises(InputError):
            await prune_runs(fresh_db, **kwargs)  # type: ignore[arg-type]
    assert await count(fresh_db, WorkflowRun) == 2

    report = await prune_runs(fresh_db, before=OLD + timedelta(seconds=1))
    assert report.runs == 1
    assert await ids(fresh_db, WorkflowRun.id) == {kept}
    assert old not in await ids(fresh_db, NodeExecution.run_id)


async def test_table_stats_lists_every_table_with_its_rows(
    fresh_db: Database, blob_dir: Path
) -> None:
    world = await World(fresh_db, FileBlobStore(blob_dir)).setup()
    for _ in range(3):
        run_id, node_ids = await world.run(RECENT, nodes=4)
    await world.usage(run_id, node_ids[0])
    expected = {"users": 1, "workflows": 1, "workflow_runs": 3, "node_executions": 12, "usage": 1}

    for exact in (False, True):
        stats = {s.name: s for s in await table_stats(fresh_db, exact=exact)}
        assert set(metadata.tables) <= set(stats)
        for name in metadata.tables:
            assert stats[name].rows == expected.get(name, 0), name
            assert stats[name].bytes is not None
            assert stats[name].bytes > 0, name
            assert stats[name].rows_exact

    if not fresh_db.is_sqlite:
        async with fresh_db.write() as s:
            # One table: a database-wide ANALYZE also takes the shared catalogs, and deadlocks
            # with another test process creating or dropping its database at that moment.
            await s.execute(text("ANALYZE node_executions"))
        stats = {s.name: s for s in await table_stats(fresh_db)}
        # Small tables are sampled whole, so the planner's estimate is the count.
        assert not stats["node_executions"].rows_exact
        assert stats["node_executions"].rows == 12

    sizes = await database_bytes(fresh_db)
    assert sizes
    assert all(size > 0 for size in sizes.values())


async def test_backup_refuses_an_existing_target_and_postgres_gets_pg_dump(
    fresh_db: Database, tmp_path: Path
) -> None:
    existing = tmp_path / "backup.db"
    existing.write_bytes(b"precious")
    with pytest.raises((InputError, ConfigurationError)) as caught:
        await backup_database(fresh_db, existing)
    assert existing.read_bytes() == b"precious"
    # Both kinds refuse before writing anything: SQLite's copy and PostgreSQL's pg_dump.
    assert isinstance(caught.value, InputError)
    assert "already exists" in str(caught.value)


def test_pg_dump_command_names_the_database_but_never_the_password() -> None:
    command = pg_dump_command(
        "postgresql+asyncpg://flow:s3cret@db.internal:6543/flowloom", Path("/backups/x.dump")
    )
    assert command == (
        "pg_dump --format=custom --file=/backups/x.dump --host=db.internal --port=6543"
        " --username=flow flowloom"
    )


@pytest.fixture
async def big_sqlite(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'big.db'}")
    await upgrade_database(database)
    yield database
    await database.dispose()


async def fill(db: Database, *, runs: int, old_share: float, output_bytes: int) -> None:
    """``runs`` runs of one node each, the first ``old_share`` of them 40 days old."""
    user_id, workflow_id = new_id("usr"), new_id("wf")
    async with db.write() as s:
        s.add(User(id=user_id, email=f"{user_id}@example.com"))
        await s.flush()
        s.add(Workflow(id=workflow_id, user_id=user_id, name="w", definition=DEFINITION))
    padding = "x" * output_bytes
    for start in range(0, runs, 2000):
        run_rows: list[dict[str, Any]] = []
        node_rows: list[dict[str, Any]] = []
        for i in range(start, min(start + 2000, runs)):
            created = OLD if i < runs * old_share else RECENT
            run_id = new_id("run")
            run_rows.append(
                {
                    "id": run_id,
                    "workflow_id": workflow_id,
                    "workflow_version": 1,
                    "user_id": user_id,
                    "status": "COMPLETED",
                    "outputs": {"text": padding, "i": i},
                    "created_at": created,
                    "updated_at": created,
                }
            )
            node_rows.append(
                {
                    "id": new_id("nex"),
                    "run_id": run_id,
                    "node_id": "llm",
                    "node_type": "llm.chat",
                    "status": "SUCCEEDED",
                    "outputs": {"text": padding},
                    "idempotency_key": f"{run_id}:llm:1",
                    "created_at": created,
                    "updated_at": created,
                }
            )
        async with db.write() as s:
            await s.execute(insert(WorkflowRun), run_rows)
            await s.execute(insert(NodeExecution), node_rows)


@pytest.mark.slow
async def test_sqlite_file_really_shrinks_after_pruning_most_runs(big_sqlite: Database) -> None:
    db_file = Path(big_sqlite.url.split("///", 1)[1])
    await fill(big_sqlite, runs=20_000, old_share=0.9, output_bytes=2_000)

    started = time.perf_counter()
    report = await prune_runs(big_sqlite, older_than=timedelta(days=30), now=NOW)
    elapsed_s = time.perf_counter() - started

    assert (report.runs, report.node_executions) == (18_000, 18_000)
    assert report.database_bytes_before is not None
    assert report.database_bytes_after is not None
    on_disk = _size(db_file) + _size(Path(f"{db_file}-wal"))
    assert on_disk == report.database_bytes_after
    print(
        f"\npruned 18,000 of 20,000 runs in {elapsed_s:.2f} s: "
        f"{report.database_bytes_before / 1e6:.1f} MB -> {report.database_bytes_after / 1e6:.1f} MB"
    )
    assert report.database_bytes_after < report.database_bytes_before * 0.25
    assert await count(big_sqlite, WorkflowRun) == 2_000
    conn = sqlite3.connect(db_file)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert conn.execute("PRAGMA freelist_count").fetchone() == (0,)
    finally:
        conn.close()


def _size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


@pytest.mark.slow
async def test_backup_while_a_writer_keeps_inserting_is_consistent(
    big_sqlite: Database, tmp_path: Path
) -> None:
    await fill(big_sqlite, runs=8_000, old_share=0, output_bytes=4_000)
    user_ids: list[str] = []
    stop = asyncio.Event()

    async def writer() -> None:
        while not stop.is_set():
            user_id = new_id("usr")
            async with big_sqlite.write() as s:
                s.add(User(id=user_id, email=f"{user_id}@example.com"))
            user_ids.append(user_id)
            await asyncio.sleep(0)

    task = asyncio.create_task(writer())
    await asyncio.sleep(0.05)
    written_before = len(user_ids)
    target = await backup_database(big_sqlite, tmp_path / "copies" / "backup.db")
    written_during = len(user_ids) - written_before
    stop.set()
    await task

    assert target == tmp_path / "copies" / "backup.db"
    assert written_during > 0, "the writer was not held up by the backup"
    assert sorted(p.name for p in target.parent.iterdir()) == ["backup.db"]
    conn = sqlite3.connect(target)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("delete",)
        assert conn.execute("SELECT count(*) FROM workflow_runs").fetchone() == (8_000,)
        copied = {row[0] for row in conn.execute("SELECT id FROM users")}
    finally:
        conn.close()
    # A snapshot: every user written before the backup began, a prefix of the rest, none torn.
    assert set(user_ids[:written_before]) <= copied
    in_copy = [user_id in copied for user_id in user_ids]
    assert in_copy == sorted(in_copy, reverse=True)

    with pytest.raises(InputError, match="already exists"):
        await backup_database(big_sqlite, target)


async def test_prune_never_deletes_unfinished_runs_whatever_their_age(
    fresh_db: Database, blob_dir: Path
) -> None:
    world = await World(fresh_db, FileBlobStore(blob_dir)).setup()
    ancient = OLD - timedelta(days=365)
    by_status = {status: (await world.run(ancient))[0] for status in RunStatus}
    waiting_parent = by_status[RunStatus.WAITING]
    finished_child, _ = await world.run(ancient, parent=waiting_parent)
    async with fresh_db.write() as s:
        for status, run_id in by_status.items():
            await s.execute(
                update(WorkflowRun).where(WorkflowRun.id == run_id).values(status=status)
            )

    report = await prune_runs(fresh_db, older_than=timedelta(days=30), batch_size=1, now=NOW)

    unfinished = {by_status[s] for s in (RunStatus.PENDING, RunStatus.RUNNING, RunStatus.WAITING)}
    assert report.runs == 3  # COMPLETED, FAILED, CANCELLED
    assert await ids(fresh_db, WorkflowRun.id) == unfinished | {finished_child}


async def test_a_run_resumed_after_it_was_chosen_is_not_deleted(
    fresh_db: Database, blob_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flowloom.storage.maintenance import prune as prune_module

    world = await World(fresh_db, FileBlobStore(blob_dir)).setup()
    resumed, _ = await world.run(OLD)
    gone, _ = await world.run(OLD)
    delete_in_session = prune_module._delete_in_session

    def resume_first(session: Any, run_ids: list[str]) -> int:
        # Between the read that chose it and the delete, the run became unfinished again.
        session.execute(
            update(WorkflowRun).where(WorkflowRun.id == resumed).values(status=RunStatus.RUNNING)
        )
        return delete_in_session(session, run_ids)

    monkeypatch.setattr(prune_module, "_delete_in_session", resume_first)
    report = await prune_runs(fresh_db, older_than=timedelta(days=30), now=NOW)

    assert report.runs == 1
    assert await ids(fresh_db, WorkflowRun.id) == {resumed}
    assert gone != resumed
