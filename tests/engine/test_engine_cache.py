"""The persisted cache, run scopes and idempotency keys, on SQLite and PostgreSQL."""

from __future__ import annotations

import copy
import random
from typing import Any

import pytest
from enginekit import (
    cache_lookups,
    chain,
    definition,
    edge,
    make_owner,
    node,
    node_rows,
    registry,
    save_workflow,
    update_workflow,
)
from sqlalchemy import update

from flowloom.engine import Engine
from flowloom.engine.sql.ticks import TickStore
from flowloom.storage.database import Database
from flowloom.storage.enums import NodeStatus, RunStatus
from flowloom.storage.tables import NodeExecution


async def test_a_second_identical_run_is_all_cached_and_an_edit_reruns_exactly_its_descendants(
    engine: Engine, db: Database
) -> None:
    graph = definition(
        [
            *chain(5)["nodes"],
            node("side", "test.add", {"amount": 50}),
        ],
        [*chain(5)["edges"], edge("n1", "side")],
    )
    owner = await make_owner(db)
    workflow_id = await save_workflow(db, owner, graph)

    first = await engine.run_to_end(owner_id=owner, workflow_id=workflow_id)
    second = await engine.run_to_end(owner_id=owner, workflow_id=workflow_id)

    assert first.outputs == second.outputs == {"n5": {"value": 5}, "side": {"value": 51}}
    first_rows = await node_rows(db, first.run_id)
    second_rows = await node_rows(db, second.run_id)
    assert {r.status for r in second_rows.values()} == {NodeStatus.CACHED}
    assert second_rows["n3"].cached_from_id == first_rows["n3"].id

    edited = copy.deepcopy(graph)
    edited["nodes"][2]["data"]["config"]["amount"] = 10  # n3
    await update_workflow(db, owner, workflow_id, edited)
    engine_after_restart = Engine(db, registry())  # the cache lives in the database
    try:
        third = await engine_after_restart.run_to_end(owner_id=owner, workflow_id=workflow_id)
    finally:
        await engine_after_restart.close()

    assert third.outputs == {"n5": {"value": 14}, "side": {"value": 51}}
    statuses = {n: r.status for n, r in (await node_rows(db, third.run_id)).items()}
    assert statuses == {
        "n1": NodeStatus.CACHED,
        "n2": NodeStatus.CACHED,
        "n3": NodeStatus.SUCCEEDED,
        "n4": NodeStatus.SUCCEEDED,
        "n5": NodeStatus.SUCCEEDED,
        "side": NodeStatus.CACHED,
    }


