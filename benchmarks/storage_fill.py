"""Fill a migrated flowloom database with synthetic runs, node executions and usage, fast.

The fill bypasses the ORM on purpose (executemany on SQLite, COPY on PostgreSQL): it writes the
columns exactly as flowloom's column types store them, and the timed part of the benchmark then
reads every row back through the repositories, so a wrong format fails loudly there.

Shape of the data: ``users`` users with one workflow each; one "heavy" user owns 2% of the runs
and usage (so that a 1,000th history page exists), the others share the rest; runs and usage are
spread evenly over the last ``days`` days with time-ordered ids; each run has ``NODES_PER_RUN``
node executions.
"""

from __future__ import annotations

import json
import random
import sqlite3
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg  # type: ignore[import-untyped]

from flowloom.ids import PREFIXES
from flowloom.storage.database import Database
from flowloom.storage.repos.ai_models import AiModelRepo
from flowloom.storage.tables import User, Workflow

__all__ = ["NODES_PER_RUN", "FillPlan", "FillResult", "fill"]

NODES_PER_RUN = 5
CHUNK_RUNS = 20_000
MODELS = [
    ("openai", "gpt-4o-mini", Decimal("0.15"), Decimal("0.60")),
    ("openai", "gpt-4o", Decimal("2.50"), Decimal("10.00")),
    ("anthropic", "claude-sonnet", Decimal("3.00"), Decimal("15.00")),
    ("anthropic", "claude-haiku", Decimal("0.80"), Decimal("4.00")),
    ("gemini", "gemini-flash", Decimal("0.075"), Decimal("0.30")),
    ("gemini", "gemini-pro", Decimal("1.25"), Decimal("5.00")),
]
_NODE_TYPES = ["trigger.manual", "llm.chat", "image.crop", "text.template", "flow.join"]
_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
_PAIRS = [a + b for a in _ALPHABET for b in _ALPHABET]
_SQLITE_TIME = "%Y-%m-%d %H:%M:%S.%f"


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


@dataclass
class FillResult:
    user_ids: list[str]
    workflow_ids: list[str]
    rows: int = 0
    seconds: float = 0.0
    chunk_rates: list[float] = field(default_factory=list)
    """Rows per second of each chunk (runs + node executions + usage written together)."""


class _Ids:
    """Time-ordered ids at a chosen time: 48 bits of milliseconds, then a counter."""

    def __init__(self) -> None:
        self._counter = 0

    def at(self, prefix: str, ms: int) -> str:
        self._counter += 1
        value = (ms << 80) | (0x7 << 76) | self._counter
        chunks = [_PAIRS[(value >> shift) & 1023] for shift in range(120, -1, -10)]
        return f"{prefix}_{''.join(chunks)}"


def _owner_of(i: int, plan: FillPlan) -> int:
    """Index of the user owning row ``i``: every 50th row is the heavy user's (index 0)."""
    if i % 50 == 0:
        return 0
    return 1 + (i % (plan.users - 1)) if plan.users > 1 else 0


async def fill(db: Database, plan: FillPlan) -> FillResult:
    """Write the plan's rows into ``db`` (already migrated and empty)."""
    rng = random.Random(plan.seed)
    ids = _Ids()
    start_ms = int((plan.end - timedelta(days=plan.days)).timestamp() * 1000)
    user_ids = [ids.at(PREFIXES["users"], start_ms) for _ in range(plan.users)]
    workflow_ids = [ids.at(PREFIXES["workflows"], start_ms) for _ in range(plan.users)]
    async with db.write() as s:
        s.add_all(User(id=u, email=f"bench{i}@example.com") for i, u in enumerate(user_ids))
        await s.flush()
        s.add_all(
            Workflow(id=w, user_id=u, name=f"workflow {i}", definition={"nodes": [], "edges": []})
            for i, (u, w) in enumerate(zip(user_ids, workflow_ids, strict=True))
        )
        for provider, model, price_in, price_out in MODELS:
            await AiModelRepo(s).upsert(
                provider=provider,
                model=model,
                input_price_per_mtok=price_in,
                output_price_per_mtok=price_out,
            )
    result = FillResult(user_ids=user_ids, workflow_ids=workflow_ids)
    writer = _SqliteWriter(db) if db.is_sqlite else await _PostgresWriter.open(db)
    began = time.perf_counter()
    try:
        for chunk in _chunks(plan, rng, ids, user_ids, workflow_ids, start_ms):
            t0 = time.perf_counter()
            await writer.write(chunk)
            count = sum(len(rows) for rows in chunk.values())
            result.chunk_rates.append(count / (time.perf_counter() - t0))
            result.rows += count
    finally:
        await writer.close()
    result.seconds = time.perf_counter() - began
    return result


