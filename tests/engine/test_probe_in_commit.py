"""Cache probes carried by the tick's commit (PostgreSQL, ``ProbingStore``): a tick that commits
whatever it claims claims a node whose signature is not known yet without a look-up of its
own; the look-up rides in the commit's statement. A miss is started as claimed; a hit is not
started: the next tick serves it from the cache, and what a follower and the history see is
what a probe before the claim gives (CACHED from the row hit, no attempt, no start event).
SQLite looks up before it claims, as ever."""

from __future__ import annotations

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
)

from flowloom.engine import Engine, Event
from flowloom.storage.database import Database
from flowloom.storage.enums import NodeStatus


def _published(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> list[Event]:
    seen: list[Event] = []
    publish = engine.bus.publish

    def kept(events: list[Event]) -> None:
        seen.extend(events)
        publish(events)

    monkeypatch.setattr(engine.bus, "publish", kept)
    return seen


@pytest.mark.parametrize("db_kind", ["postgresql"], indirect=True)
async def test_probes_ride_in_the_commit_and_a_hit_is_served_not_started(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    graph = definition(
        [*chain(4)["nodes"], node("side", "test.add", {"amount": 50})],
        [*chain(4)["edges"], edge("n2", "side")],
    )
    owner = await make_owner(db)
    workflow_id = await save_workflow(db, owner, graph)
    engine = Engine(db, registry(), max_running_per_owner=1)
    try:
        asked = cache_lookups(engine, monkeypatch)
        first = await engine.run_to_end(owner_id=owner, workflow_id=workflow_id)
        assert first.outputs == {"n4": {"value": 4}, "side": {"value": 52}}
        first_rows = await node_rows(db, first.run_id)
        assert {r.status for r in first_rows.values()} == {NodeStatus.SUCCEEDED}
        assert all(r.cache_signature for r in first_rows.values())
        assert asked == []  # every probe (all missed) rode in a commit

        events = _published(engine, monkeypatch)
        second = await engine.run_to_end(owner_id=owner, workflow_id=workflow_id)
    finally:
        await engine.close()
    assert second.outputs == first.outputs
    rows = await node_rows(db, second.run_id)
    for node_id, row in rows.items():
        assert row.status == NodeStatus.CACHED, node_id
        assert row.cached_from_id == first_rows[node_id].id
        assert (row.attempts, row.lease_owner, row.error) == ([], None, None)
        assert row.outputs == first_rows[node_id].outputs
        assert (row.started_at, row.duration_ms) == (row.finished_at, 0)
    # n1's probe hit in the first tick's commit; its run's results were then fetched once.
    assert asked == [([rows["n1"].cache_signature], True)]
    mine = [e for e in events if e.run_id == second.run_id]
    assert not [e for e in mine if e.type == "node.started"]
    assert sorted(e.node_id for e in mine if e.type == "node.cached") == sorted(rows)
    assert mine[-1].type == "run.completed"


@pytest.mark.parametrize("db_kind", ["postgresql"], indirect=True)
async def test_when_probes_hit_often_they_are_asked_alone_again(
    engine: Engine, db: Database
) -> None:
    owner = await make_owner(db)
    workflow_id = await save_workflow(db, owner, chain(2))
    await engine.run_to_end(owner_id=owner, workflow_id=workflow_id)
    store: Any = engine.store
    assert store.folds_probes()
    for _ in range(4):  # all served from the cache
        await engine.run_to_end(owner_id=owner, workflow_id=workflow_id)
    assert not store.folds_probes()


@pytest.mark.parametrize("db_kind", ["sqlite"], indirect=True)
async def test_sqlite_looks_up_before_it_claims(
    engine: Engine, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    store: Any = engine.store
    assert not store.folds_probes()
    with pytest.raises(ValueError, match="PostgreSQL"):
        await store.commit_probing(None, ["a"])
    owner = await make_owner(db)
    workflow_id = await save_workflow(db, owner, chain(2))
    asked = cache_lookups(engine, monkeypatch)
    first = await engine.run_to_end(owner_id=owner, workflow_id=workflow_id)
    assert len(asked) == 2  # one look-up per node, before its claim
    second = await engine.run_to_end(owner_id=owner, workflow_id=workflow_id)
    rows = await node_rows(db, second.run_id)
    assert {r.status for r in rows.values()} == {NodeStatus.CACHED}
    assert first.outputs == second.outputs