async def test_a_run_served_from_the_cache_looks_it_up_once(
    engine: Engine, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    owner = await make_owner(db)
    workflow_id = await save_workflow(db, owner, chain(20))
    first = await engine.run_to_end(owner_id=owner, workflow_id=workflow_id)
    asked = cache_lookups(engine, monkeypatch)
    second = await engine.run_to_end(owner_id=owner, workflow_id=workflow_id)

    assert second.outputs == first.outputs == {"n20": {"value": 20}}
    first_rows = await node_rows(db, first.run_id)
    second_rows = await node_rows(db, second.run_id)
    assert {row.status for row in second_rows.values()} == {NodeStatus.CACHED}
    for node_id, row in second_rows.items():
        assert row.cached_from_id == first_rows[node_id].id
        assert row.cache_signature == first_rows[node_id].cache_signature
    # n1's look-up brought the results of the rest of the first run: nothing more was asked.
    assert asked == [([second_rows["n1"].cache_signature], True)]


async def test_a_near_look_up_answers_each_signature_with_its_newest_success(
    engine: Engine, db: Database
) -> None:
    owner = await make_owner(db)
    workflow_id = await save_workflow(db, owner, chain(3))
    first = await engine.run_to_end(owner_id=owner, workflow_id=workflow_id)
    second = await engine.run_to_end(owner_id=owner, workflow_id=workflow_id)
    first_rows = await node_rows(db, first.run_id)
    second_rows = await node_rows(db, second.run_id)
    # The second run's n2 as if it had run rather than been served: a newer success of the
    # same signature than the first run's.
    async with db.write() as session:
        await session.execute(
            update(NodeExecution)
            .where(NodeExecution.id == second_rows["n2"].id)
            .values(status=NodeStatus.SUCCEEDED, cached_from_id=None, outputs={"value": 2})
        )
    signature = {n: row.cache_signature for n, row in first_rows.items()}

    plain = await engine.store.find_cached([signature["n1"]])
    near = await engine.store.find_cached([signature["n1"]], near=True)

    assert plain == {signature["n1"]: (first_rows["n1"].id, {"value": 1})}
    assert near == {
        signature["n1"]: (first_rows["n1"].id, {"value": 1}),
        signature["n2"]: (second_rows["n2"].id, {"value": 2}),
        signature["n3"]: (first_rows["n3"].id, {"value": 3}),
    }
    assert await engine.store.find_cached(["0" * 64], near=True) == {}

    # On PostgreSQL, near look-ups that keep hitting are asked at once (one statement), and
    # ones that keep missing point first again: the answers are the same either way.
    store = TickStore(db)
    modes = set()
    for _ in range(12):
        modes.add(store.near_at_once)
        assert await store.find_cached([signature["n1"]], near=True) == near
    for _ in range(12):
        modes.add(store.near_at_once)
        assert await store.find_cached(["0" * 64], near=True) == {}
    assert not store.near_at_once
    assert modes == ({False} if db.is_sqlite else {False, True})


def hundred_node_graph(seed: int) -> tuple[dict[str, Any], dict[int, list[int]]]:
    """n0..n99: each later node adds to one parent or sums two; and each node's children."""
    rng = random.Random(seed)
    nodes, edges = [node("n0", "test.add", {"amount": 1})], []
    children: dict[int, list[int]] = {i: [] for i in range(100)}
    for i in range(1, 100):
        parents = rng.sample(range(i), min(i, rng.choice((1, 2))))
        if len(parents) == 1:
            nodes.append(node(f"n{i}", "test.add", {"amount": rng.randint(1, 9)}))
            edges.append(edge(f"n{parents[0]}", f"n{i}"))
        else:
            nodes.append(node(f"n{i}", "test.sum"))
            edges += [edge(f"n{p}", f"n{i}", target_handle="values") for p in parents]
        for parent in parents:
            children[parent].append(i)
    return definition(nodes, edges), children


async def test_editing_one_node_of_100_reruns_exactly_it_and_its_descendants(
    engine: Engine, db: Database
) -> None:
    graph, children = hundred_node_graph(seed=11)
    owner = await make_owner(db)
    workflow_id = await save_workflow(db, owner, graph)
    await engine.run_to_end(owner_id=owner, workflow_id=workflow_id)
    edited_index = next(i for i in range(30, 100) if graph["nodes"][i]["type"] == "test.add")
    edited = copy.deepcopy(graph)
    edited["nodes"][edited_index]["data"]["config"]["amount"] += 100
    await update_workflow(db, owner, workflow_id, edited)
    affected, frontier = {edited_index}, [edited_index]
    while frontier:
        for child in children[frontier.pop()]:
            if child not in affected:
                affected.add(child)
                frontier.append(child)

    restarted = Engine(db, registry())  # a new process, as far as the cache can tell
    try:
        result = await restarted.run_to_end(owner_id=owner, workflow_id=workflow_id)
    finally:
        await restarted.close()

    assert result.status is RunStatus.COMPLETED
    statuses = {n: r.status for n, r in (await node_rows(db, result.run_id)).items()}
    assert {n for n, s in statuses.items() if s == NodeStatus.SUCCEEDED} == {
        f"n{i}" for i in affected
    }
    assert {n for n, s in statuses.items() if s == NodeStatus.CACHED} == {
        f"n{i}" for i in range(100) if i not in affected
    }
    assert 1 < len(affected) < 100, "the edit reaches some nodes, not all"


async def test_use_cache_false_runs_everything(engine: Engine, db: Database) -> None:
    owner = await make_owner(db)
    workflow_id = await save_workflow(db, owner, chain(3))
    await engine.run_to_end(owner_id=owner, workflow_id=workflow_id)
    again = await engine.run_to_end(owner_id=owner, workflow_id=workflow_id, use_cache=False)
    statuses = {r.status for r in (await node_rows(db, again.run_id)).values()}
    assert statuses == {NodeStatus.SUCCEEDED}


async def test_upstream_runs_the_target_and_its_ancestors_only(
    engine: Engine, db: Database
) -> None:
    graph = definition(
        [*chain(4)["nodes"], node("other", "test.add")],
        [*chain(4)["edges"], edge("n1", "other")],
    )
    owner = await make_owner(db)
    workflow_id = await save_workflow(db, owner, graph)

    result = await engine.run_to_end(
        owner_id=owner, workflow_id=workflow_id, scope="UPSTREAM", target_node_id="n3"
    )

    assert result.status is RunStatus.COMPLETED
    assert result.outputs == {"n3": {"value": 3}}
    assert set(await node_rows(db, result.run_id)) == {"n1", "n2", "n3"}


async def test_a_node_run_takes_its_inputs_from_the_parents_newest_success_or_the_request(
    engine: Engine, db: Database
) -> None:
    graph = definition(
        [*chain(2)["nodes"], node("n3", "test.sum")],
        [*chain(2)["edges"], edge("n2", "n3", target_handle="values")],
    )
    owner = await make_owner(db)
    workflow_id = await save_workflow(db, owner, graph)

    missing = await engine.run_to_end(
        owner_id=owner, workflow_id=workflow_id, scope="NODE", target_node_id="n3"
    )
    assert missing.status is RunStatus.FAILED
    assert missing.error is not None
    assert "'values'" in missing.error["message"]
    assert "'n2' never succeeded" in missing.error["message"]

    from_request = await engine.run_to_end(
        owner_id=owner,
        workflow_id=workflow_id,
        scope="NODE",
        target_node_id="n3",
        inputs={"values": [40, 1]},
    )
    assert from_request.outputs == {"n3": {"value": 41, "count": 2}}

    await engine.run_to_end(owner_id=owner, workflow_id=workflow_id, use_cache=False)
    from_parent = await engine.run_to_end(
        owner_id=owner, workflow_id=workflow_id, scope="NODE", target_node_id="n3", use_cache=False
    )
    assert from_parent.outputs == {"n3": {"value": 2, "count": 1}}
    assert set(await node_rows(db, from_parent.run_id)) == {"n3"}


async def test_an_idempotency_key_gives_back_the_same_run(engine: Engine, db: Database) -> None:
    owner = await make_owner(db)
    workflow_id = await save_workflow(db, owner, chain(2))
    first = await engine.run_to_end(owner_id=owner, workflow_id=workflow_id, idempotency_key="k1")
    again = await engine.start_run(owner_id=owner, workflow_id=workflow_id, idempotency_key="k1")
    assert again == first.run_id
    assert len(await node_rows(db, first.run_id)) == 2
