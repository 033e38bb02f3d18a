"""Run claims in Redis (flowloom/worker/claims.py): one driver per run, and the sweep's one look
at many claims at once."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator

import pytest
from workerkit import REDIS_URL, require_redis

from flowloom.settings import Settings
from flowloom.worker.claims import QUEUED, RunClaims
from flowloom.worker.host import sweep_lock_s


@pytest.fixture
async def claims() -> AsyncIterator[RunClaims]:
    require_redis()
    from redis.asyncio import Redis

    redis = Redis.from_url(f"{REDIS_URL}/15")
    yield RunClaims(redis, namespace=f"t_{secrets.token_hex(4)}", ttl_s=5)
    await redis.aclose()


async def test_the_sweep_sees_only_runs_nobody_drives_or_queued(claims: RunClaims) -> None:
    assert await claims.take("run_driven", "worker-a")
    assert await claims.mark_queued(["run_queued"], for_s=5) == [True]

    found = await claims.unheld(["run_driven", "run_free", "run_queued", "run_other"])

    assert found == ["run_free", "run_other"]
    assert await claims.unheld([]) == []


async def test_a_claim_is_one_driver_s_until_released(claims: RunClaims) -> None:
    assert await claims.mark_queued(["run_1"], for_s=5) == [True]
    assert await claims.take("run_1", "worker-a")  # a queued mark gives way to a driver
    assert not await claims.take("run_1", "worker-b")
    assert await claims.mark_queued(["run_1", "run_2"], for_s=5) == [False, True]
    await claims.unmark_queued(["run_1", "run_2"])  # only a mark goes, never a claim
    assert await claims.holder("run_1") == "worker-a"
    assert await claims.holder("run_2") is None
    await claims.release("run_1", "worker-b")  # not its claim: nothing happens
    assert await claims.holder("run_1") == "worker-a"
    await claims.release("run_1", "worker-a")
    assert await claims.unheld(["run_1"]) == ["run_1"]


async def test_a_task_s_runs_are_claimed_in_one_go_each_as_take_would(claims: RunClaims) -> None:
    assert await claims.take("run_other", "worker-b")
    assert await claims.mark_queued(["run_queued"], for_s=5) == [True]
    assert await claims.take("run_mine", "worker-a")

    taken = await claims.take_many(["run_free", "run_other", "run_queued", "run_mine"], "worker-a")

    assert taken == [True, False, True, True]
    assert await claims.holder("run_other") == "worker-b", "another worker's claim is kept"
    assert await claims.unheld(["run_free", "run_queued", "run_mine"]) == []
    assert await claims.take_many([], "worker-a") == []


async def test_the_sweep_lock_stays_with_its_holder_until_it_lapses(claims: RunClaims) -> None:
    assert await claims.try_lock("sweep", "worker-a", for_s=0.3)
    assert await claims.try_lock("sweep", "worker-a", for_s=0.3), "its holder keeps it"
    assert not await claims.try_lock("sweep", "worker-b", for_s=0.3)
    await asyncio.sleep(0.4)  # worker-a stopped sweeping (it died)
    assert await claims.try_lock("sweep", "worker-b", for_s=0.3)
    assert not await claims.try_lock("sweep", "worker-a", for_s=0.3)


def test_a_dead_sweeper_is_replaced_before_its_runs_claims_lapse() -> None:
    settings = Settings(worker_claim_ttl_s=2.0, worker_sweep_interval_s=0.25)
    held_s = sweep_lock_s(settings)
    # Its lock lapses held_s after its last sweep, and the others look every held_s.
    assert 2 * held_s <= settings.worker_claim_ttl_s / 2
    assert held_s >= 2 * settings.worker_sweep_interval_s, "a sweeper renews before a lapse"
    slow = Settings(worker_claim_ttl_s=2.0, worker_sweep_interval_s=5.0)
    assert sweep_lock_s(slow) == 10.0


async def test_a_lone_mark_is_set_only_where_nothing_is_and_lapses(claims: RunClaims) -> None:
    assert await claims.take("run_driven", "worker-a")
    assert await claims.mark_queued(["run_driven"], for_s=5) == [False]
    assert await claims.holder("run_driven") == "worker-a", "a mark never replaces a claim"
    assert await claims.mark_queued(["run_new"], for_s=5) == [True]
    assert await claims.mark_queued(["run_new"], for_s=5) == [False]
    assert await claims.holder("run_new") == QUEUED
    assert 0 < await claims.redis.pttl(claims.key("run_new")) <= 5000
