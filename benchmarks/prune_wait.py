"""How long a writer waits behind the retention prune, on SQLite (one writer at a time).

    python -m benchmarks.prune_wait --runs N [--path FILE] [--reuse] [--interval-ms 5]

Fills a SQLite file with ``N`` runs spread over 90 days (``benchmarks.storage_fill``, five node
executions each), then prunes the oldest 10% with ``prune_runs`` (what the daily maintenance
pass calls) while a writer in the same process starts a run every ``--interval-ms``: one write
transaction inserting a run and its first node execution, as a run start does. Each start's
time, from asking for the write lock to its commit, is recorded, and the same writer runs alone
for ``--baseline-s`` first. Prints the prune's duration and, alone and during the prune, the
writer's median, p99 and worst wait, and how many starts took longer than 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from benchmarks.report import Measurement, count, print_table
from benchmarks.storage_fill import NODES_PER_RUN, FillPlan, fill
from flowloom.ids import new_id
from flowloom.storage.database import Database
from flowloom.storage.maintenance import prune_runs
from flowloom.storage.migrate import upgrade_database
from flowloom.storage.tables import NodeExecution, WorkflowRun

SLOW_MS = 100.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.prune_wait", description=__doc__)
    parser.add_argument("--runs", type=int, default=200_000)
    parser.add_argument("--path", type=Path, help="SQLite file (default: a temporary one)")
    parser.add_argument("--reuse", action="store_true", help="the file is filled already")
    parser.add_argument("--interval-ms", type=float, default=5.0)
    parser.add_argument("--baseline-s", type=float, default=5.0, help="the writer alone first")
    args = parser.parse_args(argv)
    if args.runs < 100 or args.interval_ms <= 0:
        parser.error("--runs >= 100 and a positive --interval-ms are required")
    with tempfile.TemporaryDirectory(prefix="flowloom-prune-") as tmp:
        path = args.path or Path(tmp) / "prune.db"
        if not args.reuse:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
        asyncio.run(_run(path, args))
    return 0


async def _run(path: Path, args: argparse.Namespace) -> None:
    db = Database(f"sqlite:///{path}")
    try:
        await upgrade_database(db)
        plan = FillPlan(runs=args.runs, users=100)
        if not args.reuse:
            print(f"filling {path}: {plan.runs:,} runs ...", file=sys.stderr, flush=True)
            await fill(db, plan)
        owner, workflow = await _someone(db)
        waits: list[float] = []
        stop = asyncio.Event()

        moments: list[float] = []

        async def start_runs() -> None:
            while not stop.is_set():
                asked = time.perf_counter()
                moments.append(asked)
                async with db.write() as session:
                    run_id = new_id("run")
                    session.add(
                        WorkflowRun(
                            id=run_id,
                            workflow_id=workflow,
                            workflow_version=1,
                            user_id=owner,
                            status="RUNNING",
                        )
                    )
                    await session.flush()
                    session.add(
                        NodeExecution(
                            id=new_id("nex"),
                            run_id=run_id,
                            node_id="first",
                            node_type="text.template",
                            status="RUNNING",
                            idempotency_key=f"{run_id}:first",
                        )
                    )
                waits.append((time.perf_counter() - asked) * 1000)
                await asyncio.sleep(args.interval_ms / 1000)

        # The same writer alone first: what the machine gives without a prune (a shared,
        # loaded machine has outliers of its own).
        writer = asyncio.create_task(start_runs())
        await asyncio.sleep(args.baseline_s)
        stop.set()
        await writer
        alone, waits = waits, []
        moments.clear()
        stop.clear()
        writer = asyncio.create_task(start_runs())
        await asyncio.sleep(0.2)
        began = time.perf_counter()
        report = await prune_runs(db, older_than=timedelta(days=plan.days * 0.9))
        prune_ms = (time.perf_counter() - began) * 1000
        stop.set()
        await writer
        worst = max(range(len(waits)), key=waits.__getitem__)
        when_s = moments[worst] - began
        rows = [
            Measurement("prune 10% of runs", [prune_ms], note=f"{report.runs:,} runs"),
            Measurement(
                "worst wait began, after the prune's start",
                [when_s * 1000],
                note=f"of {prune_ms / 1000:,.1f} s (the last part reclaims space)",
            ),
            *_waits("alone", alone),
            *_waits("during the prune", waits),
        ]
        print_table(
            "writer wait behind the prune (SQLite)",
            rows,
            context=[
                f"{plan.runs:,} runs x {NODES_PER_RUN} node executions over {plan.days} days;"
                f" a run start every {args.interval_ms:g} ms in the same process"
            ],
        )
    finally:
        await db.dispose()


def _waits(when: str, waits: list[float]) -> list[Measurement]:
    ordered = sorted(waits)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return [
        count(f"run starts, {when}", len(waits)),
        Measurement(f"run start {when}, median", [statistics.median(waits)]),
        Measurement(f"run start {when}, p99", [p99]),
        Measurement(f"run start {when}, worst", [max(waits)]),
        count(f"run starts {when} over {SLOW_MS:g} ms", sum(1 for w in waits if w > SLOW_MS)),
    ]


async def _someone(db: Database) -> tuple[str, str]:
    from sqlalchemy import select

    async with db.read() as session:
        row = (await session.execute(select(WorkflowRun.user_id, WorkflowRun.workflow_id))).first()
    assert row is not None, "the database holds no runs"
    return str(row[0]), str(row[1])


if __name__ == "__main__":
    raise SystemExit(main())
