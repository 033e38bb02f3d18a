"""Node types on a queue of their own: a worker that drives runs sends them to the queue, a
worker of that queue runs them, and the run goes on with their outcome; a killed queue worker's
job is sent again and finishes on another, its effects under one idempotency key."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from enginekit import definition, edge, make_owner, node, node_rows, save_workflow
from workerkit import Cluster

from flowloom.engine import Engine
from flowloom.storage.database import Database
from flowloom.storage.enums import NodeStatus, RunStatus

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.slow,
    pytest.mark.node_queues({"test.who*": "heavy", "test.whoami": "heavy"}),
]


def heavy_graph(seconds: float) -> dict[str, object]:
    """a -> heavy (routed) -> after, and a -> light (not routed): the run waits for both."""
    return definition(
        [
            node("a", "test.add", {"amount": 1}),
            node("heavy", "test.whoami", {"seconds": seconds}),
            node("after", "test.add", {"amount": 10}),
            node("light", "test.add", {"amount": 100}),
        ],
        [
            edge("a", "heavy", target_handle="value"),
            edge("heavy", "after", source_handle="pid"),
            edge("a", "light"),
        ],
    )


async def test_a_routed_node_runs_on_its_queue_and_the_run_goes_on(
    pg: tuple[Database, str], cluster: Cluster, api: Engine
) -> None:
    db = pg[0]
    runs_worker = cluster.start_worker(queues="runs")
    heavy_worker = cluster.start_worker(queues="heavy")
    cluster.wait_ready(runs_worker)
    cluster.wait_ready(heavy_worker)
    owner = await make_owner(db)
    workflow_id = await save_workflow(db, owner, heavy_graph(0.05))
    result = await asyncio.wait_for(
        api.run_to_end(owner_id=owner, workflow_id=workflow_id, use_cache=False), 60
    )
    assert result.status is RunStatus.COMPLETED, cluster.logs()
    rows = await node_rows(db, result.run_id)
    assert {n: r.status for n, r in rows.items()} == dict.fromkeys(rows, NodeStatus.SUCCEEDED)
    # Run by the heavy queue's worker (solo pool: its own pid), not by the run's driver; the
    # driver still wrote the row under its own lease.
    assert rows["heavy"].outputs == {"pid": heavy_worker.pid}
    assert rows["heavy"].lease_owner is None or str(runs_worker.pid) in rows["heavy"].lease_owner
    assert rows["after"].outputs == {"value": heavy_worker.pid + 10}
    assert rows["heavy"].attempt == 1
    assert "node heavy: succeeded" in cluster.logs()


@pytest.mark.node_queues({"test.whoami": "heavy"})
async def test_a_worker_that_consumes_the_queue_runs_the_node_itself(
    pg: tuple[Database, str], cluster: Cluster, api: Engine
) -> None:
    """One worker of every queue (the default) never waits for a queue only it could serve."""
    db = pg[0]
    worker = cluster.start_worker()
    cluster.wait_ready(worker)
    owner = await make_owner(db)
    workflow_id = await save_workflow(db, owner, heavy_graph(0.05))
    result = await asyncio.wait_for(
        api.run_to_end(owner_id=owner, workflow_id=workflow_id, use_cache=False), 60
    )
    assert result.status is RunStatus.COMPLETED, cluster.logs()
    assert (await node_rows(db, result.run_id))["heavy"].outputs == {"pid": worker.pid}
    assert "node heavy:" not in cluster.logs()


async def test_a_killed_queue_worker_s_node_is_sent_again_and_finishes_elsewhere(
    pg: tuple[Database, str], cluster: Cluster, api: Engine, tmp_path: Path
) -> None:
    db = pg[0]
    runs_worker = cluster.start_worker(queues="runs")
    doomed = cluster.start_worker(queues="heavy")
    cluster.wait_ready(runs_worker)
    cluster.wait_ready(doomed)
    owner = await make_owner(db)
    workflow_id = await save_workflow(db, owner, heavy_graph(3.0))
    run_id = await api.start_run(owner_id=owner, workflow_id=workflow_id, use_cache=False)
    deadline = time.monotonic() + 30
    # Until the doomed worker has the job (its log says it received the task).
    while "node heavy: attempt 1 taken here" not in (tmp_path / "worker1.log").read_text(
        errors="replace"
    ):
        assert time.monotonic() < deadline, cluster.logs()
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.5)
    cluster.kill(doomed)
    killed_at = time.monotonic()
    rescuer = cluster.start_worker(queues="heavy")
    try:
        result = await asyncio.wait_for(api.wait(run_id), 60)
    except TimeoutError:
        raise AssertionError(f"the run never finished:\n{cluster.logs()}") from None
    assert result.status is RunStatus.COMPLETED, cluster.logs()
    rows = await node_rows(db, run_id)
    assert rows["heavy"].outputs == {"pid": rescuer.pid}
    assert rows["heavy"].attempt == 1  # the same attempt, sent again: one idempotency key
    assert rows["after"].status == NodeStatus.SUCCEEDED
    assert "was lost; sending it again" in cluster.logs()
    print(f"a killed queue worker's node finished {time.monotonic() - killed_at:.2f} s later")
