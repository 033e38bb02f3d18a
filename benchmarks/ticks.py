"""The engine's tick, tuned per database against portable Core: what the tuned SQL buys.

python -m benchmarks.ticks [--db sqlite,postgresql] [--ticks 2000] [--writers 10]

``TickStore`` commits a tick with SQL tuned per database (SQLite: statements compiled once and
run straight on ``sqlite3``, inline on the event loop; PostgreSQL: ONE hand-written statement on
asyncpg); ``portable_ticks.commit_portably`` writes the same tick with plain SQLAlchemy Core
through ``Database.run_write`` (``tests/engine/test_tick_paths.py`` checks that both leave the
same rows). Each tick is the common one of a chain: two node rows written, one of them fenced
by this engine's lease (the finished node's), the run row unchanged. Timed: one commit, median
of ``--ticks``, after 100 untimed; both ways in turns of 100 so that load drifts alike.

Then the tuned tick under concurrency, as a server sees it: ``--writers`` runs each committing
its own ticks one after the other, all at once (on SQLite the ticks that arrive together share
one commit: ``storage/group_commit.py``), against one run alone. Reported: this process's CPU
per tick and ticks per second, each way in turns of ``--ticks`` ticks.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta

from benchmarks.engine import DEFAULT_POSTGRES_URL
from benchmarks.report import Measurement, print_table
from benchmarks.scratch import scratch_database
from flowloom.engine.ports import Tick
from flowloom.engine.sql.portable_ticks import commit_portably
from flowloom.engine.sql.ticks import TickStore, load_slots
from flowloom.ids import new_id
from flowloom.storage.database import Database
from flowloom.storage.enums import NodeStatus
from flowloom.storage.migrate import upgrade_database
from flowloom.storage.repos.runs import RunRepo
from flowloom.storage.repos.users import UserRepo
from flowloom.storage.repos.workflows import WorkflowRepo
from flowloom.storage.tables.base import utcnow

Commit = Callable[[Tick], Awaitable[bool]]


async def new_bare_run(db: Database, nodes: list[tuple[str, str, int]]) -> str:
    """A run of a new owner's empty workflow with node rows ``(node id, type, parents)``: what
    a tick writes to, without a plan behind it."""
    async with db.write() as session:
        owner = await UserRepo(session).create(email=f"{new_id('usr')}@example.com")
        workflow = await WorkflowRepo(session, owner_id=owner.id).create(
            name="ticks", definition={"schema_version": 1, "nodes": [], "edges": []}
        )
        runs = RunRepo(session, owner_id=owner.id)
        run = await runs.create(workflow_id=workflow.id, workflow_version=1)
        await runs.add_node_executions(run_id=run.id, nodes=nodes)
    return run.id


async def _ticks_of_a_run(db: Database) -> Callable[[int], Tick]:
    """A run of two nodes, ``a`` RUNNING under lease ``one``; tick ``n`` of its kind."""
    run_id = await new_bare_run(db, [("a", "t", 0), ("b", "t", 1)])
    slots = await db.run_read(lambda conn: load_slots(conn, run_id))
    a, b = slots["a"], slots["b"]
    now = utcnow()
    a.status, a.lease_owner, a.lease_expires_at = NodeStatus.RUNNING, "one", now + timedelta(1)
    assert await TickStore(db).commit(Tick(run_id, "one", now, [a], set(), {}))

    def tick(n: int) -> Tick:
        a.attempts = [{"attempt": n, "outputs": {"value": n}}]
        b.status = NodeStatus.RUNNING if n % 2 else NodeStatus.READY
        b.inputs, b.pending = {"value": n}, 0
        return Tick(run_id, "one", now, [a, b], {a.row_id}, {})

    return tick


async def _measure(db: Database, label: str, ticks: int) -> list[Measurement]:
    await upgrade_database(db)
    store = TickStore(db)

    async def portable(tick: Tick) -> bool:
        return await commit_portably(db, tick)

    ways: dict[str, Commit] = {"tuned": store.commit, "portable": portable}
    makers = {name: await _ticks_of_a_run(db) for name in ways}
    samples: dict[str, list[float]] = {name: [] for name in ways}
    for turn in range(ticks // 100 + 1):
        for name, commit in ways.items():
            make = makers[name]
            for n in range(100):
                tick = make(turn * 100 + n)
                began = time.perf_counter()
                assert await commit(tick)
                if turn:  # the first turn warms up
                    samples[name].append((time.perf_counter() - began) * 1e6)
    tuned, portable_ = (Measurement(f"tick, {n} ({label})", samples[n], "us") for n in ways)
    gain = 1 - tuned.median / portable_.median
    return [tuned, Measurement(portable_.name, portable_.samples, "us", f"tuned saves {gain:.0%}")]


async def _concurrent(db: Database, label: str, ticks: int, writers: int) -> list[Measurement]:
    """CPU per tuned tick and ticks/s: ``writers`` runs ticking at once against one alone."""
    store = TickStore(db)
    makers = [await _ticks_of_a_run(db) for _ in range(writers)]

    async def ticking(make: Callable[[int], Tick], count: int) -> None:
        for n in range(count):
            assert await store.commit(make(n))

    per_tick: dict[int, list[float]] = {1: [], writers: []}
    rates: dict[int, list[float]] = {1: [], writers: []}
    for turn in range(4):
        for at_once in (1, writers):
            each = max(1, ticks // at_once)
            cpu, wall = time.process_time(), time.perf_counter()
            await asyncio.gather(*(ticking(make, each) for make in makers[:at_once]))
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            if turn:  # the first turn warms up
                per_tick[at_once].append(cpu / (each * at_once) * 1e6)
                rates[at_once].append(each * at_once / wall)
    return [
        Measurement(
            f"CPU a tick, {n} run{'s' if n > 1 else ''} ticking at once ({label})",
            per_tick[n],
            "us",
            f"{statistics.median(rates[n]):.0f} ticks/s",
        )
        for n in (1, writers)
    ]


async def main_async(args: argparse.Namespace) -> int:
    rows: list[Measurement] = []
    for kind in args.db.split(","):
        label = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}.get(kind)
        if label is None:
            print(f"unknown database {kind!r}; sqlite or postgresql", file=sys.stderr)
            return 2
        async with scratch_database(kind, args.postgres_url) as db:
            rows += await _measure(db, label, args.ticks)
            if args.writers > 1:
                rows += await _concurrent(db, label, args.ticks, args.writers)
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print_table(
        "the engine's tick: tuned SQL against portable Core",
        rows,
        context=[f"two node rows a tick, one fenced; load average at the end {load}"],
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default="sqlite,postgresql")
    parser.add_argument("--ticks", type=int, default=2000)
    parser.add_argument("--writers", type=int, default=10, help="runs ticking at once")
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL)
    return asyncio.run(main_async(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
