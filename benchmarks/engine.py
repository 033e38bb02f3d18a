"""The engine benchmark: scenarios S1 (chain) and S2 (fan-out) of BENCHMARKS.md, persistence on.

    python -m benchmarks.engine [--db sqlite,postgresql] [--repeat 7] [--chain 100] [--profile]

S1: a chain of ``--chain`` nodes each adding 1 to a counter starting at 0 (a benchmark-only
node type, ``bench.add_one``); one whole execution timed in a warm process (a warm-up run
excluded), median of ``--repeat``; per node = median / length. The cache is off, so every node
really runs and is checkpointed (claim, result, release: one group commit per tick).

S2: one node -> 20 branches that each ``flow.delay`` 0.2 s -> one ``flow.merge`` that sees all
20; the wall time of one execution (ideal 0.2 s).

SQLite lives in a temporary file (WAL, synchronous=NORMAL); PostgreSQL in a fresh schema of
``--postgres-url``, dropped afterwards. ``--profile`` prints a cProfile of the S1 runs.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import secrets
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.report import Measurement, print_table, time_async
from flowloom.engine import Engine
from flowloom.graph.ports import Port, PortType
from flowloom.nodes.base import Category, Node, NodeConfig, NodeResult, RunContext
from flowloom.nodes.registry import NodeRegistry, default_registry
from flowloom.storage.database import Database
from flowloom.storage.enums import RunStatus
from flowloom.storage.migrate import upgrade_database
from flowloom.storage.repos.users import UserRepo
from flowloom.storage.repos.workflows import WorkflowRepo

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


class AddOne(Node[NodeConfig]):
    """value + 1 (benchmark only)."""

    type_name = "bench.add_one"
    category = Category.ACTION

    def inputs(self, config: NodeConfig) -> list[Port]:
        return [Port("value", PortType.NUMBER, required=False, default=0)]

    def outputs(self, config: NodeConfig) -> list[Port]:
        return [Port("value", PortType.NUMBER)]

    async def run(self, ctx: RunContext, config: NodeConfig, inputs: dict[str, Any]) -> NodeResult:
        return NodeResult({"value": inputs["value"] + 1})


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


def registry() -> NodeRegistry:
    found = default_registry()
    found.register(AddOne)
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


async def bench(
    db: Database, label: str, *, length: int, repeat: int, profile: bool
) -> list[Measurement]:
    owner, ids = await _prepare(
        db, {"chain": chain_definition(length), "fanout": fanout_definition(20, 0.2)}
    )
    engine = Engine(db, registry())
    try:

        async def chain_run() -> None:
            result = await engine.run_to_end(
                owner_id=owner, workflow_id=ids["chain"], use_cache=False
            )
            assert result.status is RunStatus.COMPLETED, result
            assert result.outputs == {f"n{length}": {"value": length}}, result.outputs

        async def fanout_run() -> None:
            result = await engine.run_to_end(
                owner_id=owner, workflow_id=ids["fanout"], use_cache=False
            )
            assert result.status is RunStatus.COMPLETED, result
            assert result.outputs is not None
            assert len(result.outputs["join"]["values"]) == 20

        profiler = cProfile.Profile() if profile else None
        if profiler is not None:
            profiler.enable()
        s1 = await time_async(f"S1 chain {length}, whole run ({label})", chain_run, repeat=repeat)
        if profiler is not None:
            profiler.disable()
            print(f"\n### profile: S1 on {label}")
            pstats.Stats(profiler, stream=sys.stdout).sort_stats("cumulative").print_stats(30)
        per_node = Measurement(
            f"S1 chain {length}, per node ({label})",
            [sample * 1000 / length for sample in s1.samples],
            unit="us",
            note="aim <= 100 us SQLite, <= 300 us PostgreSQL",
        )
        s2 = await time_async(f"S2 fan-out 20 x 0.2 s ({label})", fanout_run, repeat=repeat)
        s2 = Measurement(
            s2.name, [x / 1000 for x in s2.samples], unit="s", note="ideal 0.2 s, aim 0.22 s"
        )
        return [s1, per_node, s2]
    finally:
        await engine.close()


async def main_async(args: argparse.Namespace) -> int:
    rows: list[Measurement] = []
    for kind in args.db.split(","):
        if kind == "sqlite":
            with tempfile.TemporaryDirectory() as folder:
                db = Database(f"sqlite:///{Path(folder) / 'bench.db'}")
                try:
                    rows += await bench(
                        db, "SQLite", length=args.chain, repeat=args.repeat, profile=args.profile
                    )
                finally:
                    await db.dispose()
        elif kind == "postgresql":
            schema = f"bench_{secrets.token_hex(4)}"
            admin = Database(args.postgres_url)
            async with admin.engine.connect() as conn:
                await conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
                await conn.commit()
            db = Database(
                args.postgres_url, connect_args={"server_settings": {"search_path": schema}}
            )
            try:
                rows += await bench(
                    db, "PostgreSQL", length=args.chain, repeat=args.repeat, profile=args.profile
                )
            finally:
                await db.dispose()
                async with admin.engine.connect() as conn:
                    await conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
                    await conn.commit()
                await admin.dispose()
        else:
            print(f"unknown database {kind!r}", file=sys.stderr)
            return 2
    print_table(
        "engine: S1 chain and S2 fan-out, persistence on",
        rows,
        context=[f"warm process, 1 warm-up run, {args.repeat} timed runs; cache off"],
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.engine", description=__doc__)
    parser.add_argument("--db", default="sqlite,postgresql")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--chain", type=int, default=100)
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL)
    parser.add_argument("--profile", action="store_true")
    return asyncio.run(main_async(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
