"""The storage benchmark: the queries the seeds name, at a million runs, on SQLite or PostgreSQL.

    python -m benchmarks.storage --db sqlite|postgresql --runs N [--repeat R] [--keep] [--reuse]

Fills a fresh database (``benchmarks.storage_fill``), then times, through the repositories the
application uses: a page of run history (first page and the 1,000th, by user and by workflow),
usage grouped by model and by day over 30 days (one user, the whole instance), the monitoring
queries, and pruning 10% of the runs when ``flowloom.storage.maintenance.prune_runs`` exists.
Prints one table (median, min, max over ``--repeat`` runs) and the query plan of the history page.

SQLite lives in a temporary file (``--path`` to choose it); PostgreSQL in a fresh database
``flowloom_bench_*`` on ``--postgres-url``'s server, dropped afterwards unless ``--keep``.
``--reuse`` skips the fill when the database already holds the plan's runs.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import importlib
import inspect
import secrets
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import Connection, func, select, text

from benchmarks.report import Measurement, print_table, time_async
from benchmarks.storage_fill import CHUNK_RUNS, NODES_PER_RUN, FillPlan, FillResult, fill
from flowloom.storage.database import Database
from flowloom.storage.enums import RunStatus, TriggerKind
from flowloom.storage.migrate import upgrade_database
from flowloom.storage.pages import page_of
from flowloom.storage.repos.runs import (
    RunRepo,
    active_runs_by_status,
    average_successful_duration,
    history_statement,
)
from flowloom.storage.repos.usage import UsageRepo, instance_usage_by_model
from flowloom.storage.tables import User, WorkflowRun

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DEEP_PAGE = 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.storage", description=__doc__)
    parser.add_argument("--db", choices=["sqlite", "postgresql"], required=True)
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=15, help="timed repetitions per query")
    parser.add_argument("--path", type=Path, help="SQLite file (default: a temporary one)")
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL)
    parser.add_argument("--postgres-database", help="database name (default: a fresh one)")
    parser.add_argument("--keep", action="store_true", help="keep the filled database")
    parser.add_argument("--reuse", action="store_true", help="skip the fill if already filled")
    parser.add_argument("--no-prune", action="store_true", help="skip the (destructive) prune")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.users < 2 or args.repeat < 1:
        parser.error("--runs >= 1, --users >= 2 and --repeat >= 1 are required")
    asyncio.run(_run(args))
    return 0


async def _run(args: argparse.Namespace) -> None:
    plan = FillPlan(runs=args.runs, users=args.users)
    if args.db == "sqlite":
        with tempfile.TemporaryDirectory(prefix="flowloom-bench-") as tmp:
            path = args.path or Path(tmp) / "bench.db"
            if not args.reuse:
                _remove_sqlite_files(path)
            await _bench(Database(f"sqlite:///{path}"), plan, args, where=str(path))
        return
    name = args.postgres_database or f"flowloom_bench_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(args.postgres_url)
    try:
        exists = await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if exists and not args.reuse:
            await admin.execute(f'DROP DATABASE "{name}"')
        if not exists or not args.reuse:
            await admin.execute(f'CREATE DATABASE "{name}"')
        url = args.postgres_url.rsplit("/", 1)[0] + f"/{name}"
        try:
            await _bench(Database(url), plan, args, where=f"database {name}")
        finally:
            if not args.keep:
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


def _remove_sqlite_files(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


async def _bench(db: Database, plan: FillPlan, args: argparse.Namespace, *, where: str) -> None:
    try:
        await upgrade_database(db)
        filled = await _filled(db, plan)
        if filled is None:
            print(f"filling {where}: {plan.runs:,} runs ...", file=sys.stderr, flush=True)
            filled = await fill(db, plan)
            await _analyze(db)
        rows = await _measure(db, plan, filled, repeat=args.repeat)
        if not args.no_prune:
            rows += await _prune(db, plan)
        context = [
            f"database: {db.dialect} {await _version(db)}; {where}",
            f"data: {plan.runs:,} runs x {NODES_PER_RUN} node executions, {plan.runs:,} usage"
            f" rows, {plan.users:,} users (the heavy one owns {plan.heavy_runs:,} runs),"
            f" over {plan.days} days; size on disk {await _size_mb(db):,.0f} MB",
        ]
        print_table("storage benchmark", rows, context=context)
        await _print_plans(db, filled)
    finally:
        await db.dispose()


async def _filled(db: Database, plan: FillPlan) -> FillResult | None:
    """The users and workflows of an earlier fill of this plan, or None if it must be filled."""
    async with db.read() as s:
        runs = await s.scalar(select(func.count()).select_from(WorkflowRun))
        if runs != plan.runs:
            if runs:
                raise SystemExit(f"the database holds {runs:,} runs, not {plan.runs:,}")
            return None
        users = list(await s.scalars(select(User.id).order_by(User.id)))
        workflows = []
        for user in users:
            workflows.append(
                await s.scalar(select(WorkflowRun.workflow_id).where(WorkflowRun.user_id == user))
            )
    return FillResult(user_ids=users, workflow_ids=[w or "" for w in workflows])


async def _analyze(db: Database) -> None:
    # Both planners need statistics to choose well; PostgreSQL's autovacuum gathers them by
    # itself after a while, SQLite only when told (ANALYZE,
    # or PRAGMA optimize).
    async with db.engine.connect() as conn:
        if db.is_sqlite:
            await conn.exec_driver_sql("ANALYZE")
        else:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.exec_driver_sql("VACUUM ANALYZE")
        await conn.commit()


async def _measure(
    db: Database, plan: FillPlan, filled: FillResult, *, repeat: int
) -> list[Measurement]:
    heavy, typical = filled.user_ids[0], filled.user_ids[len(filled.user_ids) // 2]
    heavy_workflow = filled.workflow_ids[0]
    rows: list[Measurement] = []
    if filled.chunk_rates:
        rows.append(
            Measurement(
                "bulk insert (runs + node executions + usage)",
                filled.chunk_rates,
                unit="rows/s",
                note=f"{filled.rows:,} rows in {filled.seconds:,.1f} s, indexes built after"
                f" in {filled.index_seconds:,.1f} s of it; per {CHUNK_RUNS // 1000}k-run chunk",
            )
        )

    async def page(owner: str, cursor: str | None = None, **filters: Any) -> Any:
        async with db.read() as s:
            return await RunRepo(s, owner_id=owner).history(cursor=cursor, **filters)

    async def select_one() -> Any:
        async with db.read() as s:
            return await s.scalar(text("SELECT 1"))

    def fast_page(owner: str, cursor: str | None = None) -> Any:
        # The very statement RunRepo.history runs, through the fast path: one hop to a reader
        # thread on SQLite, no BEGIN/ROLLBACK round trips on PostgreSQL.
        statement = history_statement(owner_id=owner, cursor=cursor)

        def read(conn: Connection) -> Any:
            return page_of(conn.execute(statement).all(), limit=10)

        return db.run_read(read)

    def fast_select_one() -> Any:
        return db.run_read(lambda conn: conn.exec_driver_sql("SELECT 1").scalar())

    # The floor: what any query costs through a read session (driver, pool, transaction), so
    # the rows below can be read as floor + query.
    rows.append(await time_async("floor: SELECT 1 in a read session", select_one, repeat=repeat))
    rows.append(
        await time_async("fast path floor: SELECT 1 via run_read", fast_select_one, repeat=repeat)
    )
    rows.append(
        await time_async(
            "fast path: history page 1, heavy user (run_read)",
            lambda: fast_page(heavy),
            repeat=repeat,
        )
    )
    rows.append(await time_async("history page 1, heavy user", lambda: page(heavy), repeat=repeat))
    rows.append(
        await time_async("history page 1, typical user", lambda: page(typical), repeat=repeat)
    )
    rows.append(
        await time_async(
            "history page 1, one workflow",
            lambda: page(heavy, workflow_id=heavy_workflow),
            repeat=repeat,
        )
    )
    rows.append(
        await time_async(
            "history page 1, heavy user, status FAILED",
            lambda: page(heavy, status=RunStatus.FAILED),
            repeat=repeat,
        )
    )
    # The worst cases of a filter: a status or a trigger none of the owner's runs has, which
    # a walk of the owner's runs would read to the end before answering with nothing.
    for label, filters in (
        ("history page 1, heavy user, status CANCELLED (none)", {"status": RunStatus.CANCELLED}),
        ("history page 1, heavy user, trigger webhook (none)", {"trigger": TriggerKind.WEBHOOK}),
        (
            "history page 1, one workflow, status CANCELLED (none)",
            {"workflow_id": heavy_workflow, "status": RunStatus.CANCELLED},
        ),
    ):
        rows.append(
            await time_async(label, functools.partial(page, heavy, **filters), repeat=repeat)
        )
    # Walk the cursor to the 1,000th page (or the last one a small fill has), timing each step.
    walk: list[float] = []
    cursor, number = None, 1
    while number < DEEP_PAGE:
        began = asyncio.get_running_loop().time()
        current = await page(heavy, cursor)
        walk.append((asyncio.get_running_loop().time() - began) * 1000)
        if current.next_cursor is None:
            break
        cursor, number = current.next_cursor, number + 1
    rows.append(Measurement(f"history pages 1-{len(walk)} (cursor walk)", walk))
    deep = cursor
    rows.append(
        await time_async(
            f"history page {number}, heavy user", lambda: page(heavy, deep), repeat=repeat
        )
    )
    rows.append(
        await time_async(
            f"fast path: history page {number}, heavy user (run_read)",
            lambda: fast_page(heavy, deep),
            repeat=repeat,
        )
    )

    end = datetime.now(UTC)
    start = end - timedelta(days=30)

    async def usage(owner: str | None, by: str = "model") -> Any:
        async with db.read() as s:
            if owner is None:
                return await instance_usage_by_model(s, start=start, end=end)
            repo = UsageRepo(s, owner_id=owner)
            if by == "day":
                return await repo.by_day(start=start, end=end)
            return await repo.by_model(start=start, end=end)

    for label, owner, by in (
        ("usage by model, 30 days, typical user", typical, "model"),
        ("usage by model, 30 days, heavy user", heavy, "model"),
        ("usage by day, 30 days, heavy user", heavy, "day"),
        ("usage by model, 30 days, whole instance", None, "model"),
    ):
        rows.append(
            await time_async(label, functools.partial(usage, owner, by), repeat=max(3, repeat // 3))
        )

    async def monitoring(which: str) -> Any:
        async with db.read() as s:
            if which == "active":
                return await active_runs_by_status(s)
            return await average_successful_duration(s)

    rows.append(
        await time_async("active runs by status", lambda: monitoring("active"), repeat=repeat)
    )
    rows.append(
        await time_async(
            "average successful duration, instance",
            lambda: monitoring("avg"),
            repeat=max(3, repeat // 5),
        )
    )
    return rows


async def _prune(db: Database, plan: FillPlan) -> list[Measurement]:
    try:
        maintenance = importlib.import_module("flowloom.storage.maintenance")
    except ModuleNotFoundError:
        print("prune: not timed, flowloom.storage.maintenance does not exist yet", file=sys.stderr)
        return []
    prune_runs = getattr(maintenance, "prune_runs", None)
    if prune_runs is None:
        print("prune: not timed, maintenance.prune_runs does not exist yet", file=sys.stderr)
        return []
    # Runs are spread evenly over the plan's days, so the oldest 10% are older than 90% of it.
    older_than = timedelta(days=plan.days * 0.9)
    loop = asyncio.get_running_loop()
    began = loop.time()
    report = prune_runs(db, older_than=older_than)
    if inspect.isawaitable(report):
        report = await report
    elapsed_ms = (loop.time() - began) * 1000
    return [Measurement("prune 10% of runs (once)", [elapsed_ms], note=str(report))]


async def _version(db: Database) -> str:
    async with db.read() as s:
        if db.is_sqlite:
            return str(await s.scalar(text("SELECT sqlite_version()")))
        return str(await s.scalar(text("SHOW server_version")))


async def _size_mb(db: Database) -> float:
    async with db.read() as s:
        if db.is_sqlite:
            pages = await s.scalar(text("PRAGMA page_count"))
            size = await s.scalar(text("PRAGMA page_size"))
            return float(pages * size) / 2**20
        return float(await s.scalar(text("SELECT pg_database_size(current_database())"))) / 2**20


async def _print_plans(db: Database, filled: FillResult) -> None:
    """EXPLAIN the very statement ``RunRepo.history`` runs, first page and a later one."""
    heavy = filled.user_ids[0]
    async with db.read() as s:
        # The cursor of the 1,000th page, or the oldest run when the fill is smaller.
        later = await s.scalar(
            select(WorkflowRun.id)
            .where(WorkflowRun.user_id == heavy)
            .order_by(WorkflowRun.id.desc())
            .offset(10 * (DEEP_PAGE - 1) - 1)
            .limit(1)
        ) or await s.scalar(select(func.min(WorkflowRun.id)).where(WorkflowRun.user_id == heavy))
    for label, statement in (
        ("history page 1", history_statement(owner_id=heavy)),
        ("history page after a cursor", history_statement(owner_id=heavy, cursor=later)),
        (
            "history of one workflow",
            history_statement(owner_id=heavy, workflow_id=filled.workflow_ids[0]),
        ),
        ("history filtered by status", history_statement(owner_id=heavy, status=RunStatus.FAILED)),
        (
            "history filtered by a status none of the runs has",
            history_statement(owner_id=heavy, status=RunStatus.CANCELLED),
        ),
    ):
        sql = str(
            statement.compile(dialect=db.engine.dialect, compile_kwargs={"literal_binds": True})
        )
        explain = "EXPLAIN QUERY PLAN " if db.is_sqlite else "EXPLAIN (ANALYZE, BUFFERS) "
        async with db.read() as s:
            result = await s.execute(text(explain + sql))
            lines = [
                " ".join(str(c) for c in row[-1:]) if db.is_sqlite else str(row[0])
                for row in result
            ]
        print(f"\n### plan: {label}\n{' '.join(sql.split())}")
        for line in lines:
            print(f"    {line}")


if __name__ == "__main__":
    raise SystemExit(main())
