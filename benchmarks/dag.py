"""The large-graph benchmark: one run of a random DAG, persistence on, in a process of its own.

    python -m benchmarks.dag [--db sqlite|postgresql|postgresql-nosync] [--size 100000] [--json]

The graph is ``benchmarks.engine.dag_definition``: ``--size`` nodes in layers of 100, each after
the first summing 1-3 parents of the layer above. The workflow is saved (untimed), then one run
with the cache off is timed from ``start_run`` to its outcome read back: the wall time, the
part of it spent starting the run (the run row, the plan, every node row), the engine-recorded
duration (the run's ``duration_ms``: first tick to last commit), this process's CPU time over
the whole run, and its peak resident memory (``ru_maxrss``; the process does nothing else, so
the peak is the run's, plus the interpreter and the definition it saved).

``benchmarks.engine --dag 10000,100000`` runs this once per size and prints the figures in its
table; ``--json`` prints them as one JSON object instead of a table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sys
import time
from typing import Any

from benchmarks.engine import DEFAULT_POSTGRES_URL, _prepare, dag_definition, registry
from benchmarks.report import Measurement, print_table
from benchmarks.scratch import scratch_database
from flowloom.engine import Engine
from flowloom.storage.database import Database
from flowloom.storage.enums import RunStatus

__all__ = ["measure", "measurements"]


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def _run_once(db: Database, size: int) -> dict[str, Any]:
    owner, ids = await _prepare(db, {"dag": dag_definition(size)})
    engine = Engine(db, registry())
    try:
        rss_before_mb = _peak_rss_mb()
        cpu_began = time.process_time()
        began = time.perf_counter()
        run_id = await engine.start_run(owner_id=owner, workflow_id=ids["dag"], use_cache=False)
        started_s = time.perf_counter() - began
        result = await engine.wait(run_id)
        whole_s = time.perf_counter() - began
        cpu_s = time.process_time() - cpu_began
    finally:
        await engine.close()
    assert result.status is RunStatus.COMPLETED, result
    assert result.duration_ms is not None
    return {
        "size": size,
        "whole_s": whole_s,
        "start_s": started_s,
        "engine_s": result.duration_ms / 1000,
        "cpu_s": cpu_s,
        "peak_rss_mb": _peak_rss_mb(),
        "rss_before_mb": rss_before_mb,
        "load": os.getloadavg()[0],
    }


async def measure(kind: str, size: int, postgres_url: str = DEFAULT_POSTGRES_URL) -> dict[str, Any]:
    """One run of the ``size``-node DAG on a fresh database of ``kind``; its figures."""
    async with scratch_database(kind, postgres_url) as db:
        return await _run_once(db, size)


def measurements(figures: dict[str, Any], label: str) -> list[Measurement]:
    """The rows ``benchmarks.engine`` prints for one DAG run."""
    size = figures["size"]
    name = f"random DAG of {size:,} nodes"
    aim_s = 20.0 if size > 10_000 else 2.0
    load = f"load {figures['load']:.1f}"
    return [
        Measurement(
            f"{name}, whole run ({label})",
            [figures["whole_s"]],
            unit="s",
            note=f"aim <= {aim_s:g} s; {load}",
        ),
        Measurement(f"{name}, starting it ({label})", [figures["start_s"]], unit="s"),
        Measurement(f"{name}, engine-recorded ({label})", [figures["engine_s"]], unit="s"),
        Measurement(f"{name}, CPU time of the process ({label})", [figures["cpu_s"]], unit="s"),
        Measurement(
            f"{name}, peak memory ({label})",
            [figures["peak_rss_mb"]],
            unit="MB",
            note=f"peak resident of the process; {figures['rss_before_mb']:.0f} MB before the"
            " run started; aim <= 1024 MB",
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.dag", description=__doc__)
    parser.add_argument("--db", default="sqlite")
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    if args.size < 1:
        parser.error("--size must be at least 1")
    figures = asyncio.run(measure(args.db, args.size, args.postgres_url))
    if args.json:
        print(json.dumps(figures))
    else:
        print_table(
            "engine: one run of a random DAG, cache off, persistence on",
            measurements(figures, args.db),
            context=[f"a process of its own; load average {figures['load']:.2f}"],
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
