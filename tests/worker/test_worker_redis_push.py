"""Tasks pushed onto a Redis broker from the event loop (``redis_push``): the message is the
one Celery would send, kombu reads it back as the task, the runs' marks go with it, and only a
plain Redis URL is pushed to."""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import AsyncIterator
from typing import Any

import pytest
from workerkit import REDIS_URL, require_redis

from flowloom.exceptions import ConfigurationError
from flowloom.settings import Settings
from flowloom.worker import DRIVE_MANY_TASK
from flowloom.worker.claims import QUEUED, RunClaims
from flowloom.worker.redis_push import TaskPush, pushable, task_push
from flowloom.worker.runs import RunQueue


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("redis://127.0.0.1:6379/0", True),
        ("redis://:secret@cache.internal", True),
        ("rediss://cache.internal:6380/2", True),
        ("redis://127.0.0.1:6379/0?ssl_cert_reqs=none", False),
        ("redis://", False),
        ("redis+socket:///run/redis.sock", False),
        ("sentinel://127.0.0.1:26379", False),
        ("amqp://guest:guest@127.0.0.1:5672//", False),
        ("", False),
    ],
)
def test_only_a_plain_redis_url_is_pushed_to(url: str, expected: bool) -> None:
    assert pushable(url) is expected


@pytest.fixture
def redis_url() -> str:
    require_redis()
    return f"{REDIS_URL}/{secrets.randbelow(15) + 1}"


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Any]:
    from redis.asyncio import Redis

    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


def _settings(broker_url: str, events_url: str | None = None) -> Settings:
    return Settings(
        executor="celery",
        broker_url=broker_url,
        events_url=events_url,
        worker_queue=f"fl_push_{secrets.token_hex(4)}",
    )


_NAMES = ("id", "root_id", "correlation_id", "delivery_tag", "reply_to", "origin")
"""What differs from one message to the next, or from one sender to another."""


def _fixed(message: Any) -> Any:
    """``message`` with its ids and its sender's name blanked out, its body decoded."""
    if isinstance(message, dict):
        found = {k: "<name>" if k in _NAMES else _fixed(v) for k, v in message.items()}
        if "body" in found:
            found["body"] = json.loads(base64.b64decode(message["body"]))
        return found
    return message


async def test_the_pushed_message_is_celery_s_own(redis: Any, redis_url: str) -> None:
    import asyncio

    from flowloom.worker.celery_app import make_celery, task_sender

    settings = _settings(redis_url)
    queue = settings.worker_queue
    try:
        await asyncio.to_thread(task_sender(make_celery(settings), settings), ["r1", "r2"])
        push = task_push(settings, redis)
        assert push is not None
        assert push.shared
        await push.send(["r1", "r2"])
        ours_raw, celerys_raw = await redis.lrange(queue, 0, -1)  # LPUSH: newest first
    finally:
        await redis.delete(queue, f"_kombu.binding.{queue}", f"_kombu.binding_permanent.{queue}")
    ours, celerys = json.loads(ours_raw), json.loads(celerys_raw)

    assert _fixed(ours) == _fixed(celerys)
    headers, properties = ours["headers"], ours["properties"]
    assert headers["task"] == DRIVE_MANY_TASK
    assert headers["root_id"] == headers["id"] == properties["correlation_id"]
    assert properties["delivery_tag"] != headers["id"]


async def test_kombu_reads_a_pushed_task_back(redis: Any, redis_url: str) -> None:
    from kombu import Connection

    settings = _settings(redis_url)
    push = task_push(settings, redis)
    assert push is not None
    await push.send(["r1"])
    await push.send(["r2", "r3"])
    with Connection(redis_url) as connection:
        simple = connection.SimpleQueue(settings.worker_queue)
        try:
            found = []
            for _ in range(2):
                message = simple.get(timeout=5)
                assert message.headers["task"] == DRIVE_MANY_TASK
                args, kwargs, _embed = message.decode()
                found.append(args[0])
                assert kwargs == {}
                message.ack()
        finally:
            simple.queue.delete()
            simple.close()
    assert found == [["r1"], ["r2", "r3"]], "first in, first out"


async def test_marks_and_task_go_together_and_a_marked_run_is_not_queued_twice(
    redis: Any, redis_url: str
) -> None:
    settings = _settings(redis_url)
    claims = RunClaims(redis, namespace=settings.worker_queue, ttl_s=2.0)
    push = task_push(settings, redis)
    queue = RunQueue(claims, None, queued_for_s=5.0, push=push)
    name = settings.worker_queue
    try:
        assert await queue.put_many(["a", "b"], always=True) == ["a", "b"]
        assert [await claims.holder(run_id) for run_id in ("a", "b")] == [QUEUED, QUEUED]
        assert await redis.llen(name) == 1
        # Not ``always`` (the sweep, a due timer): a run marked already is left to its task.
        assert await queue.put_many(["a", "c"]) == ["c"]
        assert await redis.llen(name) == 2
        assert await queue.put_many(["a"]) == []
        assert await redis.llen(name) == 2
        assert 0 < await redis.pttl(claims.key("c")) <= 5000
    finally:
        await redis.delete(name, *(claims.key(run_id) for run_id in "abc"))


async def test_a_failed_push_leaves_no_mark(redis: Any, redis_url: str) -> None:
    settings = _settings(redis_url)
    claims = RunClaims(redis, namespace=settings.worker_queue, ttl_s=2.0)
    push = task_push(settings, redis)
    assert push is not None

    def refused(pipe: Any, run_ids: list[str]) -> None:
        pipe.execute_command("NO-SUCH-COMMAND")

    push.add = refused  # type: ignore[method-assign]
    queue = RunQueue(claims, None, queued_for_s=5.0, push=push)
    from redis.exceptions import ResponseError

    with pytest.raises(ResponseError):
        await queue.put_many(["a"], always=True)
    assert await claims.holder("a") is None, "the sweep may queue it at once"
    assert await redis.llen(settings.worker_queue) == 0


async def test_a_broker_apart_from_the_claims_redis_gets_a_client_of_its_own(
    redis: Any, redis_url: str
) -> None:
    from redis.asyncio import Redis

    number = int(redis_url.rsplit("/", 1)[1])
    broker_url = f"{REDIS_URL}/{number % 15 + 1}"
    settings = _settings(broker_url, events_url=redis_url)
    push = task_push(settings, redis)
    assert isinstance(push, TaskPush)
    assert not push.shared
    assert push.redis is not redis
    claims = RunClaims(redis, namespace=settings.worker_queue, ttl_s=2.0)
    queue = RunQueue(claims, None, queued_for_s=5.0, push=push)
    broker = Redis.from_url(broker_url)
    try:
        assert await queue.put_many(["a"], always=True) == ["a"]
        assert await claims.holder("a") == QUEUED
        assert await redis.llen(settings.worker_queue) == 0
        assert await broker.llen(settings.worker_queue) == 1
    finally:
        await broker.delete(settings.worker_queue)
        await redis.delete(claims.key("a"))
        await broker.aclose()
        await push.aclose()
    assert await redis.ping(), "closing the push left the claims' client open"


def test_a_queue_with_no_way_to_send_is_refused() -> None:
    with pytest.raises(ConfigurationError):
        RunQueue(object(), None, queued_for_s=1.0)  # type: ignore[arg-type]


def test_an_amqp_broker_is_sent_through_celery() -> None:
    settings = _settings("amqp://guest:guest@127.0.0.1:5672//", events_url="redis://h/1")
    assert task_push(settings, object()) is None  # type: ignore[arg-type]
