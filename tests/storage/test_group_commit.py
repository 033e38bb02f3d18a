"""Group commit on SQLite (group_commit.py): the inline writes of many callers share one
transaction and one COMMIT, and yet each caller sees what a transaction of its own would give
it: its own result, its own exception, nothing of its own written when it failed."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from childtable import committed_values, create_child_tables
from loopticks import LoopTicks
from sqlalchemy.engine import Connection

from flowloom.storage.database import Database
from flowloom.storage.sqlite_lanes import SqliteLanes


@pytest.fixture
async def sqlite_db(tmp_path: Path) -> AsyncIterator[tuple[Database, Path]]:
    path = tmp_path / "flowloom.db"
    db = Database(f"sqlite:///{path}")
    await create_child_tables(db)
    yield db, path
    await db.dispose()


@pytest.fixture
def commits(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """One entry per COMMIT of the held writer."""
    counted: list[int] = []
    committed = SqliteLanes._committed

    def counting(self: SqliteLanes, conn: Connection) -> None:
        counted.append(1)
        committed(self, conn)

    monkeypatch.setattr(SqliteLanes, "_committed", counting)
    return counted


def _insert(value: int, parent_id: int | None = None) -> Callable[[Connection], int]:
    def write(conn: Connection) -> int:
        conn.exec_driver_sql(
            "INSERT INTO child (value, parent_id) VALUES (?, ?)", (value, parent_id)
        )
        return value * 10

    return write


async def _together(db: Database, *fns: Callable[[Connection], Any]) -> list[Any]:
    """The writes started in one pass of the event loop: they join one group."""
    return await asyncio.gather(
        *(db.run_write(fn, inline=True) for fn in fns), return_exceptions=True
    )


async def test_writes_that_arrive_together_commit_once_each_with_its_result(
    sqlite_db: tuple[Database, Path], commits: list[int]
) -> None:
    db, path = sqlite_db
    results = await _together(db, *(_insert(value) for value in range(1, 6)))
    assert results == [10, 20, 30, 40, 50]
    assert len(commits) == 1
    assert committed_values(path) == [1, 2, 3, 4, 5]


async def test_writes_apart_in_time_commit_apart(
    sqlite_db: tuple[Database, Path], commits: list[int]
) -> None:
    db, path = sqlite_db
    assert await db.run_write(_insert(1), inline=True) == 10
    assert await db.run_write(_insert(2), inline=True) == 20
    assert len(commits) == 2
    assert committed_values(path) == [1, 2]


async def test_a_write_refused_before_it_wrote_fails_alone_in_the_same_commit(
    sqlite_db: tuple[Database, Path], commits: list[int]
) -> None:
    db, path = sqlite_db

    def refused(conn: Connection) -> None:
        conn.exec_driver_sql("SELECT count(*) FROM child").scalar()
        raise PermissionError("over the limit")

    results = await _together(db, _insert(1), refused, _insert(3))
    assert results[0] == 10
    assert results[2] == 30
    assert isinstance(results[1], PermissionError)
    assert len(commits) == 1
    assert committed_values(path) == [1, 3]


async def test_a_write_that_fails_after_writing_leaves_nothing_and_the_others_commit(
    sqlite_db: tuple[Database, Path], commits: list[int]
) -> None:
    db, path = sqlite_db
    runs: list[str] = []

    def halfway(conn: Connection) -> None:
        runs.append("halfway")
        _insert(2)(conn)
        raise LookupError("changed my mind")

    results = await _together(db, _insert(1), halfway, _insert(3))
    assert results[0] == 10
    assert results[2] == 30
    assert isinstance(results[1], LookupError)
    # Rolled back as a whole, then written again apart: the failed write ran twice.
    assert runs == ["halfway", "halfway"]
    assert len(commits) == 1
    assert committed_values(path) == [1, 3]
    # The writer is clean afterwards.
    assert await db.run_write(_insert(4), inline=True) == 40
    assert committed_values(path) == [1, 3, 4]


async def test_a_commit_that_fails_for_one_write_fails_that_write_only(
    sqlite_db: tuple[Database, Path],
) -> None:
    db, path = sqlite_db
    # A deferred foreign key fails at COMMIT: the whole group's commit, then that write alone.
    results = await _together(db, _insert(1), _insert(2, parent_id=99), _insert(3))
    assert results[0] == 10
    assert results[2] == 30
    assert isinstance(results[1], Exception)
    assert "FOREIGN KEY" in str(results[1])
    assert committed_values(path) == [1, 3]
    assert await db.run_write(_insert(4), inline=True) == 40


async def test_a_caller_cancelled_before_its_group_writes_nothing(
    sqlite_db: tuple[Database, Path],
) -> None:
    db, path = sqlite_db
    assert await db.run_write(_insert(0), inline=True) == 0  # the writer is held from now on
    kept = asyncio.create_task(db.run_write(_insert(1), inline=True))
    cancelled = asyncio.create_task(db.run_write(_insert(2), inline=True))
    await asyncio.sleep(0)  # both have joined the group; it has not begun
    cancelled.cancel()
    assert await kept == 10
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    assert committed_values(path) == [0, 1]


async def test_a_leader_cancelled_before_its_group_began_leaves_its_followers_a_commit(
    sqlite_db: tuple[Database, Path],
) -> None:
    db, path = sqlite_db
    assert await db.run_write(_insert(0), inline=True) == 0
    leader = asyncio.create_task(db.run_write(_insert(1), inline=True))
    followers = [asyncio.create_task(db.run_write(_insert(n), inline=True)) for n in (2, 3)]
    await asyncio.sleep(0)  # all have joined the group; it has not begun
    leader.cancel()
    assert await asyncio.gather(*followers) == [20, 30]
    with pytest.raises(asyncio.CancelledError):
        await leader
    assert committed_values(path) == [0, 2, 3]


async def test_a_group_commits_in_a_task_of_its_own_and_a_write_alone_where_it_closed(
    sqlite_db: tuple[Database, Path],
) -> None:
    db, path = sqlite_db
    assert await db.run_write(_insert(0), inline=True) == 0

    def task_of(value: int) -> Callable[[Connection], asyncio.Task[Any] | None]:
        def write(conn: Connection) -> asyncio.Task[Any] | None:
            _insert(value)(conn)
            return asyncio.current_task()

        return write

    alone = asyncio.create_task(db.run_write(task_of(1), inline=True))
    assert await alone is alone
    leader = asyncio.create_task(db.run_write(task_of(2), inline=True))
    follower = asyncio.create_task(db.run_write(task_of(3), inline=True))
    committed_by = await asyncio.gather(leader, follower)
    assert committed_by[0] is committed_by[1]
    assert committed_by[0] not in (leader, follower)
    assert committed_values(path) == [0, 1, 2, 3]


async def test_a_leader_cancelled_once_its_group_closed_but_before_it_began_writes_nothing(
    sqlite_db: tuple[Database, Path],
) -> None:
    db, path = sqlite_db
    assert await db.run_write(_insert(0), inline=True) == 0
    leader = asyncio.create_task(db.run_write(_insert(1), inline=True))
    follower = asyncio.create_task(db.run_write(_insert(2), inline=True))
    await asyncio.sleep(0)  # both have joined the group
    await asyncio.sleep(0)  # it has closed: its commit is a task's, not begun yet
    leader.cancel()
    assert await follower == 20
    with pytest.raises(asyncio.CancelledError):
        await leader
    assert committed_values(path) == [0, 2]


async def test_a_group_waits_off_the_loop_while_another_process_holds_the_lock(
    sqlite_db: tuple[Database, Path], commits: list[int]
) -> None:
    db, path = sqlite_db
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")  # another writer holds the lock, as another process would
    async with LoopTicks() as ticks:
        writing = asyncio.ensure_future(_together(db, _insert(1), _insert(2)))
        await asyncio.sleep(0.3)
        # More writes join while the group waits: they are written after it.
        later = asyncio.ensure_future(_together(db, _insert(3), _insert(4)))
        await asyncio.sleep(0.05)
        assert not writing.done()
        assert not later.done()
        other.execute("COMMIT")
        assert await writing == [10, 20]
        assert await later == [30, 40]
    other.close()
    assert ticks.count >= 10  # the event loop ran on while the writes waited for the lock
    assert len(commits) == 2
    assert committed_values(path) == [1, 2, 3, 4]


async def test_dispose_waits_for_the_group_that_has_begun(
    sqlite_db: tuple[Database, Path],
) -> None:
    db, path = sqlite_db
    writing = asyncio.ensure_future(_together(db, _insert(1), _insert(2)))
    for _ in range(2):  # a pass for the gather to start its tasks, one for them to join
        await asyncio.sleep(0)
    await db.dispose()  # the writes have joined; their group has not run yet
    assert committed_values(path) == [1, 2]  # committed before the connections closed
    assert await writing == [10, 20]


async def test_after_writes_that_came_alone_a_burst_forms_groups_again(
    sqlite_db: tuple[Database, Path], commits: list[int]
) -> None:
    db, path = sqlite_db
    for value in range(20):  # each alone: soon committed without waiting for followers
        assert await db.run_write(_insert(value), inline=True) == value * 10
    assert len(commits) == 20
    bursts = []
    for burst in range(3):
        values = range(100 + 10 * burst, 105 + 10 * burst)
        before = len(commits)
        assert await _together(db, *(_insert(value) for value in values)) == [
            value * 10 for value in values
        ]
        bursts.append(len(commits) - before)
    # The probe lets a burst group again within a few writes; then groups stay.
    assert bursts[-1] == 1
    assert sum(bursts) < 15
    assert len(committed_values(path)) == 35
