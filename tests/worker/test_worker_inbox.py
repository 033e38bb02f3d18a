"""The runs' inbox (``inbox.py``): marks and pushes in one script, pop and claim in one, a
run another worker holds left to it; and a worker process taking its runs from the inbox, no
more at once than ``worker_runs_at_once``, finishing those in hand when it stops."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from enginekit import definition, make_owner, node, save_workflow
from newrun import new_run
from workerkit import REDIS_URL, Cluster, require_redis, schema_database, worker_registry

from flowloom.engine.plans import PlanCache
from flowloom.engine.sql import SqlRunStore
from flowloom.settings import Settings
from flowloom.storage.database import Database
from flowloom.storage.enums import RunStatus
from flowloom.worker.claims import QUEUED, RunClaims
from flowloom.worker.host import WorkerHost
from flowloom.worker.inbox import ENTRY_MAX, RunInbox
from flowloom.worker.runs import RunQueue


@pytest.fixture
async def claims() -> AsyncIterator[RunClaims]:
    from redis.asyncio import Redis

    require_redis()
    redis = Redis.from_url(f"{REDIS_URL}/{secrets.randbelow(15) + 1}")
    found = RunClaims(redis, namespace=f"fl_inbox_{secrets.token_hex(4)}", ttl_s=2.0)
    yield found
    keys = [key async for key in redis.scan_iter(f"flowloom:{found.namespace}:*")]
    if keys:
        await redis.delete(*keys)
    await redis.aclose()


async def _entries(inbox: RunInbox) -> list[str]:
    return [raw.decode() for raw in await inbox.redis.lrange(inbox.key, 0, -1)]


async def test_runs_are_marked_and_pushed_as_one_entry_and_a_marked_run_is_not_pushed_again(
    claims: RunClaims,
) -> None:
    inbox = RunInbox(claims)
    queue = RunQueue(claims, None, queued_for_s=5.0, inbox=inbox)

    assert await queue.put_many(["a", "b"], always=True) == ["a", "b"]
    assert await _entries(inbox) == ["a b"]
    assert [await claims.holder(run_id) for run_id in "ab"] == [QUEUED, QUEUED]
    assert 0 < await claims.redis.pttl(claims.key("a")) <= 5000
    # Not ``always`` (the sweep, a due timer): a run marked already is left to its entry.
    assert await queue.put_many(["a", "c"]) == ["c"]
    assert await queue.put_many(["a"]) == []
    assert await _entries(inbox) == ["a b", "c"]
    # ``always`` (an answer, a cancellation): pushed even while a worker holds the run.
    assert await claims.take("c", "worker-1")
    assert await queue.put_many(["c"], always=True) == ["c"]
    assert await claims.holder("c") == "worker-1", "the holder's claim stays"
    assert await _entries(inbox) == ["a b", "c", "c"]


async def test_a_big_put_goes_in_entries_of_a_few_runs(claims: RunClaims) -> None:
    inbox = RunInbox(claims)
    run_ids = [f"r{n}" for n in range(2 * ENTRY_MAX + 3)]

    assert await inbox.put(run_ids, for_s=5.0, always=False) == [True] * len(run_ids)
    entries = await _entries(inbox)
    assert [len(entry.split()) for entry in entries] == [ENTRY_MAX, ENTRY_MAX, 3]
    assert " ".join(entries).split() == run_ids, "in order, each once"


async def test_take_pops_and_claims_at_once_and_leaves_a_run_another_worker_holds(
    claims: RunClaims,
) -> None:
    inbox = RunInbox(claims)
    await inbox.put(["a", "b", "c"], for_s=5.0, always=True)
    assert await claims.take("b", "worker-2")

    assert await inbox.take("worker-1", 8) == ["a", "c"]
    assert await claims.holder("a") == "worker-1"
    assert await claims.holder("b") == "worker-2", "driven elsewhere: not taken from it"
    assert 0 < await claims.redis.pttl(claims.key("a")) <= 2000, "the claim's TTL, not the mark's"
    assert await inbox.size() == 0
    assert await inbox.take("worker-1", 8) == []


async def test_take_pops_entries_until_enough_runs_are_taken(claims: RunClaims) -> None:
    inbox = RunInbox(claims)
    for entry in (["a", "b"], ["c"], ["d", "e"], ["f"]):
        await inbox.put(entry, for_s=5.0, always=True)

    assert await inbox.take("worker-1", 3) == ["a", "b", "c"]
    # The entry that reaches the count comes whole: its runs are one push's, one load.
    assert await inbox.take("worker-1", 1) == ["d", "e"]
    assert await _entries(inbox) == ["f"]


async def test_a_wait_gives_an_entry_that_take_then_claims(claims: RunClaims) -> None:
    inbox = RunInbox(claims)
    began = time.monotonic()
    assert await inbox.wait(0.2) is None
    assert time.monotonic() - began >= 0.15, "it waited in Redis"

    waiting = asyncio.create_task(inbox.wait(5.0))
    await asyncio.sleep(0.05)
    await inbox.put(["a", "b"], for_s=5.0, always=True)
    await inbox.put(["c"], for_s=5.0, always=True)
    popped = await asyncio.wait_for(waiting, 5)

    assert popped == "a b"
    assert await inbox.take("worker-1", 8, popped) == ["a", "b", "c"]
    assert [await claims.holder(run_id) for run_id in "abc"] == ["worker-1"] * 3


@pytest.fixture
def settings(cluster: Cluster) -> Settings:
    found: Settings = cluster.settings().model_copy(update={"worker_runs_at_once": 2})
    return found


@pytest.fixture
def host(pg: tuple[Database, str], settings: Settings) -> Iterator[WorkerHost]:
    """A worker process's host in this process, taking runs from the inbox."""
    found = WorkerHost(
        settings,
        lambda run_ids: None,
        worker_registry(),
        open_database=schema_database(pg[1]),
        consumed=[settings.worker_queue],
    )
    yield found
    found.stop()


