"""The engine benchmark: S1 (chain) and S2 (fan-out) of BENCHMARKS.md and issue 3's re-run
after one edit, persistence on.

    python -m benchmarks.engine [--db sqlite,postgresql,postgresql-nosync] [--repeat 7]
        [--chain 100,1000] [--edit 100,1000] [--cached 100] [--dag 10000,100000]
        [--loop asyncio|uvloop] [--profile]

S1: a chain of N nodes (each length in ``--chain``) each adding 1 to a counter starting at 0
(a benchmark-only node type, ``bench.add_one``); one whole execution (start, every node, the
final read) timed in a warm process (a warm-up run excluded), median of ``--repeat``; per node
= median / N. The cache is off, so every node really runs and is checkpointed. Per node also
engine-recorded (the run's ``duration_ms``, first tick to last commit, / N) and in CPU time of
this process; and the time each run spends outside the engine's window: in ``start_run``
(the run and node rows written, the plan) and from the end of the run's driver to ``wait``
returning the outcome (the driver's life, from the run handed over to its last commit, is
the engine's window).

Cached: a chain of N nodes (each length in ``--cached``) run again with the cache on, every
node served from the cache: the whole run, its CPU time, and its time outside the engine's
window (as for S1).

S2: one node -> 20 branches that each ``flow.delay`` 0.2 s -> one ``flow.merge`` that sees all
20; the wall time of one execution (ideal 0.2 s).

DAG: ``--dag`` nodes (each size) in layers of 100, each after the first summing 1-3 parents of
the layer above; one run with the cache off, each in a process of its own (``benchmarks.dag``):
wall time, start, engine-recorded time, CPU time and the process's peak resident memory.

Edit: a chain of N nodes (each length in ``--edit``) has run once with the cache on; then its
last node's config is edited (a new version is saved, untimed) and the workflow is run again:
N - 1 nodes are served from the cache, the edited one runs. Timed: start to finish.

SQLite lives in a temporary file (WAL, synchronous=NORMAL); PostgreSQL in a fresh schema of
``--postgres-url``, dropped afterwards; ``postgresql-nosync`` is PostgreSQL with the engine's
commits not waiting for the disk flush (``Database(postgres_synchronous_commit=False)``, the
promise SQLite's ``synchronous=NORMAL`` makes). ``--loop uvloop`` runs on uvloop (what ``flowloom
serve`` gets from uvicorn) instead of asyncio's own loop (what ``flowloom run`` uses).
``--profile`` prints a cProfile of the S1 runs.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import pstats
import random
import secrets
import subprocess
import sys
import time
from typing import Any, NamedTuple

from sqlalchemy import func, select

from benchmarks.report import Measurement, print_table, time_async
from benchmarks.scratch import KINDS, scratch_database
from flowloom.engine import Engine, RunResult
from flowloom.graph.ports import Port, PortType
from flowloom.nodes.base import Category, Node, NodeConfig, NodeResult, RunContext
from flowloom.nodes.registry import NodeRegistry, default_registry
from flowloom.storage.database import Database
from flowloom.storage.enums import RunStatus
from flowloom.storage.migrate import upgrade_database
from flowloom.storage.repos.users import UserRepo
from flowloom.storage.repos.workflows import WorkflowRepo
from flowloom.storage.tables import NodeExecution, WorkflowRun
from flowloom.storage.tables.base import utcnow

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


class AddConfig(NodeConfig):
    amount: int = 1
    """What the node adds (editing it is the "one edit" of the re-run scenario)."""


class AddOne(Node[AddConfig]):
    """value + amount, 1 unless configured (benchmark only)."""

    type_name = "bench.add_one"
    category = Category.ACTION
    pure = True
    Config = AddConfig

    def inputs(self, config: AddConfig) -> list[Port]:
        return [Port("value", PortType.NUMBER, required=False, default=0)]

    def outputs(self, config: AddConfig) -> list[Port]:
        return [Port("value", PortType.NUMBER)]

    async def run(self, ctx: RunContext, config: AddConfig, inputs: dict[str, Any]) -> NodeResult:
        return NodeResult({"value": inputs["value"] + config.amount})


class SumAll(Node[NodeConfig]):
    """The sum of every value its edges bring (benchmark only: the joins of the random DAG)."""

    type_name = "bench.sum"
    category = Category.ACTION
    pure = True
    Config = NodeConfig

    def inputs(self, config: NodeConfig) -> list[Port]:
        return [Port("values", PortType.NUMBER, is_list=True)]

    def outputs(self, config: NodeConfig) -> list[Port]:
        return [Port("value", PortType.NUMBER)]

    async def run(self, ctx: RunContext, config: NodeConfig, inputs: dict[str, Any]) -> NodeResult:
        return NodeResult({"value": sum(inputs["values"])})


def _node(node_id: str, type_: str, config: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "id": node_id,
        "type": type_,
        "position": {"x": 0, "y": 0},
        "data": {"config": config or {}},
    }


def _edge(source: str, target: str, target_handle: str = "value") -> dict[str, Any]:
    return {
        "id": f"{source}-{target}",
        "source": source,
        "sourceHandle": "value",
        "target": target,
        "targetHandle": target_handle,
    }


def chain_definition(length: int) -> dict[str, Any]:
    nodes = [_node(f"n{i}", "bench.add_one") for i in range(1, length + 1)]
    edges = [_edge(f"n{i}", f"n{i + 1}") for i in range(1, length)]
    return {"schema_version": 1, "nodes": nodes, "edges": edges}


def fanout_definition(branches: int, delay_s: float) -> dict[str, Any]:
    nodes = [_node("start", "bench.add_one")]
    nodes += [_node(f"b{i}", "flow.delay", {"seconds": delay_s}) for i in range(branches)]
    nodes.append(_node("join", "flow.merge", {"mode": "all"}))
    edges = [_edge("start", f"b{i}") for i in range(branches)]
    edges += [_edge(f"b{i}", "join", "values") for i in range(branches)]
    return {"schema_version": 1, "nodes": nodes, "edges": edges}


def dag_definition(size: int, seed: int = 7) -> dict[str, Any]:
    """``size`` nodes in layers of 100: the first layer adds, every later node sums 1-3
    parents from the layer above (so joins, fan-outs and long paths, as a real graph has)."""
    rng = random.Random(seed)
    width = min(100, size)
    nodes = [_node(f"d{i}", "bench.add_one") for i in range(width)]
    edges: list[dict[str, Any]] = []
    for i in range(width, size):
        layer_start = (i // width - 1) * width
        nodes.append(_node(f"d{i}", "bench.sum"))
        for parent in rng.sample(range(layer_start, layer_start + width), rng.randint(1, 3)):
            edges.append(_edge(f"d{parent}", f"d{i}", "values"))
    return {"schema_version": 1, "nodes": nodes, "edges": edges}


def registry() -> NodeRegistry:
    found = default_registry()
    found.register(AddOne)
    found.register(SumAll)
    return found


async def _prepare(db: Database, graphs: dict[str, dict[str, Any]]) -> tuple[str, dict[str, str]]:
    await upgrade_database(db)
    async with db.write() as session:
        owner = await UserRepo(session).create(email=f"bench-{secrets.token_hex(4)}@example.com")
        workflows = WorkflowRepo(session, owner_id=owner.id)
        ids = {
            name: (await workflows.create(name=name, definition=g)).id for name, g in graphs.items()
        }
        return owner.id, ids


async def bench(db: Database, label: str, args: argparse.Namespace) -> list[Measurement]:
    chains = _lengths(args.chain)
    edits = _lengths(args.edit)
    graphs = {f"chain{n}": chain_definition(n) for n in chains}
    graphs |= {f"edit{n}": chain_definition(n) for n in edits}
    graphs["fanout"] = fanout_definition(20, 0.2)
    cached = _lengths(args.cached)
    graphs |= {f"cached{n}": chain_definition(n) for n in cached}
    owner, ids = await _prepare(db, graphs)
    engine = Engine(db, registry())
    rows: list[Measurement] = []
    try:
        for length in chains:
            rows += await _chain(engine, owner, ids[f"chain{length}"], length, label, args)

        async def fanout_run() -> None:
            result = await engine.run_to_end(
                owner_id=owner, workflow_id=ids["fanout"], use_cache=False
            )
            assert result.status is RunStatus.COMPLETED, result
            assert result.outputs is not None
            assert len(result.outputs["join"]["values"]) == 20

        s2 = await time_async(f"S2 fan-out 20 x 0.2 s ({label})", fanout_run, repeat=args.repeat)
        rows.append(
            Measurement(
                s2.name, [x / 1000 for x in s2.samples], unit="s", note="ideal 0.2 s, aim 0.22 s"
            )
        )
        for length in edits:
            rows.append(await _edit(db, engine, owner, ids[f"edit{length}"], length, label, args))
        for length in cached:
            rows += await _cached(engine, owner, ids[f"cached{length}"], length, label, args)
        return rows
    finally:
        await engine.close()


def _dags(kind: str, label: str, args: argparse.Namespace) -> list[Measurement]:
    return [row for size in _lengths(args.dag) for row in _dag(kind, size, label, args)]


def _dag(kind: str, size: int, label: str, args: argparse.Namespace) -> list[Measurement]:
    """One run of the random DAG in a process of its own (``benchmarks.dag``), so that its
    peak memory is the run's."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.dag",
            "--db",
            kind,
            "--size",
            str(size),
            "--postgres-url",
            args.postgres_url,
            "--json",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"benchmarks.dag failed:\n{done.stderr}")
    from benchmarks.dag import measurements

    return measurements(json.loads(done.stdout.strip().splitlines()[-1]), label)


