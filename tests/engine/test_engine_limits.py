"""Per-owner and per-key concurrency limits: refused nodes wait READY and run when room frees."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from enginekit import definition, make_owner, node, node_rows, registry, save_workflow

from flowloom.engine import Engine
from flowloom.engine.limits import ClaimLimits
from flowloom.graph.ports import Port, PortType
from flowloom.nodes.base import Category, Node, NodeConfig, NodeResult, RunContext
from flowloom.nodes.registry import default_registry
from flowloom.storage.database import Database
from flowloom.storage.enums import NodeStatus, RunStatus

RUNNING: Counter[str] = Counter()
MOST: Counter[str] = Counter()


class KeyedConfig(NodeConfig):
    key: str | None = None
    seconds: float = 0.05


class Keyed(Node[KeyedConfig]):
    """Sleeps while counted as running under its key (and under "all")."""

    type_name = "test.keyed"
    category = Category.ACTION
    deterministic = False
    Config = KeyedConfig

    def concurrency_key(self, config: KeyedConfig) -> str | None:
        return config.key

    def outputs(self, config: KeyedConfig) -> list[Port]:
        return [Port("value", PortType.ANY)]

    async def run(self, ctx: RunContext, config: KeyedConfig, inputs: dict[str, Any]) -> NodeResult:
        names = ["all", *([config.key] if config.key else [])]
        for name in names:
            RUNNING[name] += 1
            MOST[name] = max(MOST[name], RUNNING[name])
        try:
            await asyncio.sleep(config.seconds)
        finally:
            for name in names:
                RUNNING[name] -= 1
        return NodeResult({"value": ctx.node_id})


def engine_with(db: Database, **limits: Any) -> Engine:
    types = registry()
    types.register(Keyed)
    RUNNING.clear()
    MOST.clear()
    return Engine(db, types, **limits)


def keyed(
    count: int, key: str | None, prefix: str = "k", seconds: float = 0.05
) -> list[dict[str, Any]]:
    return [
        node(f"{prefix}{i}", "test.keyed", {"key": key, "seconds": seconds}) for i in range(count)
    ]


async def test_ten_ready_nodes_under_a_key_limit_of_two_never_run_three_at_once(
    db: Database,
) -> None:
    engine = engine_with(db, key_limits={"slot": 2})
    try:
        owner = await make_owner(db)
        workflow_id = await save_workflow(db, owner, definition(keyed(10, "slot:a"), []))
        result = await engine.run_to_end(owner_id=owner, workflow_id=workflow_id)
    finally:
        await engine.close()

    assert result.status is RunStatus.COMPLETED
    assert MOST["slot:a"] == 2, "the limit was reached but never passed"
    rows = await node_rows(db, result.run_id)
    assert {row.status for row in rows.values()} == {NodeStatus.SUCCEEDED}
    assert all(len(row.attempts) == 1 for row in rows.values()), "waiting is not failing"


async def test_a_family_limit_applies_to_each_key_and_a_key_entry_wins(db: Database) -> None:
    engine = engine_with(db, key_limits={"slot": 2, "slot:narrow": 1})
    try:
        owner = await make_owner(db)
        graph = definition(
            keyed(6, "slot:a", "a") + keyed(6, "slot:b", "b") + keyed(4, "slot:narrow", "n"), []
        )
        workflow_id = await save_workflow(db, owner, graph)
        result = await engine.run_to_end(owner_id=owner, workflow_id=workflow_id)
    finally:
        await engine.close()

    assert result.status is RunStatus.COMPLETED
    assert (MOST["slot:a"], MOST["slot:b"], MOST["slot:narrow"]) == (2, 2, 1)
    assert MOST["all"] == 5, "different keys do not wait for each other"


async def test_an_owner_limit_spans_that_owners_runs_only(db: Database) -> None:
    engine = engine_with(db, max_running_per_owner=3)
    try:
        owner = await make_owner(db)
        first = await save_workflow(db, owner, definition(keyed(5, None, "x"), []))
        second = await save_workflow(db, owner, definition(keyed(5, None, "y"), []))
        results = await asyncio.gather(
            engine.run_to_end(owner_id=owner, workflow_id=first),
            engine.run_to_end(owner_id=owner, workflow_id=second),
        )
        assert [r.status for r in results] == [RunStatus.COMPLETED] * 2
        assert MOST["all"] == 3

        MOST.clear()
        other = await make_owner(db)
        # Long enough that both runs' nodes overlap however slowly the second run starts.
        theirs = await save_workflow(db, other, definition(keyed(3, None, "z", 0.5), []))
        mine = await save_workflow(db, owner, definition(keyed(3, None, "w", 0.5), []))
        await asyncio.gather(
            engine.run_to_end(owner_id=other, workflow_id=theirs),
            engine.run_to_end(owner_id=owner, workflow_id=mine),
        )
        assert MOST["all"] == 6, "another owner's nodes do not count against this owner"
    finally:
        await engine.close()


def test_limits_count_and_free_places() -> None:
    limits = ClaimLimits(per_owner=2, per_key={"http": 1})
    assert limits.try_take("r", "a", owner="u", key="http:x.org") is None
    assert limits.try_take("r", "b", owner="u", key="http:x.org") == "key:http:x.org"
    assert limits.try_take("r", "b", owner="u", key="http:y.org") is None
    assert limits.try_take("r", "c", owner="u", key=None) == "owner:u"
    assert limits.running(owner="u") == 2
    assert limits.give_back("r", "a")[1] == ["owner:u", "key:http:x.org"]
    assert limits.give_back("r", "a") == (None, [])
    assert sorted(limits.give_back_run("r")) == ["key:http:y.org", "owner:u"]
    assert limits.running(owner="u") == 0


def test_http_requests_are_keyed_by_host() -> None:
    http = default_registry().get("http.request")
    config = http.parse_config({"url": "https://API.Example.com:8443/v1?q=1"})
    assert http.concurrency_key(config) == "http:api.example.com"


async def test_from_settings_takes_the_limits_lease_and_depth(db: Database, tmp_path: Any) -> None:
    from flowloom.settings import Settings

    settings = Settings(
        data_dir=tmp_path,
        engine_concurrency=7,
        engine_lease_s=30,
        max_running_nodes_per_user=4,
        node_concurrency_limits={"http": 2, "http:slow.example": 1},
        subworkflow_max_depth=5,
    )
    engine = Engine.from_settings(db, settings)
    try:
        assert (engine.lease_s, engine.max_subrun_depth, engine.limits.per_owner) == (30, 5, 4)
        assert engine.limits.key_limit("http:fast.example") == 2
        assert engine.limits.key_limit("http:slow.example") == 1
        assert engine.blobs._store.root == settings.blob_dir  # type: ignore[attr-defined]
    finally:
        await engine.close()
