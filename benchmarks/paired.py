"""S3 of two flowloom checkouts side by side: both servers under the same load at the same time.

    python -m benchmarks.paired --before PATH [--after PATH] [--db postgresql] [--rounds 4]
                                [--seconds 8] [--clients 10]

On a shared or noisy machine, rounds of ``benchmarks.api`` taken one after the other differ by
more than a 10% change: the machine's speed drifts between them. Here a ``flowloom serve``
of each checkout (``--before``, and ``--after``: this one by default) is started, each on a
database of its own (SQLite in a temporary dir, or a fresh migrated PostgreSQL database: both
checkouts must be at the same schema revision), set up as ``benchmarks.api`` sets one up (an
account, a key, the three-node webhook workflow), warmed up, and then loaded at the same time
by ``--clients`` keep-alive connections each, for ``--rounds`` rounds of ``--seconds``. Both
see the same contention, so their difference is the change's, not the machine's.

Reported per round and side: runs/s, p99, and the CPU a run of the server process and, on
PostgreSQL, of the backends serving its database; then the medians and after against before.
The load generator for both is this one process (asyncio, a few tens of microseconds a request).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import statistics
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from benchmarks.api import Load, Meter, Target, database_for, hook_load, percentile, setup_target
from benchmarks.report import machine
from benchmarks.server import Server, start_server

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Side:
    """One checkout's server, what its load aims at and how its CPU is read."""

    name: str
    server: Server
    target: Target
    meter: Meter


def _per_run_ms(seconds: float | None, load: Load) -> float | None:
    return None if seconds is None else seconds * 1000 / max(1, len(load.latencies))


def _line(side: str, load: Load) -> str:
    rate = len(load.latencies) / load.elapsed_s
    p99 = percentile(load.latencies, 0.99) if load.latencies else float("nan")
    text = (
        f"  {side:6} {rate:6.0f} runs/s  p99 {p99:6.1f} ms  "
        f"server {_per_run_ms(load.server_cpu_s, load):.2f} ms/run"
    )
    database = _per_run_ms(load.database_cpu_s, load)
    if database is not None:
        text += f"  PostgreSQL {database:.2f} ms/run"
    if load.failures:
        text += f"  {load.failures} FAILED"
    return text


@contextlib.contextmanager
def _served(tree: Path, kind: str, folder: Path) -> Iterator[tuple[Server, str | None]]:
    folder.mkdir()
    with database_for(kind, folder / "data") as url:
        server = start_server(folder / "data", folder / "serve.log", url, tree=tree)
        try:
            yield server, url
        finally:
            server.process.send_signal(signal.SIGTERM)
            server.process.wait(timeout=30)


async def _rounds(sides: list[Side], args: argparse.Namespace) -> dict[str, list[Load]]:
    for side in sides:  # warm-up: imports, prepared plans, the page cache
        await hook_load(side.server.port, side.target, clients=2, seconds=None, total=100)
    results: dict[str, list[Load]] = {side.name: [] for side in sides}
    for number in range(1, args.rounds + 1):
        loads = await asyncio.gather(
            *(
                side.meter.measured(
                    hook_load(
                        side.server.port,
                        side.target,
                        clients=args.clients,
                        seconds=args.seconds,
                        total=None,
                    )
                )
                for side in sides
            )
        )
        print(f"round {number}, load average {os.getloadavg()[0]:.2f}", flush=True)
        for side, load in zip(sides, loads, strict=True):
            results[side.name].append(load)
            print(_line(side.name, load), flush=True)
    return results


def _summary(results: dict[str, list[Load]]) -> None:
    def median(name: str, measure: str) -> float | None:
        values = [getattr(load, measure) for load in results[name]]
        if any(value is None for value in values):
            return None
        return statistics.median(
            value * 1000 / max(1, len(load.latencies))
            for value, load in zip(values, results[name], strict=True)
        )

    def rate(name: str) -> float:
        return statistics.median(len(load.latencies) / load.elapsed_s for load in results[name])

    print("medians:")
    for label, before, after in (
        ("runs/s", rate("before"), rate("after")),
        ("server ms/run", median("before", "server_cpu_s"), median("after", "server_cpu_s")),
        (
            "PostgreSQL ms/run",
            median("before", "database_cpu_s"),
            median("after", "database_cpu_s"),
        ),
    ):
        if before is None or after is None:
            continue
        print(f"  {label:18} before {before:8.2f}  after {after:8.2f}  ({after / before - 1:+.1%})")


async def _measure(args: argparse.Namespace, servers: list[tuple[str, Server, str | None]]) -> None:
    sides = []
    for name, server, url in servers:
        meter = Meter(server.process.pid, None if url is None else url.rsplit("/")[-1])
        sides.append(Side(name, server, await setup_target(server.base), meter))
    print(
        f"S3 webhook -> output on {args.db}, {args.clients} clients each, "
        f"{args.rounds} x {args.seconds:g} s; {machine()}\n"
        f"before: {args.before}\nafter:  {args.after}",
        flush=True,
    )
    _summary(await _rounds(sides, args))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.paired", description=__doc__)
    parser.add_argument("--before", type=Path, required=True, help="the checkout to compare with")
    parser.add_argument("--after", type=Path, default=ROOT, help="by default this checkout")
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="postgresql")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--clients", type=int, default=10)
    args = parser.parse_args()
    for tree in (args.before, args.after):
        if not (tree / "flowloom" / "__init__.py").is_file():
            raise SystemExit(f"{tree} is not a flowloom checkout (no flowloom/__init__.py)")
    args.before, args.after = args.before.resolve(), args.after.resolve()
    with (
        tempfile.TemporaryDirectory(prefix="flowloom-bench-paired-") as folder,
        contextlib.ExitStack() as stack,
    ):
        servers = []
        for name, tree in (("before", args.before), ("after", args.after)):
            server, url = stack.enter_context(_served(tree, args.db, Path(folder) / name))
            servers.append((name, server, url))
        asyncio.run(_measure(args, servers))


if __name__ == "__main__":
    sys.exit(main())
