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
from workerkit import BROKERS, Cluster

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
    # With the broker the claims' Redis, runs go onto the inbox: the API never imports Celery.
    assert child.stdout.split() == ["32", "False"]
    import redis

    broker = redis.Redis.from_url(cluster.broker_url)
    try:
        entries = [raw.decode() for raw in broker.lrange(f"flowloom:{cluster.queue}:inbox", 0, -1)]
        tasks = broker.llen(cluster.queue)
    finally:
        broker.close()
    queued = [run_id for entry in entries for run_id in entry.split()]
    assert len(queued) == 32 == len(set(queued)), "every run sent once, at once"
    assert len(entries) < 32, "runs made while a send was on its way shared a push"
    assert all(len(entry.split()) <= 8 for entry in entries)
    assert tasks == 0, "no Celery task carries a run"


@pytest.mark.parametrize("broker", BROKERS, indirect=True)
async def test_a_run_the_broker_refused_starts_once_the_broker_answers(
    pg: tuple[Database, str], cluster: Cluster, api: Engine, broker: str
) -> None:
    db = pg[0]
    owner = await make_owner(db)
    workflow_id = await save_workflow(db, owner, one_node())
    assert isinstance(api, RemoteEngine)
    queue = api._queue
    assert queue is not None
    refusals = [0]
    if broker == "redis":
        # Redis is the broker: runs go onto the inbox, marks and push in one script.
        inbox = queue.inbox
        assert inbox is not None
        assert queue._push is None
        assert queue._send is None
        put = inbox.put

        async def flaky_put(run_ids: list[str], *, for_s: float, always: bool) -> list[bool]:
            if refusals[0] < 2:
                refusals[0] += 1
                raise ConnectionError("Redis is restarting")
            return await put(run_ids, for_s=for_s, always=always)

        inbox.put = flaky_put  # type: ignore[method-assign]
    else:
        assert queue._push is None
        assert queue.inbox is None
        send = queue._send
        assert send is not None

        def flaky_broker(run_ids: list[str]) -> None:
            if refusals[0] < 2:
                refusals[0] += 1
                raise ConnectionError("the broker is restarting")
            send(run_ids)

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


class _Recorder:
    """Stands for the API's RunQueue: what each task would carry."""

    def __init__(self) -> None:
        self.tasks: list[list[str]] = []

    async def put_many(self, run_ids: list[str], *, always: bool = False) -> list[str]:
        self.tasks.append(list(run_ids))
        return run_ids


def _recorded(api: Engine, monkeypatch: pytest.MonkeyPatch, spacing_s: float) -> _Recorder:
    """``api`` sending its tasks to a recorder, spaced ``spacing_s`` apart."""
    from flowloom.worker import remote

    assert isinstance(api, RemoteEngine)
    recorder = _Recorder()
    api._queue = recorder  # type: ignore[assignment]
    monkeypatch.setattr(remote, "_SEND_SPACING_S", spacing_s)
    return recorder


async def test_runs_made_soon_after_a_send_wait_for_the_spacing_and_go_together(
    api: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert isinstance(api, RemoteEngine)
    recorder = _recorded(api, monkeypatch, 1.0)

    await api._dispatch("first")
    assert recorder.tasks == [["first"]], "a run after a quiet spell goes at once, alone"
    second = asyncio.create_task(api._dispatch("second"))
    for _ in range(5):
        await asyncio.sleep(0)  # time enough to send it, were it not for the spacing
    assert recorder.tasks == [["first"]]
    await asyncio.gather(second, *(api._dispatch(f"r{n}") for n in range(8)))
    assert recorder.tasks == [
        ["first"],
        ["second", *(f"r{n}" for n in range(7))],
        ["r7"],
    ], "runs made within the spacing go together, eight to a task at most"


async def test_a_full_task_goes_at_once_whatever_the_spacing(
    api: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flowloom.worker import remote

    assert isinstance(api, RemoteEngine)
    recorder = _recorded(api, monkeypatch, 60.0)

    await api._dispatch("first")
    await asyncio.wait_for(
        asyncio.gather(*(api._dispatch(f"r{n}") for n in range(remote._BATCH_MAX))), 10
    )
    assert recorder.tasks == [["first"], [f"r{n}" for n in range(remote._BATCH_MAX)]], (
        "the spacing holds back a task that is not full, never a full one"
    )
