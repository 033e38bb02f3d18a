"""The runs API's wait in distributed mode (``RemoteEngine.settle``) on a run that finished
before the wait began: the feed read its end already, so the wait reads nothing."""

from __future__ import annotations

import asyncio

import pytest
from enginekit import definition, make_owner, node, save_workflow
from workerkit import Cluster, settled_reads

from flowloom.engine import Engine
from flowloom.storage.database import Database
from flowloom.storage.enums import RunStatus
from flowloom.worker import remote


async def test_a_run_whose_end_the_feed_read_before_the_wait_is_not_read(
    pg: tuple[Database, str], cluster: Cluster, api: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = pg[0]
    cluster.start_worker()
    owner = await make_owner(db)
    assert isinstance(api, remote.RemoteEngine)
    reads = settled_reads(api, monkeypatch)
    graph = definition([node("one", "test.add")], [])
    run_id = await api.start_run(owner_id=owner, workflow_id=await save_workflow(db, owner, graph))
    feed = api._feed
    assert feed is not None
    for _ in range(600):
        if feed.saw_finish(run_id):
            break
        await asyncio.sleep(0.05)
    assert feed.saw_finish(run_id), cluster.logs()[-3000:]

    await asyncio.wait_for(api.settle(run_id), 5)

    assert reads == [], "the feed read the run's end: nothing to read"
    assert (await api.wait(run_id)).status is RunStatus.COMPLETED
    assert reads == [run_id], "the outcome itself is read"
    assert not feed.saw_finish("run_never_seen")
