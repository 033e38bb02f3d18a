"""The daily maintenance pass (retention per the instance settings, expiry, purges), the prune
cursor, and backups (before a migration, verified, pg_dump), on SQLite and PostgreSQL."""

from __future__ import annotations

import secrets
from datetime import timedelta
from pathlib import Path

import pytest
import test_maintenance
from sqlalchemy import select, update
from test_maintenance import NOW, OLD, RECENT, World, ids

from flowloom.exceptions import InputError
from flowloom.ids import id_floor
from flowloom.storage.blobs import FileBlobStore
from flowloom.storage.database import Database
from flowloom.storage.enums import RunStatus, SubscriptionStatus
from flowloom.storage.maintenance import backup_database, prune_runs, run_maintenance
from flowloom.storage.maintenance.backup import backup_before_migrate, verify_backup
from flowloom.storage.migrate import current_revision, head_revision, upgrade_database
from flowloom.storage.repos.billing import PackageRepo, SubscriptionRepo
from flowloom.storage.repos.system_settings import SystemSettingsRepo
from flowloom.storage.tables import (
    AuditEntry,
    NodeExecution,
    Usage,
    UserSubscription,
    WorkflowMemory,
    WorkflowRun,
)
from flowloom.storage.tables.accounts import UserSession

fresh_db = test_maintenance.fresh_db
"""A database of its own per test (the pass deletes across the whole database)."""


def made_at(prefix: str, moment: object) -> str:
    """An id of ``prefix`` made at ``moment``, as the app would have made it then."""
    floor = id_floor(prefix, int(moment.timestamp() * 1000))  # type: ignore[attr-defined]
    return floor[:-8] + secrets.token_hex(4).translate(str.maketrans("ef", "gh"))


async def keep(db: Database, **days: int | None) -> None:
    async with db.write() as s:
        await SystemSettingsRepo(s).update(changes=days)


async def test_runs_created_in_one_instant_are_all_pruned_one_per_batch(
    fresh_db: Database, blob_dir: Path
) -> None:
    world = await World(fresh_db, FileBlobStore(blob_dir)).setup()
    same = [(await world.run(OLD, nodes=1))[0] for _ in range(7)]
    newer, _ = await world.run(RECENT, nodes=1)

    # One run per batch: a cursor past the first run's moment would skip its six twins.
    report = await prune_runs(fresh_db, older_than=timedelta(days=30), batch_size=1, now=NOW)

    assert report.runs == len(same)
    assert await ids(fresh_db, WorkflowRun.id) == {newer}


async def test_the_daily_pass_applies_every_retention_setting_and_keeps_the_rest(
    fresh_db: Database, blob_dir: Path
) -> None:
    world = await World(fresh_db, FileBlobStore(blob_dir)).setup()
    old_run, old_nodes = await world.run(OLD)
    waiting_run, _ = await world.run(OLD - timedelta(days=400))
    new_run, _ = await world.run(RECENT)
    async with fresh_db.write() as s:
        await s.execute(
            update(WorkflowRun)
            .where(WorkflowRun.id == waiting_run)
            .values(status=RunStatus.WAITING)
        )
    old_usage, new_usage = made_at("use", OLD), made_at("use", RECENT)
    old_audit, new_audit = made_at("aud", OLD), made_at("aud", RECENT)
    async with fresh_db.write() as s:
        for usage_id, when in ((old_usage, OLD), (new_usage, RECENT)):
            s.add(
                Usage(
                    id=usage_id,
                    user_id=world.user_id,
                    provider="openai",
                    model="gpt-4o-mini",
                    tokens_in=1,
                    tokens_out=1,
                    tokens_total=2,
                    created_at=when,
                )
            )
        for audit_id, when in ((old_audit, OLD), (new_audit, RECENT)):
            s.add(AuditEntry(id=audit_id, user_id=world.user_id, action="x", created_at=when))
        for name, expires in (
            ("gone", NOW - timedelta(hours=1)),
            ("live", NOW + timedelta(days=1)),
        ):
            s.add(
                UserSession(
                    id=made_at("sess", RECENT),
                    user_id=world.user_id,
                    token_sha256=secrets.token_hex(32),
                    expires_at=expires,
                    last_seen_at=RECENT,
                    user_agent=name,
                )
            )
            s.add(
                WorkflowMemory(
                    id=made_at("mem", RECENT),
                    workflow_id=world.workflow_id,
                    user_id=world.user_id,
                    key=name,
                    value=1,
                    value_type="number",
                    expires_at=expires,
                )
            )
        package = await PackageRepo(s).create(name=f"pro-{secrets.token_hex(3)}")
        ended = await SubscriptionRepo(s).subscribe(
            user_id=world.user_id,
            package_id=package.id,
            end_date=NOW - timedelta(days=1),
            now=NOW - timedelta(days=10),
        )
    # Node executions of the old runs were made with today's ids; give them their old ones.
    async with fresh_db.write() as s:
        for node_id in old_nodes:
            await s.execute(
                update(NodeExecution)
                .where(NodeExecution.id == node_id)
                .values(id=made_at("nex", OLD))
            )
    # Nothing configured: only the purges and the expiry happen.
    report = await run_maintenance(fresh_db, now=NOW)
    assert report.error is None
    assert (report.runs_deleted, report.rows_deleted) == (0, {})
    assert (report.sessions_purged, report.memory_purged) == (1, 1)
    assert report.subscriptions_expired == 1
    async with fresh_db.read() as s:
        row = await s.get(UserSubscription, ended.id)
        assert row is not None
        assert row.status == SubscriptionStatus.EXPIRED
        assert (await SubscriptionRepo(s).current(user_id=world.user_id, now=NOW)) is None
        assert list(await s.scalars(select(UserSession.user_agent))) == ["live"]
        assert list(await s.scalars(select(WorkflowMemory.key))) == ["live"]

    await keep(fresh_db, retain_node_outputs_days=30)
    report = await run_maintenance(fresh_db, now=NOW)
    assert report.node_outputs_cleared == 2  # the old finished run's two nodes, not the waiting
    async with fresh_db.read() as s:
        cleared = dict((await s.execute(select(NodeExecution.run_id, NodeExecution.outputs))).all())
    assert cleared[old_run] is None
    assert cleared[new_run] is not None
    assert cleared[waiting_run] is not None

    await keep(fresh_db, retain_runs_days=30, retain_usage_days=32, retain_audit_days=30)
    report = await run_maintenance(fresh_db, now=NOW)
    assert report.error is None
    assert report.runs_deleted == 1
    assert report.rows_deleted == {"usage": 1, "audit_log": 1}
    assert await ids(fresh_db, WorkflowRun.id) == {waiting_run, new_run}
    assert await ids(fresh_db, Usage.id) == {new_usage}
    left = await ids(fresh_db, AuditEntry.id)
    assert new_audit in left
    assert old_audit not in left
    # The pass reports itself in the audit log, without an actor.
    async with fresh_db.read() as s:
        passes = list(
            await s.scalars(select(AuditEntry).where(AuditEntry.action == "system.maintenance"))
        )
    assert passes
    assert passes[-1].user_id is None
    assert passes[-1].details["runs_deleted"] == 1