class TimedRun(NamedTuple):
    """One whole run, timed from the caller's side."""

    result: RunResult
    wall_ms: float
    outside_ms: float
    """Outside the engine's window: ``start_run`` (the run and node rows, the plan, the quota
    check) and, after the driver ended, ``wait`` returning the outcome."""
    cpu_ms: float
    """This process's CPU time for the whole run."""
    outside_cpu_ms: float
    """This process's CPU time in ``start_run`` (the part of ``outside_ms`` that is ours)."""


async def timed_run(engine: Engine, **start: Any) -> TimedRun:
    """``engine.run_to_end(**start)``, timed; the engine's window is its driver's life (from
    the run handed over to the last commit), read off the driver's ``finished`` future."""
    cpu_began = time.process_time()
    began = time.perf_counter()
    run_id = await engine.start_run(**start)
    started = time.perf_counter()
    start_cpu_ms = (time.process_time() - cpu_began) * 1000
    ended: list[float] = []
    driver = engine.driver_of(run_id)
    assert driver is not None, "the run was not handed to a driver in this process"
    driver.finished.add_done_callback(lambda _: ended.append(time.perf_counter()))
    result = await engine.wait(run_id)
    done = time.perf_counter()
    cpu_ms = (time.process_time() - cpu_began) * 1000
    assert ended, "the driver had not ended when the run's outcome came back"
    outside_ms = (started - began + done - ended[0]) * 1000
    return TimedRun(result, (done - began) * 1000, outside_ms, cpu_ms, start_cpu_ms)