def _chunks(
    plan: FillPlan,
    rng: random.Random,
    ids: _Ids,
    user_ids: Sequence[str],
    workflow_ids: Sequence[str],
    start_ms: int,
) -> Iterator[dict[str, list[dict[str, Any]]]]:
    span_ms = plan.days * 86_400_000
    step_ms = span_ms / max(plan.runs, 1)
    # The newest 0.1% of runs are still going: the "active executions" the monitoring query counts.
    active_from = plan.runs - max(1, plan.runs // 1000)
    for first in range(0, plan.runs, CHUNK_RUNS):
        runs: list[dict[str, Any]] = []
        nodes: list[dict[str, Any]] = []
        usage: list[dict[str, Any]] = []
        for i in range(first, min(first + CHUNK_RUNS, plan.runs)):
            ms = start_ms + int(i * step_ms)
            created = datetime.fromtimestamp(ms / 1000, UTC)
            owner = _owner_of(i, plan)
            run_id = ids.at(PREFIXES["workflow_runs"], ms)
            duration_ms = rng.randint(50, 5000)
            status = "COMPLETED"
            if i >= active_from:
                status = ("PENDING", "RUNNING", "WAITING")[i % 3]
            elif rng.random() < 0.05:
                status = "FAILED"
            finished = created + timedelta(milliseconds=duration_ms)
            active = status in ("PENDING", "RUNNING", "WAITING")
            runs.append(
                {
                    "id": run_id,
                    "workflow_id": workflow_ids[owner],
                    "workflow_version": 1,
                    "user_id": user_ids[owner],
                    "status": status,
                    "scope": "FULL",
                    "trigger_kind": "manual",
                    "inputs": {"n": i},
                    "outputs": None if active else {"result": f"output {i}"},
                    "cancel_requested": False,
                    "started_at": None if status == "PENDING" else created,
                    "finished_at": None if active else finished,
                    "duration_ms": None if active else duration_ms,
                    "created_at": created,
                    "updated_at": created if active else finished,
                }
            )
            for n in range(NODES_PER_RUN):
                node_id = f"n{n}"
                done = not active or n == 0
                nodes.append(
                    {
                        "id": ids.at(PREFIXES["node_executions"], ms),
                        "run_id": run_id,
                        "node_id": node_id,
                        "node_type": _NODE_TYPES[n],
                        "status": "SUCCEEDED" if done else "PENDING",
                        "attempt": 1,
                        "pending_parents": 0 if done else 1,
                        "outputs": {"value": n} if done else None,
                        "attempts": [],
                        "idempotency_key": f"{run_id}:{node_id}:1",
                        # Deterministic nodes carry a cache signature; two of five here.
                        "cache_signature": f"{rng.getrandbits(256):064x}" if n in (2, 3) else None,
                        "started_at": created if done else None,
                        "finished_at": created if done else None,
                        "duration_ms": duration_ms // NODES_PER_RUN if done else None,
                        "created_at": created,
                        "updated_at": created,
                    }
                )
            provider, model, price_in, price_out = MODELS[rng.randrange(len(MODELS))]
            tokens_in, tokens_out = rng.randint(10, 4000), rng.randint(10, 2000)
            # Usage is recorded while its run runs, so its ids are time-ordered too.
            usage_ms = ms + duration_ms
            usage.append(
                {
                    "id": ids.at(PREFIXES["usage"], usage_ms),
                    "user_id": user_ids[owner],
                    "provider": provider,
                    "model": model,
                    "type": "chat",
                    "tokens_in": tokens_in,
                    "tokens_out": tokens_out,
                    "tokens_total": tokens_in + tokens_out,
                    "cost": (tokens_in * price_in + tokens_out * price_out).scaleb(-6),
                    "currency": "usd",
                    "created_at": datetime.fromtimestamp(usage_ms / 1000, UTC),
                }
            )
        yield {"workflow_runs": runs, "node_executions": nodes, "usage": usage}


def _sqlite_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime(_SQLITE_TIME)
    if isinstance(value, dict | list):
        return json.dumps(value)
    if isinstance(value, Decimal):
        # Money on SQLite is a count of nano-units.
        return int(value.scaleb(9).to_integral_value())
    if isinstance(value, bool):
        return int(value)
    return value


class _SqliteWriter:
    def __init__(self, db: Database) -> None:
        path = db.engine.url.database
        assert path is not None
        self.conn = sqlite3.connect(path, isolation_level=None)
        self.conn.execute("PRAGMA foreign_keys = ON")
        self.conn.execute("PRAGMA synchronous = NORMAL")
        # A bulk loader may use a large page cache: random-order index inserts (cache
        # signatures) otherwise thrash the default 2 MB cache.
        self.conn.execute("PRAGMA cache_size = -1000000")

    async def write(self, chunk: dict[str, list[dict[str, Any]]]) -> None:
        self.conn.execute("BEGIN IMMEDIATE")
        for table, rows in chunk.items():
            columns = list(rows[0])
            self.conn.executemany(
                f"INSERT INTO {table} ({', '.join(columns)}) VALUES"
                f" ({', '.join('?' for _ in columns)})",
                ([_sqlite_value(row[c]) for c in columns] for row in rows),
            )
        self.conn.execute("COMMIT")

    async def close(self) -> None:
        self.conn.close()


class _PostgresWriter:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    @classmethod
    async def open(cls, db: Database) -> _PostgresWriter:
        url = db.engine.url
        conn = await asyncpg.connect(
            host=url.host,
            port=url.port,
            user=url.username,
            password=url.password,
            database=url.database,
        )
        return cls(conn)

    async def write(self, chunk: dict[str, list[dict[str, Any]]]) -> None:
        async with self.conn.transaction():
            for table, rows in chunk.items():
                columns = list(rows[0])
                await self.conn.copy_records_to_table(
                    table,
                    columns=columns,
                    records=([_postgres_value(row[c]) for c in columns] for row in rows),
                )

    async def close(self) -> None:
        await self.conn.close()


def _postgres_value(value: Any) -> Any:
    # asyncpg's jsonb codec takes JSON text.
    return json.dumps(value) if isinstance(value, dict | list) else value
