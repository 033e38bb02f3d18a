"""read_history on SQLite and PostgreSQL: RunRepo.history's pages as plain rows, in one hop."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import update

from flowloom.exceptions import InputError
from flowloom.storage.database import Database
from flowloom.storage.enums import RunStatus, TriggerKind
from flowloom.storage.repos.run_history import HistoryRow, read_history
from flowloom.storage.repos.runs import RunRepo
from flowloom.storage.tables import WorkflowRun
from tests.storage.test_runs_repo import create_run, make_owner, walk


async def _pages(db: Database, user: str, **filters: Any) -> list[list[HistoryRow]]:
    """Every page of ``read_history``, following ``next_cursor`` with a page size of 3."""
    pages: list[list[HistoryRow]] = []
    cursor: str | None = None
    while True:
        page = await read_history(db, owner_id=user, cursor=cursor, limit=3, **filters)
        pages.append(page.items)
        if page.next_cursor is None:
            return pages
        cursor = page.next_cursor


async def test_read_history_gives_the_repositorys_pages_in_one_hop(db: Database) -> None:
    user, (wf, other_wf) = await make_owner(db, workflows=2)
    stranger, (theirs,) = await make_owner(db)
    created = [await create_run(db, user, wf) for _ in range(13)]
    await create_run(db, user, other_wf)
    await create_run(db, stranger, theirs)

    first = await read_history(db, owner_id=user, workflow_id=wf)
    second = await read_history(db, owner_id=user, workflow_id=wf, cursor=first.next_cursor)
    assert [run.id for run in first.items + second.items] == created[::-1]
    assert second.next_cursor is None
    assert first.items[0].workflow_id == wf
    assert await walk(db, user, workflow_id=wf) == [
        [run.id for run in first.items],
        [run.id for run in second.items],
    ], "the same pages as RunRepo.history"

    assert (await read_history(db, owner_id=user, workflow_id=theirs)).items == []
    everything = await read_history(db, owner_id=user, limit=100)
    assert theirs not in {run.workflow_id for run in everything.items}
    assert len(everything.items) == 14
    with pytest.raises(InputError, match="cursor"):
        await read_history(db, owner_id=user, cursor="wf_not-a-run")
    with pytest.raises(InputError, match="limit"):
        await read_history(db, owner_id=user, limit=0)
    at = datetime.now(UTC)
    with pytest.raises(InputError, match="until"):
        await read_history(db, owner_id=user, since=at, until=at)


async def test_rows_hold_what_the_orm_reads_under_every_filter(db: Database) -> None:
    user, (wf, other_wf) = await make_owner(db, workflows=2)
    stranger, (theirs,) = await make_owner(db)
    runs = [
        await create_run(db, user, wf if n % 3 else other_wf, inputs={"n": n, "é": [1.5, None]})
        for n in range(8)
    ]
    runs.append(await create_run(db, user, wf, trigger_kind=TriggerKind.WEBHOOK))
    await create_run(db, stranger, theirs)
    now = datetime.now(UTC)
    async with db.write() as s:
        await s.execute(
            update(WorkflowRun)
            .where(WorkflowRun.id.in_(runs[2:6]))
            .values(
                status=RunStatus.COMPLETED,
                outputs={"out": {"text": "ünïcode", "n": 2}},
                error=None,
                started_at=now - timedelta(seconds=2),
                finished_at=now,
                duration_ms=2000,
                cancel_requested=True,
            )
        )
        await s.execute(
            update(WorkflowRun)
            .where(WorkflowRun.id == runs[6])
            .values(status=RunStatus.FAILED, error={"message": "boom"}, use_pinned=True)
        )
    async with db.read() as s:
        orm = {run.id: run for run in (await RunRepo(s, owner_id=user).history(limit=100)).items}
    hour = timedelta(hours=1)

    for filters in (
        {},
        {"workflow_id": wf},
        {"workflow_id": theirs},
        {"status": RunStatus.COMPLETED},
        {"status": RunStatus.FAILED, "workflow_id": wf},
        {"trigger": TriggerKind.WEBHOOK},
        {"since": now - hour, "until": now + hour},
        {"until": now - hour},
    ):
        pages = await _pages(db, user, **filters)
        expected = [r for p in await walk(db, user, **filters) for r in p]
        assert [row.id for page in pages for row in page] == expected, filters
        assert all(len(page) == 3 for page in pages[:-1]), filters
        for row in (row for page in pages for row in page):
            run = orm[row.id]
            assert row == tuple(getattr(run, name) for name in HistoryRow._fields), filters
            assert row.created_at.tzinfo is not None
            assert isinstance(row.cancel_requested, bool)
            assert isinstance(row.use_pinned, bool)

    completed = (await read_history(db, owner_id=user, status=RunStatus.COMPLETED)).items
    assert [row.id for row in completed] == runs[5:1:-1]
    assert completed[0].outputs == {"out": {"text": "ünïcode", "n": 2}}
    assert completed[0].duration_ms == 2000
    failed = (await read_history(db, owner_id=user, status=RunStatus.FAILED)).items
    assert [(row.error, row.use_pinned) for row in failed] == [({"message": "boom"}, True)]