async def _chain(
    engine: Engine, owner: str, workflow_id: str, length: int, label: str, args: argparse.Namespace
) -> list[Measurement]:
    """Whole runs of the chain (cache off): wall time, and per node the wall time, the
    engine-recorded time (the run's ``duration_ms``, first tick to last commit), and this
    process's CPU time; and what each run cost outside the engine's window (``timed_run``:
    creating the run and its node rows, the plan, reading the outcome)."""

    async def chain_run() -> tuple[float, float, float, float, float]:
        timed = await timed_run(engine, owner_id=owner, workflow_id=workflow_id, use_cache=False)
        result = timed.result
        assert result.status is RunStatus.COMPLETED, result
        assert result.outputs == {f"n{length}": {"value": length}}, result.outputs
        assert result.duration_ms is not None
        recorded = float(result.duration_ms)
        return timed.wall_ms, recorded, timed.cpu_ms, timed.outside_ms, timed.outside_cpu_ms

    profiler = cProfile.Profile() if args.profile else None
    repeat = args.repeat if length <= 100 else max(3, args.repeat // 2)
    await chain_run()  # warm-up
    if profiler is not None:
        profiler.enable()
    samples = [await chain_run() for _ in range(repeat)]
    if profiler is not None:
        profiler.disable()
        print(f"\n### profile: S1 chain {length} on {label}")
        stats = pstats.Stats(profiler, stream=sys.stdout).sort_stats("tottime")
        stats.print_stats(30)
        stats.print_callers(8)
    walls = [sample[0] for sample in samples]
    aim = "aim <= 100 us SQLite, <= 300 us PostgreSQL"
    return [
        Measurement(f"S1 chain {length}, whole run ({label})", walls),
        Measurement(
            f"S1 chain {length}, per node ({label})",
            [wall * 1000 / length for wall in walls],
            unit="us",
        ),
        Measurement(
            f"S1 chain {length}, per node, engine-recorded ({label})",
            [sample[1] * 1000 / length for sample in samples],
            unit="us",
            note=aim,
        ),
        Measurement(
            f"S1 chain {length}, per node, CPU of this process ({label})",
            [sample[2] * 1000 / length for sample in samples],
            unit="us",
            note="the engine and the client; PostgreSQL's own CPU not included",
        ),
        Measurement(
            f"S1 chain {length}, outside the engine's window ({label})",
            [sample[3] for sample in samples],
            note="start (run + node rows, plan) and outcome read; aim <= 2 ms at 100 nodes",
        ),
        Measurement(
            f"S1 chain {length}, CPU of start_run ({label})",
            [sample[4] for sample in samples],
            note="this process's part of the row above",
        ),
    ]


async def _cached(
    engine: Engine, owner: str, workflow_id: str, length: int, label: str, args: argparse.Namespace
) -> list[Measurement]:
    """Whole runs of a chain whose every node is served from the cache (a run that does no
    work of its own): wall time, CPU time, and the part outside the engine's window
    (``timed_run``; the run's ``duration_ms`` would not do: all of it is one tick)."""
    first = await engine.run_to_end(owner_id=owner, workflow_id=workflow_id)
    assert first.status is RunStatus.COMPLETED, first
    samples: list[TimedRun] = []
    for _ in range(args.repeat + 1):
        timed = await timed_run(engine, owner_id=owner, workflow_id=workflow_id)
        assert timed.result.status is RunStatus.COMPLETED, timed.result
        assert timed.result.outputs == {f"n{length}": {"value": length}}, timed.result.outputs
        samples.append(timed)
    samples = samples[1:]
    return [
        Measurement(
            f"cached chain {length}, whole run ({label})",
            [timed.wall_ms for timed in samples],
            note=f"all {length} nodes from the cache",
        ),
        Measurement(
            f"cached chain {length}, CPU of this process ({label})",
            [timed.cpu_ms for timed in samples],
        ),
        Measurement(
            f"cached chain {length}, outside the engine's window ({label})",
            [timed.outside_ms for timed in samples],
            note="start (run + node rows, plan) and outcome read; aim <= 2 ms",
        ),
        Measurement(
            f"cached chain {length}, CPU of start_run ({label})",
            [timed.outside_cpu_ms for timed in samples],
            note="this process's part of the row above",
        ),
    ]


async def _edit(
    db: Database,
    engine: Engine,
    owner: str,
    workflow_id: str,
    length: int,
    label: str,
    args: argparse.Namespace,
) -> Measurement:
    """Run once with the cache on, then time re-runs each after a fresh edit of the last node."""
    definition = chain_definition(length)
    last = definition["nodes"][-1]
    await engine.run_to_end(owner_id=owner, workflow_id=workflow_id)
    samples: list[float] = []
    for amount in range(2, 2 + args.repeat + 1):
        last["data"]["config"] = {"amount": amount}
        async with db.write() as session:
            await WorkflowRepo(session, owner_id=owner).update(
                workflow_id=workflow_id, definition=definition
            )
        began = time.perf_counter()
        result = await engine.run_to_end(owner_id=owner, workflow_id=workflow_id)
        elapsed_ms = (time.perf_counter() - began) * 1000
        assert result.status is RunStatus.COMPLETED, result
        assert result.outputs == {f"n{length}": {"value": length - 1 + amount}}, result.outputs
        if amount > 2:  # the first edit warms the new version's plan up
            samples.append(elapsed_ms)
    await _check_cached(db, engine, length)
    return Measurement(
        f"re-run after editing 1 of {length} nodes ({label})",
        samples,
        note=f"{length - 1} nodes from the cache, 1 runs",
    )


async def _check_cached(db: Database, engine: Engine, length: int) -> None:
    """The newest run really served every node but the last from the cache."""
    async with db.read() as session:
        run_id = await session.scalar(select(func.max(WorkflowRun.id)))
        counts = dict(
            (
                await session.execute(
                    select(NodeExecution.status, func.count())
                    .where(NodeExecution.run_id == run_id)
                    .group_by(NodeExecution.status)
                )
            ).all()
        )
    assert counts == {"CACHED": length - 1, "SUCCEEDED": 1}, counts


def _lengths(text: str) -> list[int]:
    """The sizes in a comma-separated list; 0 (or nothing) stands for none."""
    return [size for part in text.split(",") if part.strip() and (size := int(part)) > 0]


async def main_async(args: argparse.Namespace) -> int:
    rows: list[Measurement] = []
    for kind in args.db.split(","):
        if kind not in KINDS:
            print(f"unknown database {kind!r}; one of {', '.join(KINDS)}", file=sys.stderr)
            return 2
        label = {
            "sqlite": "SQLite",
            "postgresql": "PostgreSQL",
            "postgresql-nosync": "PostgreSQL, synchronous_commit off",
        }[kind]
        async with scratch_database(kind, args.postgres_url) as db:
            rows += await bench(db, label, args)
        rows += _dags(kind, label, args)
    print_table(
        "engine: S1 chain, S2 fan-out, re-run after one edit; persistence on",
        rows,
        context=[
            f"warm process, 1 warm-up run, {args.repeat} timed runs (chains over 100 nodes:"
            f" {max(3, args.repeat // 2)}); cache off for S1 and S2; event loop: {args.loop};"
            f" started {utcnow():%Y-%m-%d %H:%M} UTC; load average at the end"
            f" {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
        ],
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.engine", description=__doc__)
    parser.add_argument("--db", default="sqlite,postgresql")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--chain", default="100,1000", help="chain lengths, comma-separated")
    parser.add_argument("--edit", default="100,1000", help="re-run-after-edit chain lengths")
    parser.add_argument(
        "--dag", default="10000,100000", help="random DAG sizes, comma-separated ('' or 0: none)"
    )
    parser.add_argument(
        "--cached", default="100", help="fully cached chain lengths, comma-separated ('': none)"
    )
    parser.add_argument("--loop", choices=["asyncio", "uvloop"], default="asyncio")
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args(argv)
    if args.loop == "uvloop":
        import uvloop

        return uvloop.run(main_async(args))
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
