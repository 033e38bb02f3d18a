"""Random DAGs against a reference evaluator (hypothesis), their concurrency, and one
10,000-node DAG.

The reference evaluator walks the nodes in index order (every edge goes from a lower index to a
higher one) and applies the engine's rules in the plainest way: an edge delivers iff its source
produced the output it leaves from; a node whose edges all deliver nothing is SKIPPED; a list
port joins what was delivered, in edge order. The engine must agree node by node, run every
node once, and start none before all its parents finished. Random forests of sleeping nodes
show that nodes with no path between them really run at the same time.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from enginekit import definition, edge, make_owner, node, node_rows, registry, save_workflow
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flowloom.engine import Engine
from flowloom.storage.database import Database
from flowloom.storage.enums import NodeStatus, RunStatus
from flowloom.storage.migrate import upgrade_database


@dataclass(frozen=True)
class Spec:
    """One node: ``kind`` add (0-1 parent), sum (1+ parents) or cond (1 parent, gt ``number``)."""

    kind: str
    number: int
    parents: tuple[tuple[int, str], ...] = field(default=())
    """(parent index, the parent's output port the edge leaves from), in edge order."""


def node_id(index: int) -> str:
    return f"n{index}"


def to_definition(specs: list[Spec]) -> dict[str, Any]:
    nodes, edges = [], []
    for index, spec in enumerate(specs):
        if spec.kind == "add":
            nodes.append(node(node_id(index), "test.add", {"amount": spec.number}))
        elif spec.kind == "sum":
            nodes.append(node(node_id(index), "test.sum"))
        else:
            nodes.append(
                node(node_id(index), "flow.condition", {"operator": "gt", "operand": spec.number})
            )
        target = "values" if spec.kind == "sum" else "value"
        for parent, port in spec.parents:
            edges.append(edge(node_id(parent), node_id(index), port, target))
    return definition(nodes, edges)


def reference(specs: list[Spec]) -> dict[str, dict[str, Any] | None]:
    """Each node's outputs, or None when it is SKIPPED."""
    outputs: list[dict[str, Any] | None] = []
    for spec in specs:
        delivered = [
            produced[port]
            for parent, port in spec.parents
            if (produced := outputs[parent]) is not None and port in produced
        ]
        if spec.parents and not delivered:
            outputs.append(None)
        elif spec.kind == "add":
            # test.add's amount is a float: the same float operations give the same bits.
            outputs.append({"value": (delivered[0] if delivered else 0) + float(spec.number)})
        elif spec.kind == "sum":
            outputs.append({"value": sum(delivered), "count": len(delivered)})
        else:
            taken = "true" if delivered[0] > spec.number else "false"
            outputs.append({taken: delivered[0]})
    return {node_id(i): out for i, out in enumerate(outputs)}


def out_port(specs: list[Spec], parent: int, draw_true: bool) -> str:
    if specs[parent].kind == "cond":
        return "true" if draw_true else "false"
    return "value"


@st.composite
def dags(draw: st.DrawFn, max_nodes: int = 200) -> list[Spec]:
    count = draw(st.integers(min_value=1, max_value=max_nodes))
    specs: list[Spec] = []
    for index in range(count):
        kinds = ["add"] if index == 0 else ["add", "add", "sum", "sum", "cond"]
        kind = draw(st.sampled_from(kinds))
        number = draw(st.integers(min_value=-5, max_value=5))
        if kind == "add":
            chosen = draw(st.lists(st.integers(0, index - 1), max_size=1)) if index else []
        elif kind == "cond":
            chosen = [draw(st.integers(0, index - 1))]
        else:
            chosen = draw(st.lists(st.integers(0, index - 1), min_size=1, max_size=4, unique=True))
        parents = tuple((p, out_port(specs, p, draw(st.booleans()))) for p in chosen)
        specs.append(Spec(kind, number, parents))
    return specs


async def check_run(engine: Engine, db: Database, owner: str, specs: list[Spec]) -> None:
    workflow_id = await save_workflow(db, owner, to_definition(specs))
    result = await engine.run_to_end(owner_id=owner, workflow_id=workflow_id, use_cache=False)
    assert result.status is RunStatus.COMPLETED, result.error
    rows = await node_rows(db, result.run_id)
    expected = reference(specs)
    for index, spec in enumerate(specs):
        row = rows[node_id(index)]
        want = expected[node_id(index)]
        if want is None:
            assert row.status == NodeStatus.SKIPPED, (index, row.status)
            continue
        assert row.status == NodeStatus.SUCCEEDED, (index, row.status, row.error)
        assert row.outputs == want, (index, row.outputs, want)
        assert len(row.attempts) == 1, "every node ran exactly once"
        for parent, _ in spec.parents:
            above = rows[node_id(parent)]
            if above.status == NodeStatus.SUCCEEDED:
                assert above.finished_at <= row.started_at, (parent, index)


def test_random_dags_agree_with_the_reference_evaluator(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    # One event loop and one migrated SQLite file for every example: migrating per example
    # would cost more than the runs.
    path: Path = tmp_path_factory.mktemp("dags") / "flowloom.db"
    loop = asyncio.new_event_loop()
    db = Database(f"sqlite:///{path}")
    loop.run_until_complete(upgrade_database(db))
    engine = loop.run_until_complete(_make_engine(db))
    owner = loop.run_until_complete(make_owner(db))

    @settings(
        max_examples=40,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(dags())
    def check(specs: list[Spec]) -> None:
        loop.run_until_complete(check_run(engine, db, owner, specs))

    try:
        check()
    finally:
        loop.run_until_complete(engine.close())
        loop.run_until_complete(db.dispose())
        loop.close()


@st.composite
def forests(draw: st.DrawFn) -> list[int | None]:
    """Each node's parent (an earlier index) or None for a root; at least two nodes."""
    count = draw(st.integers(min_value=2, max_value=24))
    return [None] + [
        draw(st.one_of(st.none(), st.integers(0, index - 1))) for index in range(1, count)
    ]


def test_independent_nodes_overlap_in_time(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Siblings (and roots) are ready together: each pair's run intervals must intersect.

    The proof is the intervals the engine recorded, not the run's wall-clock length: a loaded
    machine may pause the whole process, which stretches both intervals alike but can make any
    bound on elapsed time fail."""
    path: Path = tmp_path_factory.mktemp("forests") / "flowloom.db"
    loop = asyncio.new_event_loop()
    db = Database(f"sqlite:///{path}")
    loop.run_until_complete(upgrade_database(db))
    engine = loop.run_until_complete(_make_engine(db))
    owner = loop.run_until_complete(make_owner(db))
    nap_s = 0.08

    async def check_forest(parents: list[int | None]) -> None:
        nodes = [node(node_id(i), "test.sleep", {"seconds": nap_s}) for i in range(len(parents))]
        edges = [
            edge(node_id(parent), node_id(i), "value", "value")
            for i, parent in enumerate(parents)
            if parent is not None
        ]
        workflow_id = await save_workflow(db, owner, definition(nodes, edges))
        result = await engine.run_to_end(owner_id=owner, workflow_id=workflow_id, use_cache=False)
        assert result.status is RunStatus.COMPLETED, result.error
        rows = await node_rows(db, result.run_id)
        for i, parent_i in enumerate(parents):
            for j in range(i + 1, len(parents)):
                if parents[j] != parent_i:
                    continue
                a, b = rows[node_id(i)], rows[node_id(j)]
                overlap = min(a.finished_at, b.finished_at) - max(a.started_at, b.started_at)
                assert overlap.total_seconds() > 0, f"siblings {i} and {j} ran one after another"

    @settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(forests())
    def check(parents: list[int | None]) -> None:
        loop.run_until_complete(check_forest(parents))

    try:
        check()
    finally:
        loop.run_until_complete(engine.close())
        loop.run_until_complete(db.dispose())
        loop.close()


async def _make_engine(db: Database) -> Engine:
    # An Engine belongs to the loop it is created in.
    return Engine(db, registry())


def layered_dag(layers: int, width: int, seed: int) -> list[Spec]:
    """``layers`` x ``width`` nodes; each takes 1-3 parents from the layer above, some through
    conditions, so branches are skipped deep into the graph."""
    rng = random.Random(seed)
    specs: list[Spec] = [Spec("add", rng.randint(-3, 3)) for _ in range(width)]
    for layer in range(1, layers):
        above = range((layer - 1) * width, layer * width)
        for _ in range(width):
            roll = rng.random()
            if roll < 0.1:
                parent = rng.choice(above)
                port = out_port(specs, parent, rng.random() < 0.5)
                specs.append(Spec("cond", rng.randint(-3, 3), ((parent, port),)))
            elif roll < 0.5:
                parent = rng.choice(above)
                port = out_port(specs, parent, rng.random() < 0.5)
                specs.append(Spec("add", rng.randint(-3, 3), ((parent, port),)))
            else:
                chosen = rng.sample(list(above), rng.randint(1, 3))
                parents = tuple((p, out_port(specs, p, rng.random() < 0.5)) for p in chosen)
                specs.append(Spec("sum", 0, parents))
    return specs


@pytest.mark.slow
async def test_a_10000_node_dag_completes_like_the_reference(tmp_path: Path) -> None:
    specs = layered_dag(layers=100, width=100, seed=7)
    expected = reference(specs)
    db = Database(f"sqlite:///{tmp_path / 'flowloom.db'}")
    await upgrade_database(db)
    engine = Engine(db, registry())
    try:
        owner = await make_owner(db)
        workflow_id = await save_workflow(db, owner, to_definition(specs))
        began = time.perf_counter()
        result = await engine.run_to_end(owner_id=owner, workflow_id=workflow_id, use_cache=False)
        elapsed_s = time.perf_counter() - began
        rows = await node_rows(db, result.run_id)
    finally:
        await engine.close()
        await db.dispose()

    assert result.status is RunStatus.COMPLETED, result.error
    assert len(rows) == 10_000
    for name, want in expected.items():
        row = rows[name]
        if want is None:
            assert row.status == NodeStatus.SKIPPED, name
        else:
            assert (row.status, row.outputs) == (NodeStatus.SUCCEEDED, want), name
    skipped = sum(want is None for want in expected.values())
    assert 0 < skipped < 10_000, "the graph exercises skipping without skipping everything"
    # Generous: the O(V)-per-tick scan made this ~minutes; the aim (issue 3) is under 3 s.
    assert elapsed_s < 120, f"10,000 nodes took {elapsed_s:.1f} s"
