"""Queueing runs from the API in distributed mode: the first requests after a start, and a
broker that refuses a run already committed. No run is stranded and no caller gets an error
for a run that exists."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import pytest
from enginekit import definition, make_owner, node, save_workflow
from workerkit import Cluster

from flowloom.engine import Engine
from flowloom.storage.database import Database
from flowloom.storage.enums import RunStatus
from flowloom.worker.remote import RemoteEngine

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

HERE = Path(__file__).resolve().parent


def one_node() -> dict[str, object]:
    return definition([node("a", "test.add", {"amount": 2})], [])


async def test_the_first_runs_after_a_start_are_all_queued_at_once(
    pg: tuple[Database, str], cluster: Cluster
) -> None:
    db, schema = pg
    owner = await make_owner(db)
    workflow_id = await save_workflow(db, owner, one_node())

    child = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, str(HERE / "dispatch_child.py"), schema, owner, workflow_id, "32"],
        env=cluster.env(),
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert child.returncode == 0, child.stderr[-3000:]
    assert child.stdout.split() == ["32"]
    import redis

    broker = redis.Redis.from_url(cluster.broker_url)
    try:
        assert broker.llen(cluster.queue) == 32, "one task per run, each sent at once"
    finally:
        broker.close()


async def test_a_run_the_broker_refused_starts_once_the_broker_answers(
    pg: tuple[Database, str], cluster: Cluster, api: Engine
) -> None:
    db = pg[0]
    owner = await make_owner(db)
    workflow_id = await save_workflow(db, owner, one_node())
    assert isinstance(api, RemoteEngine)
    queue = api._queue
    assert queue is not None
    send = queue._send
    refusals = [0]

    def flaky_broker(run_id: str) -> None:
        if refusals[0] < 2:
            refusals[0] += 1
            raise ConnectionError("the broker is restarting")
        send(run_id)

    queue._send = flaky_broker
    cluster.start_worker()

    began = time.monotonic()
    run_id = await api.start_run(owner_id=owner, workflow_id=workflow_id, use_cache=False)
    result = await asyncio.wait_for(api.wait(run_id), 30)

    assert refusals[0] == 2
    assert result.status is RunStatus.COMPLETED, cluster.logs()
    assert result.outputs == {"a": {"value": 2}}
    assert time.monotonic() - began < 10, "the outbox re-sent it; it did not wait for a mark"
    assert await queue.claims.holder(run_id) != "queued", "no mark is left behind"
