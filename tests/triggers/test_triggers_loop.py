"""The schedule loop on SQLite and PostgreSQL: due schedules fire once, across processes too;
missed ones are reported and not replayed. Time is driven by calling ``tick(now)``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from greeting import GREETING
from pgkit import POSTGRES_URL
from sqlalchemy import delete, func, select

from flowloom.engine import Engine
from flowloom.storage.database import Database
from flowloom.storage.enums import RunStatus, TriggerType
from flowloom.storage.repos.triggers import TriggerRepo
from flowloom.storage.repos.users import UserRepo
from flowloom.storage.repos.workflows import WorkflowRepo
from flowloom.storage.tables import AuditEntry, WorkflowRun, WorkflowTrigger
from flowloom.storage.tables.base import utcnow
from flowloom.triggers import Schedule, ScheduleLoop

# A fixed Monday morning, far from any other test's clock.
T0 = datetime(2030, 6, 3, 9, 0, tzinfo=UTC)


@dataclass
class Owner:
    user_id: str
    workflow_id: str


@pytest.fixture
async def engine(db: Database) -> AsyncIterator[Engine]:
    engine = Engine(db)
    yield engine
    await engine.close()
    # Each test's schedules stay out of the next test's ticks.
    async with db.write() as session:
        await session.execute(delete(WorkflowTrigger))


@pytest.fixture
async def owner(db: Database) -> Owner:
    async with db.write() as session:
        user = await UserRepo(session).create(email=f"sched-{utcnow().timestamp()}@example.com")
        workflow = await WorkflowRepo(session, owner_id=user.id).create(
            name="greeting", definition=GREETING
        )
    return Owner(user.id, workflow.id)


async def add_schedule(
    db: Database,
    owner: Owner,
    *,
    cron: str = "*/5 * * * *",
    timezone: str = "UTC",
    next_fire_at: datetime = T0,
    enabled: bool = True,
    inputs: dict[str, Any] | None = None,
) -> str:
    Schedule(cron, timezone)  # the API checks this before storing; so do the tests
    async with db.write() as session:
        trigger = await TriggerRepo(session, owner_id=owner.user_id).create(
            workflow_id=owner.workflow_id,
            kind=TriggerType.SCHEDULE,
            cron=cron,
            timezone=timezone,
            next_fire_at=next_fire_at,
            enabled=enabled,
            config={"inputs": inputs or {}},
        )
    return trigger.id


async def trigger_row(db: Database, trigger_id: str) -> WorkflowTrigger:
    async with db.read() as session:
        row = await session.get(WorkflowTrigger, trigger_id)
    assert row is not None
    return row


async def runs_of(db: Database, workflow_id: str) -> list[WorkflowRun]:
    async with db.read() as session:
        rows = await session.scalars(
            select(WorkflowRun).where(WorkflowRun.workflow_id == workflow_id)
        )
        return list(rows)


async def test_a_schedule_fires_when_due_and_not_before(
    db: Database, engine: Engine, owner: Owner
) -> None:
    trigger_id = await add_schedule(db, owner, inputs={"name": "cron"})
    loop = ScheduleLoop(db, engine)

    early = await loop.tick(T0 - timedelta(seconds=1))
    assert early.firings == []

    now = T0 + timedelta(seconds=2)
    report = await loop.tick(now)
    assert [(f.trigger_id, f.outcome) for f in report.firings] == [(trigger_id, "fired")]
    result = await engine.wait(report.runs()[0])
    assert result.status is RunStatus.COMPLETED
    assert result.outputs == {"greet": {"text": "hello cron"}}

    (run,) = await runs_of(db, owner.workflow_id)
    assert run.trigger_kind == "schedule"
    assert (run.trigger_data or {}).get("trigger_id") == trigger_id
    assert run.user_id == owner.user_id
    row = await trigger_row(db, trigger_id)
    assert row.next_fire_at == T0 + timedelta(minutes=5)
    assert row.last_fired_at == now

    # The same moment again, or a little later: nothing is due any more.
    assert (await loop.tick(now)).firings == []
    assert (await loop.tick(now + timedelta(minutes=1))).firings == []
    # The next fire time fires.
    again = await loop.tick(T0 + timedelta(minutes=5, seconds=1))
    assert again.count("fired") == 1
    await engine.wait(again.runs()[0])
    assert len(await runs_of(db, owner.workflow_id)) == 2


async def test_a_late_schedule_within_the_grace_fires_once_not_per_fire_time(
    db: Database, engine: Engine, owner: Owner
) -> None:
    trigger_id = await add_schedule(db, owner, cron="* * * * *")
    loop = ScheduleLoop(db, engine, grace_s=300)
    now = T0 + timedelta(minutes=3, seconds=10)  # four fire times passed, all within grace
    report = await loop.tick(now)
    assert [f.outcome for f in report.firings] == ["fired"]
    await engine.wait(report.runs()[0])
    assert (await trigger_row(db, trigger_id)).next_fire_at == T0 + timedelta(minutes=4)
    assert (await loop.tick(now)).firings == []


async def test_disabled_schedules_and_inactive_workflows_do_not_fire(
    db: Database, engine: Engine, owner: Owner
) -> None:
    await add_schedule(db, owner, enabled=False)
    loop = ScheduleLoop(db, engine)
    assert (await loop.tick(T0 + timedelta(seconds=1))).firings == []

    await add_schedule(db, owner)
    async with db.write() as session:
        await WorkflowRepo(session, owner_id=owner.user_id).update(
            workflow_id=owner.workflow_id, active=False
        )
    assert (await loop.tick(T0 + timedelta(seconds=1))).firings == []
    assert await runs_of(db, owner.workflow_id) == []


async def test_missed_fire_times_are_reported_once_and_not_replayed(
    db: Database, engine: Engine, owner: Owner
) -> None:
    trigger_id = await add_schedule(db, owner, cron="* * * * *")
    loop = ScheduleLoop(db, engine, grace_s=60)
    # The server was down from just before T0 until 10.5 minutes later.
    now = T0 + timedelta(minutes=10, seconds=30)
    report = await loop.tick(now)
    assert [(f.outcome, f.missed) for f in report.firings] == [("missed", 11)]
    assert await runs_of(db, owner.workflow_id) == []
    row = await trigger_row(db, trigger_id)
    assert row.next_fire_at == T0 + timedelta(minutes=11)
    assert row.last_fired_at is None

    async with db.read() as session:
        (entry,) = await session.scalars(
            select(AuditEntry).where(
                AuditEntry.object_id == trigger_id, AuditEntry.action == "schedule.missed"
            )
        )
    assert entry.user_id == owner.user_id
    assert entry.details["missed"] == 11
    assert entry.details["first_missed_at"] == T0.isoformat()
    assert entry.details["next_fire_at"] == (T0 + timedelta(minutes=11)).isoformat()

    # Reported once: the next pass finds nothing; the next fire time fires normally.
    assert (await loop.tick(now + timedelta(seconds=1))).firings == []
    on_time = await loop.tick(T0 + timedelta(minutes=11, seconds=1))
    assert [f.outcome for f in on_time.firings] == ["fired"]
    await engine.wait(on_time.runs()[0])
    assert len(await runs_of(db, owner.workflow_id)) == 1


async def test_a_run_that_cannot_start_is_audited_and_the_schedule_moves_on(
    db: Database, engine: Engine, owner: Owner
) -> None:
    async with db.write() as session:
        broken = await WorkflowRepo(session, owner_id=owner.user_id).create(
            name="broken",
            definition={"schema_version": 1, "nodes": [{"id": "x", "type": "no.such"}]},
            is_valid=False,
        )
    trigger_id = await add_schedule(db, Owner(owner.user_id, broken.id))
    loop = ScheduleLoop(db, engine)
    report = await loop.tick(T0 + timedelta(seconds=1))
    assert [f.outcome for f in report.firings] == ["failed"]
    assert (await trigger_row(db, trigger_id)).next_fire_at == T0 + timedelta(minutes=5)
    async with db.read() as session:
        count = await session.scalar(
            select(func.count()).where(
                AuditEntry.object_id == trigger_id, AuditEntry.action == "schedule.failed"
            )
        )
    assert count == 1


@pytest.fixture
async def second_db(db: Database) -> AsyncIterator[Database]:
    """Another connection pool on the same database: what a second server process has."""
    if db.is_sqlite:
        other = Database(db.url)
    else:
        async with db.engine.connect() as conn:
            schema = (await conn.exec_driver_sql("SELECT current_schema()")).scalar_one()
        other = Database(POSTGRES_URL, connect_args={"server_settings": {"search_path": schema}})
    yield other
    await other.dispose()


async def test_two_tickers_that_saw_the_same_due_schedule_fire_it_once(
    db: Database, second_db: Database, engine: Engine, owner: Owner
) -> None:
    trigger_id = await add_schedule(db, owner)
    other_engine = Engine(second_db)
    try:
        first, second = ScheduleLoop(db, engine), ScheduleLoop(second_db, other_engine)
        now = T0 + timedelta(seconds=1)
        # Both read the schedule as due before either claims it.
        (seen_first,) = await first.due(now)
        (seen_second,) = await second.due(now)
        assert seen_first.trigger_id == seen_second.trigger_id == trigger_id
        outcomes = await asyncio.gather(first.fire(seen_first, now), second.fire(seen_second, now))
        assert sorted(f.outcome for f in outcomes) == ["fired", "lost"]
        (fired,) = [f for f in outcomes if f.run_id is not None]
        waiter = engine if outcomes[0].run_id else other_engine
        assert (await waiter.wait(fired.run_id or "")).status is RunStatus.COMPLETED
    finally:
        await other_engine.close()
    assert len(await runs_of(db, owner.workflow_id)) == 1


async def test_concurrent_ticks_in_two_processes_fire_each_due_schedule_once(
    db: Database, second_db: Database, engine: Engine, owner: Owner
) -> None:
    triggers = {await add_schedule(db, owner, inputs={"name": str(n)}) for n in range(5)}
    other_engine = Engine(second_db)
    try:
        first, second = ScheduleLoop(db, engine), ScheduleLoop(second_db, other_engine)
        now = T0 + timedelta(seconds=1)
        reports = await asyncio.gather(first.tick(now), second.tick(now), first.tick(now))
        fired = [f for r in reports for f in r.firings if f.outcome == "fired"]
        assert sorted(f.trigger_id for f in fired) == sorted(triggers)
        for report, eng in zip(reports, (engine, other_engine, engine), strict=True):
            for run_id in report.runs():
                await eng.wait(run_id)
    finally:
        await other_engine.close()
    runs = await runs_of(db, owner.workflow_id)
    assert len(runs) == 5
    assert sorted(r.inputs["name"] for r in runs) == ["0", "1", "2", "3", "4"]


async def test_the_loop_runs_in_the_background_and_stops_cleanly(
    db: Database, engine: Engine, owner: Owner
) -> None:
    await add_schedule(db, owner, cron="* * * * *", next_fire_at=utcnow() - timedelta(seconds=1))
    loop = ScheduleLoop(db, engine, interval_s=0.05)
    with engine.bus.subscribe() as events:
        loop.start()
        try:
            async with asyncio.timeout(10):
                async for event in events:
                    if event.type == "run.completed":
                        break
        finally:
            async with asyncio.timeout(5):
                await loop.stop()
    (run,) = await runs_of(db, owner.workflow_id)
    assert run.id == event.run_id
    await loop.stop()  # stopping twice is harmless