async def _runs(db: Database, count: int, seconds: float) -> list[str]:
    owner = await make_owner(db)
    workflow = await save_workflow(
        db, owner, definition([node("a", "test.whoami", {"seconds": seconds})], [])
    )
    store, plans = SqlRunStore(db), PlanCache(worker_registry())
    return [(await store.create_run(new_run(owner, workflow), plans)).run_id for _ in range(count)]


async def _statuses(db: Database, run_ids: list[str]) -> list[RunStatus]:
    return [(await SqlRunStore(db).outcome(run_id)).status for run_id in run_ids]


async def _queue(settings: Settings, run_ids: list[str]) -> None:
    from redis.asyncio import Redis

    redis = Redis.from_url(settings.resolved_events_url)
    try:
        claims = RunClaims(redis, namespace=settings.worker_queue, ttl_s=2.0)
        await RunInbox(claims).put(run_ids, for_s=5.0, always=True)
    finally:
        await redis.aclose()


async def _until(check: Any, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not await check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


@pytest.mark.postgres
@pytest.mark.slow
async def test_a_worker_drives_runs_from_the_inbox_no_more_at_once_than_its_room(
    pg: tuple[Database, str], settings: Settings, host: WorkerHost
) -> None:
    db = pg[0]
    run_ids = await _runs(db, 5, seconds=0.3)
    driving: list[int] = []
    drive = host._drive

    async def counted(run_id: str, **given: Any) -> str:
        driving.append(host._in_hand)
        return await drive(run_id, **given)

    host._drive = counted  # type: ignore[method-assign]
    host.start()
    for run_id in run_ids:  # one push each: each entry is taken on its own
        await _queue(settings, [run_id])

    async def finished() -> bool:
        return await _statuses(db, run_ids) == [RunStatus.COMPLETED] * 5

    await _until(finished)
    assert len(driving) == 5
    assert max(driving) == 2, "two runs at once at most (worker_runs_at_once)"
    await _until(lambda: asyncio.sleep(0, host._in_hand == 0))


@pytest.mark.postgres
@pytest.mark.slow
async def test_a_stopping_worker_finishes_the_runs_it_took(
    pg: tuple[Database, str], settings: Settings, host: WorkerHost
) -> None:
    db = pg[0]
    run_ids = await _runs(db, 2, seconds=1.0)
    host.start()
    await _queue(settings, run_ids)

    async def both_running() -> bool:
        return await _statuses(db, run_ids) == [RunStatus.RUNNING] * 2

    await _until(both_running)
    await asyncio.to_thread(host.stop)

    assert await _statuses(db, run_ids) == [RunStatus.COMPLETED] * 2
