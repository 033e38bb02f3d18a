"""What the engine tests share: small test-only node types, definitions, an owner and a workflow.

The test node types count their runs where a test (or a crash test's parent process) can read
them: in ``CALLS`` for the same process, and by appending a line to the file named in the
run inputs (``count_file``) for side effects that must survive a killed process.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from flowloom.engine import Engine
from flowloom.exceptions import RetryNode
from flowloom.graph.ports import Port, PortType
from flowloom.ids import new_id
from flowloom.nodes.base import Category, Node, NodeConfig, NodeResult, RunContext
from flowloom.nodes.registry import NodeRegistry, default_registry
from flowloom.storage.database import Database
from flowloom.storage.repos.users import UserRepo
from flowloom.storage.repos.workflows import WorkflowRepo

CALLS: Counter[str] = Counter()
"""Runs per (node id), in this process, of the test node types."""


class AddConfig(NodeConfig):
    amount: float = 1


class Add(Node[AddConfig]):
    """value + amount; deterministic, so it is cached."""

    type_name = "test.add"
    category = Category.ACTION
    Config = AddConfig

    def inputs(self, config: AddConfig) -> list[Port]:
        return [Port("value", PortType.NUMBER, required=False, default=0)]

    def outputs(self, config: AddConfig) -> list[Port]:
        return [Port("value", PortType.NUMBER)]

    async def run(self, ctx: RunContext, config: AddConfig, inputs: dict[str, Any]) -> NodeResult:
        CALLS[ctx.node_id] += 1
        _record(ctx)
        return NodeResult({"value": inputs["value"] + config.amount})


class SumConfig(NodeConfig):
    pass


class Sum(Node[SumConfig]):
    """The sum of every value that arrives on the list port ``values``."""

    type_name = "test.sum"
    category = Category.ACTION
    Config = SumConfig

    def inputs(self, config: SumConfig) -> list[Port]:
        return [Port("values", PortType.NUMBER, is_list=True)]

    def outputs(self, config: SumConfig) -> list[Port]:
        return [Port("value", PortType.NUMBER), Port("count", PortType.INTEGER)]

    async def run(self, ctx: RunContext, config: SumConfig, inputs: dict[str, Any]) -> NodeResult:
        CALLS[ctx.node_id] += 1
        _record(ctx)
        values = inputs["values"]
        return NodeResult({"value": sum(values), "count": len(values)})


class SleepConfig(NodeConfig):
    seconds: float = 0.2


class Sleep(Node[SleepConfig]):
    """Sleeps, then passes ``value`` on; not deterministic (never cached)."""

    type_name = "test.sleep"
    category = Category.FLOW
    deterministic = False
    Config = SleepConfig

    def inputs(self, config: SleepConfig) -> list[Port]:
        return [Port("value", PortType.ANY, required=False, default=None)]

    def outputs(self, config: SleepConfig) -> list[Port]:
        return [Port("value", PortType.ANY)]

    async def run(self, ctx: RunContext, config: SleepConfig, inputs: dict[str, Any]) -> NodeResult:
        CALLS[ctx.node_id] += 1
        _record(ctx)
        await asyncio.sleep(config.seconds)
        return NodeResult({"value": inputs["value"]})


class FlakyConfig(NodeConfig):
    failures: int = 1
    """How many attempts fail before one succeeds."""
    how: str = "retryable"
    """retryable (NodeFailed retryable), retry_node (RetryNode with after_s), fatal."""
    after_s: float = 0.0


class Flaky(Node[FlakyConfig]):
    """Fails its first ``failures`` attempts (by attempt number), then returns its attempt."""

    type_name = "test.flaky"
    category = Category.ACTION
    deterministic = False
    Config = FlakyConfig

    def outputs(self, config: FlakyConfig) -> list[Port]:
        return [Port("attempt", PortType.INTEGER)]

    async def run(self, ctx: RunContext, config: FlakyConfig, inputs: dict[str, Any]) -> NodeResult:
        CALLS[ctx.node_id] += 1
        if ctx.attempt <= config.failures:
            if config.how == "retry_node":
                raise RetryNode(after_s=config.after_s, reason="not yet")
            raise ctx.fail(f"flaky failure {ctx.attempt}", retryable=config.how == "retryable")
        return NodeResult({"attempt": ctx.attempt})


class PureAdd(Add):
    """test.add declared pure: the engine may start it before what feeds it is committed and
    batch the commits of its ticks. It still counts its runs (in ``CALLS`` and the count file),
    which only a test may do: that is how a test sees a pure node run again after a crash."""

    type_name = "test.pure_add"
    pure = True


GATES: dict[str, asyncio.Event] = {}
"""Events that ``test.pure_gate`` nodes wait for, by node id (a test sets them)."""
AT_GATE: set[str] = set()
"""The ``test.pure_gate`` nodes that reached their gate."""


class PureGate(PureAdd):
    """test.pure_add that first waits until the test sets ``GATES[node_id]`` (if there is one)."""

    type_name = "test.pure_gate"

    async def run(self, ctx: RunContext, config: AddConfig, inputs: dict[str, Any]) -> NodeResult:
        gate = GATES.get(ctx.node_id)
        if gate is not None:
            AT_GATE.add(ctx.node_id)
            await gate.wait()
        return await super().run(ctx, config, inputs)


def _record(ctx: RunContext) -> None:
    path = ctx.run_inputs.get("count_file")
    if isinstance(path, str):
        with Path(path).open("a") as handle:
            handle.write(f"{ctx.node_id} {ctx.attempt} {ctx.idempotency_key}\n")


TEST_NODES: tuple[type[Node[Any]], ...] = (Add, Sum, Sleep, Flaky, PureAdd, PureGate)


def registry() -> NodeRegistry:
    found = default_registry()
    for node_class in TEST_NODES:
        found.register(node_class)
    return found


def node(
    node_id: str, type_: str, config: dict[str, Any] | None = None, **data: Any
) -> dict[str, Any]:
    return {
        "id": node_id,
        "type": type_,
        "position": {"x": 0, "y": 0},
        "data": {"config": config or {}, **data},
    }


def edge(
    source: str, target: str, source_handle: str = "value", target_handle: str = "value"
) -> dict[str, Any]:
    return {
        "id": f"{source}.{source_handle}->{target}.{target_handle}",
        "source": source,
        "sourceHandle": source_handle,
        "target": target,
        "targetHandle": target_handle,
    }


def definition(nodes: list[dict[str, Any]], edges: list[dict[str, Any]]) -> dict[str, Any]:
    return {"schema_version": 1, "nodes": nodes, "edges": edges}


def chain(length: int, type_: str = "test.add") -> dict[str, Any]:
    """n1 -> n2 -> ... each adding 1, starting from 0 (nodes of ``type_``)."""
    nodes = [node(f"n{i}", type_) for i in range(1, length + 1)]
    edges = [edge(f"n{i}", f"n{i + 1}") for i in range(1, length)]
    return definition(nodes, edges)


async def make_owner(db: Database) -> str:
    async with db.write() as session:
        user = await UserRepo(session).create(email=f"{new_id('usr')}@example.com")
        return user.id


async def save_workflow(
    db: Database, owner_id: str, graph: dict[str, Any], name: str = "test"
) -> str:
    async with db.write() as session:
        workflow = await WorkflowRepo(session, owner_id=owner_id).create(
            name=name, definition=graph
        )
        return workflow.id


async def update_workflow(
    db: Database, owner_id: str, workflow_id: str, graph: dict[str, Any]
) -> int:
    async with db.write() as session:
        workflow = await WorkflowRepo(session, owner_id=owner_id).update(
            workflow_id=workflow_id, definition=graph
        )
        return workflow.version


async def node_rows(db: Database, run_id: str) -> dict[str, Any]:
    from flowloom.storage.repos.runs import RunRepo
    from flowloom.storage.tables import WorkflowRun

    async with db.read() as session:
        run = await session.get(WorkflowRun, run_id)
        assert run is not None
        _, rows = await RunRepo(session, owner_id=run.user_id).get_with_nodes(run_id=run_id)
        return {row.node_id: row for row in rows}


async def run_graph(engine: Engine, db: Database, graph: dict[str, Any], **start: Any) -> Any:
    owner = await make_owner(db)
    workflow_id = await save_workflow(db, owner, graph)
    return await engine.run_to_end(owner_id=owner, workflow_id=workflow_id, **start)


def cache_lookups(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> list[tuple[list[str], bool]]:
    """The cache look-ups ``engine`` asks alone (``find_cached``) from now on: (signatures,
    near) each."""
    asked: list[tuple[list[str], bool]] = []
    find_cached = engine.store.find_cached

    async def counted(
        signatures: Iterable[str], *, near: bool = False
    ) -> dict[str, tuple[str, dict[str, Any]]]:
        wanted = list(signatures)
        asked.append((wanted, near))
        return await find_cached(wanted, near=near)

    monkeypatch.setattr(engine.store, "find_cached", counted)
    return asked
