"""Fill a migrated flowloom database with synthetic runs, node executions and usage, fast.

The fill bypasses the ORM on purpose: ``benchmarks.fill_rows`` makes the rows as tuples already
in the form each driver takes (as flowloom's column types bind them), and ``fill_sqlite`` /
``fill_postgres`` load them as bulk loaders do (one transaction, multi-row INSERTs or binary
COPY, secondary indexes built after the rows from their own DDL). The timed part of the
benchmark then reads rows back through the repositories, and
``tests/test_benchmarks_fill.py`` checks a small fill against them on both databases.

Shape of the data: ``users`` users with one workflow each; one "heavy" user owns 2% of the runs
and usage (so that a 1,000th history page exists), the others share the rest; runs and usage are
spread evenly over the last ``days`` days with time-ordered ids; each run has ``NODES_PER_RUN``
node executions.
"""

from __future__ import annotations

import asyncio
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from benchmarks import fill_postgres, fill_sqlite
from benchmarks.fill_rows import (
    MODELS,
    NODES_PER_RUN,
    POSTGRES,
    SQLITE,
    RowPlan,
    chunks,
    encode_id,
)
from flowloom.ids import PREFIXES
from flowloom.storage.database import Database
from flowloom.storage.repos.ai_models import AiModelRepo
from flowloom.storage.tables import User, Workflow

__all__ = ["CHUNK_RUNS", "MODELS", "NODES_PER_RUN", "FillPlan", "FillResult", "fill"]

CHUNK_RUNS = 20_000


@dataclass(frozen=True)
class FillPlan:
    runs: int
    users: int = 1000
    days: int = 90
    seed: int = 7
    end: datetime = field(default_factory=lambda: datetime.now(UTC).replace(microsecond=0))

    @property
    def heavy_runs(self) -> int:
        return max(1, self.runs // 50)

    @property
    def start_ms(self) -> int:
        return int((self.end - timedelta(days=self.days)).timestamp() * 1000)

    def rows(self) -> RowPlan:
        """What ``fill_rows.chunks`` makes for this plan."""
        return RowPlan(
            runs=self.runs,
            start_ms=self.start_ms,
            days=self.days,
            seed=self.seed,
            chunk_runs=CHUNK_RUNS,
        )

    def owner_of(self, i: int) -> int:
        """Index of the user owning run ``i``: every 50th run is the heavy user's (index 0)."""
        if i % 50 == 0 or self.users < 2:
            return 0
        return 1 + (i % (self.users - 1))


@dataclass
class FillResult:
    user_ids: list[str]
    workflow_ids: list[str]
    rows: int = 0
    seconds: float = 0.0
    """The whole load: making and writing the rows, then building the indexes."""
    index_seconds: float = 0.0
    chunk_rates: list[float] = field(default_factory=list)
    """Rows per second of each chunk (runs + node executions + usage, made and written)."""


async def fill(db: Database, plan: FillPlan) -> FillResult:
    """Write the plan's rows into ``db`` (already migrated, and empty); print the rate."""
    if db.in_memory:
        raise ValueError("the fill loads a SQLite file or PostgreSQL, not an in-memory database")
    user_ids, workflow_ids = await _owners(db, plan)
    rows = plan.rows()
    began = time.perf_counter()
    if db.is_sqlite:
        # The loader needs the file to itself (to leave WAL mode while it writes): the engine's
        # pooled connections are closed first, and it opens new ones when next used.
        await db.engine.dispose()
        path = db.engine.url.database
        assert path is not None
        made = chunks(rows, SQLITE, user_ids, workflow_ids, plan.owner_of)
        report = await asyncio.to_thread(fill_sqlite.load, path, made)
    else:
        made = chunks(rows, POSTGRES, user_ids, workflow_ids, plan.owner_of)
        report = await fill_postgres.load(db, made)
    result = FillResult(
        user_ids=user_ids,
        workflow_ids=workflow_ids,
        rows=report.rows,
        seconds=time.perf_counter() - began,
        index_seconds=report.index_seconds,
        chunk_rates=report.chunk_rates,
    )
    print(
        f"filled {result.rows:,} rows ({plan.runs:,} runs) on {db.dialect} in"
        f" {result.seconds:,.1f} s: {result.rows / result.seconds:,.0f} rows/s"
        f" (rows {report.row_seconds:,.1f} s, indexes {report.index_seconds:,.1f} s)",
        file=sys.stderr,
        flush=True,
    )
    return result


async def _owners(db: Database, plan: FillPlan) -> tuple[list[str], list[str]]:
    """The plan's users, one workflow each, and the models' prices, through the ORM (few rows).

    Users and workflows are made a millisecond before the plan's first run, their ids of that
    time (in order: the heavy user's sorts first)."""
    made_ms = plan.start_ms - 1
    made = datetime.fromtimestamp(made_ms / 1000, UTC)
    user_ids = [encode_id(PREFIXES["users"], made_ms, i) for i in range(plan.users)]
    workflow_ids = [encode_id(PREFIXES["workflows"], made_ms, i) for i in range(plan.users)]
    async with db.write() as s:
        s.add_all(
            User(id=u, email=f"bench{i}@example.com", created_at=made, updated_at=made)
            for i, u in enumerate(user_ids)
        )
        await s.flush()
        s.add_all(
            Workflow(
                id=w,
                user_id=u,
                name=f"workflow {i}",
                definition={"nodes": [], "edges": []},
                created_at=made,
                updated_at=made,
            )
            for i, (u, w) in enumerate(zip(user_ids, workflow_ids, strict=True))
        )
        for provider, model, price_in, price_out in MODELS:
            await AiModelRepo(s).upsert(
                provider=provider,
                model=model,
                input_price_per_mtok=price_in,
                output_price_per_mtok=price_out,
            )
    return user_ids, workflow_ids
