"""Every filter a run history offers walks an index that stops within a page, on SQLite and on
PostgreSQL (its generic plan, the one a prepared statement keeps): for each shape of filters
``read_history`` builds, the index the plan walks and no sort.

Without an index of its own, a status or a trigger filter walked every run of the owner before
giving up: 52 ms for a status none of 20,000 runs had, on PostgreSQL at a million runs.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Connection, text

from flowloom.storage.database import Database, sqlite_connection
from flowloom.storage.repos import run_history
from flowloom.storage.repos.run_history import read_history
from tests.storage.test_runs_repo import create_run, make_owner

_VALUES: dict[str, Any] = {
    "owner_id": "usr_owner",
    "workflow_id": "wf_one",
    "status": "CANCELLED",
    "trigger": "schedule",
    "since_id": "run_0",
    "until_id": "run_z",
    "cursor": "run_y",
    "fetch": 11,
}

# (workflow given, status given, trigger given) -> the index the walk must follow.
_WALKS = {
    (False, False, False): "ix_workflow_runs_user_id_id",
    (True, False, False): "ix_workflow_runs_workflow_id_id",
    (False, True, False): "ix_workflow_runs_user_id_status_id",
    (True, True, False): "ix_workflow_runs_workflow_id_status_id",
    (False, False, True): "ix_workflow_runs_user_id_trigger_kind_id",
    (True, False, True): "ix_workflow_runs_workflow_id_trigger_kind_id",
}


def _shapes() -> list[Any]:
    return [
        pytest.param(
            run_history._Shape(workflow, status, trigger, since, False, cursor),
            index,
            id=f"{index.removeprefix('ix_workflow_runs_')}{'-since' if since else ''}"
            f"{'-cursor' if cursor else ''}",
        )
        for (workflow, status, trigger), index in _WALKS.items()
        for since, cursor in ((False, False), (True, False), (False, True))
    ]


def _sqlite_plan(db: Database, sql: str, args: tuple[Any, ...]) -> Any:
    def explain(conn: Connection) -> str:
        rows = sqlite_connection(conn).execute(f"EXPLAIN QUERY PLAN {sql}", args).fetchall()
        return "\n".join(str(row[-1]) for row in rows)

    return db.run_read(explain)


def _literal(value: Any) -> str:
    return str(value) if isinstance(value, int) else "'" + str(value).replace("'", "''") + "'"


async def _postgres_plan(db: Database, sql: str, args: tuple[Any, ...]) -> str:
    async with db.read() as session:
        # The generic plan, as a prepared statement settles on; an empty table would otherwise
        # be read whole, which says nothing about a table of a million runs.
        await session.execute(text("SET LOCAL plan_cache_mode = force_generic_plan"))
        await session.execute(text("SET LOCAL enable_seqscan = off"))
        await session.execute(text(f"PREPARE history_plan AS {sql}"))
        try:
            listed = ", ".join(_literal(arg) for arg in args)
            rows = await session.execute(text(f"EXPLAIN EXECUTE history_plan({listed})"))
            return "\n".join(str(row[0]) for row in rows)
        finally:
            await session.execute(text("DEALLOCATE history_plan"))


@pytest.mark.parametrize(("shape", "index"), _shapes())
async def test_each_history_filter_walks_an_index_of_its_own(
    db: Database, shape: Any, index: str
) -> None:
    statement = run_history._raw_statement(shape, db.engine.dialect)
    args = statement.args(_VALUES)
    if db.is_sqlite:
        plan = await _sqlite_plan(db, statement.sql, args)
        assert f"USING INDEX {index} " in plan, plan
        assert "TEMP B-TREE" not in plan, plan
    else:
        plan = await _postgres_plan(db, statement.sql, args)
        assert f"Index Scan Backward using {index} on workflow_runs" in plan, plan
        assert "Sort" not in plan, plan


async def test_a_status_and_a_trigger_together_still_give_the_matching_runs(db: Database) -> None:
    user, (wf,) = await make_owner(db)
    made = [await create_run(db, user, wf) for _ in range(4)]
    both = await read_history(db, owner_id=user, status="PENDING", trigger="manual", limit=2)
    assert [run.id for run in both.items] == made[::-1][:2]
    rest = await read_history(
        db, owner_id=user, status="PENDING", trigger="manual", cursor=both.next_cursor
    )
    assert [run.id for run in rest.items] == made[::-1][2:]
    assert (await read_history(db, owner_id=user, status="FAILED", trigger="manual")).items == []
