"""The storage benchmark's fill writes what the application itself would read and write.

The fill (``benchmarks.storage_fill``) bypasses the ORM for speed, so here a small fill on both
databases is read back through the application's own repositories and compared, column by
column, with the rows as the application holds them (``fill_rows.PYTHON``); the SQLite values
are compared with what SQLAlchemy's column types bind; ids are checked against
``flowloom.ids``; and the schema (indexes, foreign keys, journal mode) is the one the
migrations made, although the loaders drop and rebuild indexes.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, cast

import pytest
from sqlalchemy import Table, func, select, text
from sqlalchemy.dialects import sqlite as sqlite_dialect

from benchmarks.fill_rows import (
    NODE_COLUMNS,
    NODES_PER_RUN,
    PYTHON,
    RUN_COLUMNS,
    SQLITE,
    USAGE_COLUMNS,
    Chunk,
    chunks,
    encode_id,
)
from benchmarks.storage_fill import FillPlan, FillResult, fill
from flowloom.ids import PREFIXES, id_timestamp_ms, idempotency_key, parse_id
from flowloom.storage.bound import bind, processors
from flowloom.storage.database import Database
from flowloom.storage.enums import NodeStatus, RunStatus
from flowloom.storage.repos.runs import RunRepo, active_runs_by_status
from flowloom.storage.repos.usage import UsageRepo
from flowloom.storage.tables import NodeExecution, Usage, User, Workflow, WorkflowRun

RUNS = 200
USERS = 5
END = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
TABLES: tuple[tuple[Any, tuple[str, ...]], ...] = (
    (WorkflowRun, RUN_COLUMNS),
    (NodeExecution, NODE_COLUMNS),
    (Usage, USAGE_COLUMNS),
)


@dataclass
class Filled:
    db: Database
    plan: FillPlan
    result: FillResult
    rows: Chunk
    """Every row of the fill as the application holds the values."""
    schema_before: set[tuple[str, ...]]


def _all_rows(plan: FillPlan, encoding: Any, result: FillResult) -> Chunk:
    whole = Chunk([], [], [])
    for part in chunks(plan.rows(), encoding, result.user_ids, result.workflow_ids, plan.owner_of):
        for into, rows in zip(whole, part, strict=True):
            into.extend(rows)
    return whole


async def _schema(db: Database) -> set[tuple[str, ...]]:
    """The loaded tables' indexes and foreign keys, as the database describes them."""
    async with db.read() as s:
        if db.is_sqlite:
            rows = await s.execute(
                text(
                    "SELECT type, name, tbl_name, coalesce(sql, '') FROM sqlite_master"
                    " WHERE tbl_name IN ('workflow_runs', 'node_executions', 'usage')"
                )
            )
        else:
            rows = await s.execute(
                text(
                    "SELECT 'index', indexname, tablename, indexdef FROM pg_indexes"
                    " WHERE schemaname = current_schema()"
                    " AND tablename IN ('workflow_runs', 'node_executions', 'usage')"
                    " UNION ALL SELECT 'constraint', conname, conrelid::regclass::text,"
                    " pg_get_constraintdef(oid) || ' ' || convalidated FROM pg_constraint"
                    " WHERE conrelid IN ('workflow_runs'::regclass,"
                    " 'node_executions'::regclass, 'usage'::regclass)"
                )
            )
        return {tuple(str(v) for v in row) for row in rows}


@pytest.fixture(scope="module")
async def filled(db: Database) -> Filled:
    plan = FillPlan(runs=RUNS, users=USERS, end=END)
    before = await _schema(db)
    result = await fill(db, plan)
    return Filled(db, plan, result, _all_rows(plan, PYTHON, result), before)


def _as_dict(columns: tuple[str, ...], row: tuple[Any, ...]) -> dict[str, Any]:
    return dict(zip(columns, row, strict=True))


async def test_every_row_reads_back_as_the_application_holds_it(filled: Filled) -> None:
    async with filled.db.read() as s:
        for (table, columns), expected in zip(TABLES, filled.rows, strict=True):
            stored = (await s.scalars(select(table).order_by(table.id))).all()
            assert (
                len(stored)
                == len(expected)
                == RUNS * (NODES_PER_RUN if table is NodeExecution else 1)
            )
            by_id = {row[0]: _as_dict(columns, row) for row in expected}
            for item in stored:
                want = by_id[item.id]
                got = {c: getattr(item, c) for c in columns}
                assert got == want, table.__tablename__
                # Columns the fill leaves out hold their defaults, as after an ORM insert.
                if table is WorkflowRun:
                    assert (item.use_cache, item.use_pinned, item.depth) == (True, False, 0)


async def test_ids_are_flowloom_ids_of_their_rows_creation_time(filled: Filled) -> None:
    owners: tuple[tuple[Any, str], ...] = (
        (User, PREFIXES["users"]),
        (Workflow, PREFIXES["workflows"]),
    )
    async with filled.db.read() as s:
        for table, prefix in owners:
            for item in (await s.scalars(select(table))).all():
                parse_id(item.id, prefix=prefix)
                assert id_timestamp_ms(item.id) == _ms(item.created_at)
    prefixes = (PREFIXES["workflow_runs"], PREFIXES["node_executions"], PREFIXES["usage"])
    for (_table, columns), rows, prefix in zip(TABLES, filled.rows, prefixes, strict=True):
        ids = [row[0] for row in rows]
        assert len(set(ids)) == len(ids)
        assert ids == sorted(ids)  # time-ordered: made in creation order, they sort so
        for row in rows:
            value = parse_id(row[0], prefix=prefix).int
            assert (value >> 76) & 0xF == 7  # UUID version 7
            assert (value >> 62) & 0b11 == 0b10  # RFC 4122 variant
            assert id_timestamp_ms(row[0]) == _ms(row[columns.index("created_at")])
    # The fast path of the ids is the plain encoding of (time, serial): a run's is 8 * its index.
    assert [r[0] for r in filled.rows.runs] == [
        encode_id(PREFIXES["workflow_runs"], id_timestamp_ms(r[0]), 8 * i)
        for i, r in enumerate(filled.rows.runs)
    ]


