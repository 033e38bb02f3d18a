"""Run claims in Redis (flowloom/worker/claims.py): one driver per run, and the sweep's one look
at many claims at once."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import pytest
from workerkit import REDIS_URL, require_redis

from flowloom.worker.claims import RunClaims


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
