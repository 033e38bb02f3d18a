"""A database outage in the middle of runs: the engine waits it out and finishes every run.

On PostgreSQL the connection is cut at a TCP proxy (every connection dropped, new ones
refused); on SQLite another connection holds the write lock past the busy timeout. In both,
nodes finish while the database is away, so their results cannot be committed then. Once it
is back the runs must reach COMPLETED on their own, within a few seconds, with no node left
RUNNING and no node run twice: a success that was committed is never run again, and one whose
commit was lost is applied from the outcome the engine kept.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator

import pytest
from enginekit import CALLS, definition, edge, make_owner, node, node_rows, registry, save_workflow
from outagekit import Outage

from flowloom.engine import Engine
from flowloom.exceptions import StorageError
from flowloom.storage.enums import NodeStatus, RunStatus

RECOVERY_LIMIT_S = 8.0
"""A run in flight finishes within this of the database's return (backoff caps at 2 s)."""


@pytest.fixture
async def engine(outage: Outage) -> AsyncIterator[Engine]:
    engine = Engine(outage.db, registry())
    yield engine
    await engine.close()


async def _wait_for(condition: object, timeout_s: float = 10.0) -> None:
    assert callable(condition)
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        await asyncio.sleep(0.01)


async def _finish_after_restore(
    engine: Engine, outage: Outage, run_ids: list[str]
) -> tuple[list[object], float]:
    began = time.monotonic()
    await asyncio.to_thread(outage.restore)
    results = [await asyncio.wait_for(engine.wait(run_id), RECOVERY_LIMIT_S) for run_id in run_ids]
    return results, time.monotonic() - began


async def _assert_all_finished_once(outage: Outage, run_id: str, ids: list[str]) -> None:
    rows = await node_rows(outage.db, run_id)
    assert {row.status for row in rows.values()} == {NodeStatus.SUCCEEDED}, {
        node_id: row.status for node_id, row in rows.items()
    }
    for node_id in ids:
        assert CALLS[node_id] == 1, f"{node_id} ran {CALLS[node_id]} times"
        assert [a["status"] for a in rows[node_id].attempts] == ["SUCCEEDED"]
        assert rows[node_id].lease_owner is None


async def test_a_chain_cut_while_a_node_runs_completes_after_restore_running_each_node_once(
    engine: Engine, outage: Outage
) -> None:
    tag = secrets.token_hex(3)
    a, s, b, c = (f"{name}_{tag}" for name in "asbc")
    graph = definition(
        [
            node(a, "test.add", {"amount": 1}),
            node(s, "test.sleep", {"seconds": 0.5}),
            node(b, "test.add", {"amount": 10}),
            node(c, "test.add", {"amount": 100}),
        ],
        [edge(a, s), edge(s, b), edge(b, c)],
    )
    owner = await make_owner(outage.db)
    workflow_id = await save_workflow(outage.db, owner, graph)
    run_id = await engine.start_run(owner_id=owner, workflow_id=workflow_id, use_cache=False)

    await _wait_for(lambda: CALLS[s] == 1)
    await asyncio.to_thread(outage.cut)
    # The sleeping node finishes meanwhile; its result cannot be committed.
    await asyncio.sleep(1.5)
    assert CALLS[b] == 0, "nothing ran on a result that was not committed"

    (result,), recovery_s = await _finish_after_restore(engine, outage, [run_id])

    assert result.status is RunStatus.COMPLETED, result.error  # type: ignore[attr-defined]
    assert result.outputs == {c: {"value": 111}}  # type: ignore[attr-defined]
    await _assert_all_finished_once(outage, run_id, [a, s, b, c])
    print(f"{outage.kind}: chain finished {recovery_s:.2f} s after the database came back")


async def test_a_fan_out_finishing_through_the_outage_completes_with_each_branch_once(
    engine: Engine, outage: Outage
) -> None:
    tag = secrets.token_hex(3)
    branches = [f"b{i}_{tag}" for i in range(8)]
    start, join = f"start_{tag}", f"join_{tag}"
    graph = definition(
        [
            node(start, "test.add", {"amount": 1}),
            *(
                node(branch, "test.sleep", {"seconds": 0.15 * (i + 1)})
                for i, branch in enumerate(branches)
            ),
            node(join, "test.sum"),
        ],
        [edge(start, branch) for branch in branches]
        + [edge(branch, join, target_handle="values") for branch in branches],
    )
    owner = await make_owner(outage.db)
    workflow_id = await save_workflow(outage.db, owner, graph)
    run_id = await engine.start_run(owner_id=owner, workflow_id=workflow_id, use_cache=False)

    # Cut after the first branches finished (and committed), while the others still run.
    await _wait_for(lambda: all(CALLS[branch] == 1 for branch in branches))
    await asyncio.sleep(0.35)
    await asyncio.to_thread(outage.cut)
    await asyncio.sleep(1.5)

    (result,), recovery_s = await _finish_after_restore(engine, outage, [run_id])

    assert result.status is RunStatus.COMPLETED, result.error  # type: ignore[attr-defined]
    assert result.outputs == {join: {"value": 8, "count": 8}}  # type: ignore[attr-defined]
    await _assert_all_finished_once(outage, run_id, [start, *branches, join])
    print(f"{outage.kind}: fan-out finished {recovery_s:.2f} s after the database came back")


async def test_a_run_whose_driver_starts_during_the_outage_waits_and_then_completes(
    engine: Engine, outage: Outage
) -> None:
    tag = secrets.token_hex(3)
    ids = [f"n{i}_{tag}" for i in range(3)]
    graph = definition(
        [node(node_id, "test.add") for node_id in ids],
        [edge(ids[0], ids[1]), edge(ids[1], ids[2])],
    )
    owner = await make_owner(outage.db)
    workflow_id = await save_workflow(outage.db, owner, graph)
    # Cut before the driver's first step (its task has not run yet when start_run returns).
    run_id = await engine.start_run(owner_id=owner, workflow_id=workflow_id, use_cache=False)
    outage.cut()
    await asyncio.sleep(1.0)

    (result,), _ = await _finish_after_restore(engine, outage, [run_id])

    assert result.status is RunStatus.COMPLETED, result.error  # type: ignore[attr-defined]
    await _assert_all_finished_once(outage, run_id, ids)


async def test_a_cancel_during_the_outage_answers_with_a_storage_error_and_the_run_goes_on(
    engine: Engine, outage: Outage
) -> None:
    tag = secrets.token_hex(3)
    a, s, b = f"a_{tag}", f"s_{tag}", f"b_{tag}"
    graph = definition(
        [node(a, "test.add"), node(s, "test.sleep", {"seconds": 0.3}), node(b, "test.add")],
        [edge(a, s), edge(s, b)],
    )
    owner = await make_owner(outage.db)
    workflow_id = await save_workflow(outage.db, owner, graph)
    run_id = await engine.start_run(owner_id=owner, workflow_id=workflow_id, use_cache=False)
    await _wait_for(lambda: CALLS[s] == 1)
    await asyncio.to_thread(outage.cut)
    await asyncio.sleep(0.5)

    # The caller is told at once (the API answers 503), not kept until the database is back.
    with pytest.raises(StorageError):
        await asyncio.wait_for(engine.cancel(run_id), 5)

    (result,), _ = await _finish_after_restore(engine, outage, [run_id])
    assert result.status in (RunStatus.COMPLETED, RunStatus.CANCELLED)  # type: ignore[attr-defined]
    rows = await node_rows(outage.db, run_id)
    assert NodeStatus.RUNNING not in {row.status for row in rows.values()}
    assert CALLS[s] == 1