async def test_history_pages_of_the_repository_walk_every_run(filled: Filled) -> None:
    runs = filled.rows.runs
    for owner_index in (0, 1):
        owner = filled.result.user_ids[owner_index]
        workflow = filled.result.workflow_ids[owner_index]
        mine = sorted((r for r in runs if r[3] == owner), key=lambda r: r[0], reverse=True)
        assert mine
        for filters, expected in (
            ({}, mine),
            ({"workflow_id": workflow}, mine),
            ({"status": RunStatus.COMPLETED}, [r for r in mine if r[4] == "COMPLETED"]),
            ({"status": RunStatus.FAILED}, [r for r in mine if r[4] == "FAILED"]),
        ):
            walked: list[str] = []
            cursor: str | None = None
            while True:
                async with filled.db.read() as s:
                    page = await RunRepo(s, owner_id=owner).history(cursor=cursor, **filters)
                walked += [run.id for run in page.items]
                if page.next_cursor is None:
                    break
                cursor = page.next_cursor
            assert walked == [r[0] for r in expected], filters
    assert any(r[4] == "FAILED" for r in runs), "the fill should hold failed runs"


async def test_a_run_reads_back_with_its_nodes(filled: Filled) -> None:
    active = [r for r in filled.rows.runs if r[4] in ("PENDING", "RUNNING", "WAITING")]
    assert active
    for run_row in (filled.rows.runs[0], filled.rows.runs[RUNS // 2], active[-1]):
        async with filled.db.read() as s:
            run, nodes = await RunRepo(s, owner_id=run_row[3]).get_with_nodes(run_id=run_row[0])
        assert run.status == run_row[4]
        assert [n.node_id for n in nodes] == [f"n{i}" for i in range(NODES_PER_RUN)]
        for node in nodes:
            assert node.idempotency_key == idempotency_key(run.id, node.node_id)
            finished = run.status not in ("PENDING", "RUNNING", "WAITING")
            done = finished or node.node_id == "n0"
            assert node.status == (NodeStatus.SUCCEEDED if done else NodeStatus.PENDING)
            assert node.pending_parents == (0 if done else 1)


async def test_usage_and_monitoring_sum_the_filled_rows(filled: Filled) -> None:
    owner = filled.result.user_ids[1]
    mine = [_as_dict(USAGE_COLUMNS, r) for r in filled.rows.usage if r[1] == owner]
    start, end = END - timedelta(days=filled.plan.days + 1), END + timedelta(days=1)
    async with filled.db.read() as s:
        by_model = await UsageRepo(s, owner_id=owner).by_model(start=start, end=end)
        active = await active_runs_by_status(s)
        counts = {
            table.__tablename__: await s.scalar(select(func.count()).select_from(table))
            for table, _ in TABLES
        }
    assert counts == {"workflow_runs": RUNS, "node_executions": RUNS * 5, "usage": RUNS}
    assert sum(m.calls for m in by_model) == len(mine)
    assert sum((m.cost for m in by_model), Decimal(0)) == sum(u["cost"] for u in mine)
    assert sum(m.tokens_total for m in by_model) == sum(u["tokens_total"] for u in mine)
    statuses = [r[4] for r in filled.rows.runs]
    assert {k: v for k, v in active.items() if v} == {
        RunStatus(s): statuses.count(s) for s in ("PENDING", "RUNNING", "WAITING") if s in statuses
    }


async def test_the_schema_is_the_migrations_and_the_file_is_back_in_wal(filled: Filled) -> None:
    assert await _schema(filled.db) == filled.schema_before
    if not filled.db.is_sqlite:
        return
    path = filled.db.engine.url.database
    assert path is not None
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        conn.close()


def test_sqlite_values_are_what_the_column_types_bind() -> None:
    """Each SQLite-ready value equals SQLAlchemy's bind of the application's value."""
    plan = FillPlan(runs=RUNS, users=USERS, end=END)
    owners = FillResult(user_ids=[f"usr_{i}" for i in range(USERS)], workflow_ids=[])
    owners.workflow_ids = [f"wf_{i}" for i in range(USERS)]
    ready = _all_rows(plan, SQLITE, owners)
    held = _all_rows(plan, PYTHON, owners)
    dialect = sqlite_dialect.dialect()
    for (table, columns), ready_rows, held_rows in zip(TABLES, ready, held, strict=True):
        binders = processors(dialect, cast(Table, table.__table__), columns)
        for ready_row, held_row in zip(ready_rows, held_rows, strict=True):
            # A value the application does not have (a run's outputs while it runs) is SQL
            # NULL, as when its INSERT leaves the column out; the JSON type binds an explicit
            # None as the JSON text 'null'.
            bound = bind(binders, held_row)
            expected = [None if h is None else b for h, b in zip(held_row, bound, strict=True)]
            assert list(ready_row) == expected
    # Times at the edges of a day, a month and a leap day bind alike.
    binders = processors(dialect, cast(Table, WorkflowRun.__table__), ("created_at",))
    for moment in ("2024-02-29T00:00:00", "2024-02-29T23:59:59.999", "2026-12-31T23:59:59.001"):
        ms = _ms(datetime.fromisoformat(moment).replace(tzinfo=UTC))
        assert [SQLITE.time(ms)] == bind(binders, [PYTHON.time(ms)])


def _ms(moment: datetime) -> int:
    return round(moment.timestamp() * 1000)
