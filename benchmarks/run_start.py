"""The CPU time of starting a run (issue 12: "run start cost independent of graph size").

    python -m benchmarks.run_start [--db sqlite,postgresql] [--nodes 1,10,100]
        [--starts 150] [--quota]

For each database and each chain length: a chain of N ``bench.add_one`` nodes is run a few
times (its plan made, every node cached), then started ``--starts`` more times, each run
awaited to its end before the next starts. Timed: this process's CPU time (``process_time``,
every thread) inside ``Engine.start_run`` only: the checks, the plan look-up, the run and node
rows written and committed, the driver handed the run. Medians and quartiles. ``--quota``
starts them with the plan limits (``PlanQuota``) a server asks, on a user without a plan.
PostgreSQL's own CPU is not counted (another process).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys
import time
from typing import Any

from benchmarks.engine import DEFAULT_POSTGRES_URL, chain_definition, registry
from benchmarks.report import Measurement, print_table
from benchmarks.scratch import KINDS, scratch_database
from flowloom.engine import Engine
from flowloom.storage.database import Database
from flowloom.storage.enums import RunStatus
from flowloom.storage.migrate import upgrade_database
from flowloom.storage.repos.users import UserRepo
from flowloom.storage.repos.workflows import WorkflowRepo
from flowloom.storage.tables.base import utcnow

_LABELS = {"sqlite": "SQLite", "postgresql": "PostgreSQL", "postgresql-nosync": "PostgreSQL nosync"}


async def _start_cpu(db: Database, length: int, starts: int, quota: bool) -> list[float]:
    """Milliseconds of CPU time in ``start_run`` for ``starts`` starts of a cached chain."""
    await upgrade_database(db)
    async with db.write() as session:
        owner = await UserRepo(session).create(email=f"bench-{secrets.token_hex(4)}@example.com")
        workflow = await WorkflowRepo(session, owner_id=owner.id).create(
            name=f"chain{length}", definition=chain_definition(length)
        )
    options: dict[str, Any] = {}
    if quota:
        from flowloom.billing import PlanQuota

        options["quota"] = PlanQuota(db)
    engine = Engine(db, registry(), **options)
    try:
        for _ in range(3):  # the plan made, every node's result in the cache
            warm = await engine.run_to_end(owner_id=owner.id, workflow_id=workflow.id)
            assert warm.status is RunStatus.COMPLETED, warm
        samples = []
        for _ in range(starts):
            began = time.process_time()
            run_id = await engine.start_run(owner_id=owner.id, workflow_id=workflow.id)
            samples.append((time.process_time() - began) * 1000)
            result = await engine.wait(run_id)
            assert result.status is RunStatus.COMPLETED, result
            assert result.outputs == {f"n{length}": {"value": length}}, result.outputs
        return samples
    finally:
        await engine.close()


async def main_async(args: argparse.Namespace) -> int:
    rows: list[Measurement] = []
    lengths = [int(part) for part in args.nodes.split(",") if part.strip()]
    for kind in args.db.split(","):
        if kind not in KINDS:
            print(f"unknown database {kind!r}; one of {', '.join(KINDS)}", file=sys.stderr)
            return 2
        for length in lengths:
            async with scratch_database(kind, args.postgres_url) as db:
                samples = await _start_cpu(db, length, args.starts, args.quota)
            ordered = sorted(samples)
            rows.append(
                Measurement(
                    f"CPU of start_run, cached chain {length} ({_LABELS[kind]})",
                    samples,
                    note=f"quartiles {ordered[len(ordered) // 4]:.3f}"
                    f"-{ordered[3 * len(ordered) // 4]:.3f} ms; aim <= 2 ms at 100 nodes",
                )
            )
    print_table(
        "run start: CPU time of this process in start_run",
        rows,
        context=[
            f"{args.starts} starts each, each run awaited before the next; plan limits"
            f" {'on (PlanQuota)' if args.quota else 'off'}; started {utcnow():%Y-%m-%d %H:%M}"
            f" UTC; load average at the end {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
        ],
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run_start", description=__doc__)
    parser.add_argument("--db", default="sqlite,postgresql")
    parser.add_argument("--nodes", default="1,10,100", help="chain lengths, comma-separated")
    parser.add_argument("--starts", type=int, default=150)
    parser.add_argument("--quota", action="store_true", help="ask PlanQuota at every start")
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL)
    return asyncio.run(main_async(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