async def test_retention_settings_refuse_what_they_cannot_mean(fresh_db: Database) -> None:
    for changes, named in (
        ({"retain_usage_days": 10}, "from 32"),
        ({"retain_runs_days": 0}, "from 1"),
        ({"retain_audit_days": "30"}, "whole number"),
        ({"retain_runs_days": True}, "whole number"),
    ):
        with pytest.raises(InputError, match=named) as caught:
            await keep(fresh_db, **changes)  # type: ignore[arg-type]
        assert caught.value.field == next(iter(changes))
    await keep(fresh_db, retain_runs_days=90)
    await keep(fresh_db, retain_runs_days=None)
    async with fresh_db.read() as s:
        assert (await SystemSettingsRepo(s).read()).retain_runs_days is None


async def test_a_database_about_to_be_migrated_is_copied_first_and_the_copy_verifies(
    tmp_path: Path,
) -> None:
    db = Database(f"sqlite:///{tmp_path / 'old.db'}")
    try:
        await upgrade_database(db, "0004")
        folder = tmp_path / "backups"
        copy = await backup_before_migrate(
            db, folder, at=await current_revision(db), head=head_revision()
        )
        assert copy is not None
        assert copy.parent == folder
        assert copy.name.startswith(f"flowloom-0004-before-{head_revision()}-")
        check = await verify_backup(copy)
        assert (check.kind, check.revision) == ("sqlite", "0004")
        assert check.tables > 10
        # A new database, or one already at the head, needs no copy.
        await upgrade_database(db)
        assert await backup_before_migrate(db, folder, at=None, head=head_revision()) is None
        at = await current_revision(db)
        assert await backup_before_migrate(db, folder, at=at, head=head_revision()) is None
    finally:
        await db.dispose()

    damaged = tmp_path / "damaged.db"
    data = bytearray(copy.read_bytes())
    data[5000:9000] = b"\xff" * 4000
    damaged.write_bytes(bytes(data))
    with pytest.raises(InputError, match=r"damaged\.db"):
        await verify_backup(damaged)
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(InputError, match="neither a SQLite database nor a pg_dump"):
        await verify_backup(tmp_path / "notes.txt")
    with pytest.raises(InputError, match="does not exist"):
        await verify_backup(tmp_path / "missing.db")


async def test_backup_of_either_database_verifies(fresh_db: Database, tmp_path: Path) -> None:
    target = await backup_database(fresh_db, tmp_path / "copy.bak")
    check = await verify_backup(target)
    assert check.kind == ("sqlite" if fresh_db.is_sqlite else "pg_dump")
    assert check.tables > 10
