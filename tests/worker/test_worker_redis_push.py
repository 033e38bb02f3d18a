"""Tasks pushed onto a Redis broker from the event loop (``redis_push``): the message is the
one Celery would send, kombu reads it back as the task, a failed push leaves no mark, and only
a plain Redis URL apart from the claims' Redis is pushed to (the claims' own Redis as the
broker takes runs through the inbox: ``test_worker_inbox.py``)."""

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
from flowloom.worker.inbox import inbox_used
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


def _other(redis_url: str) -> str:
    """Another database of the Redis of ``redis_url`` (a Redis apart from it, as far as the
    keys go)."""
    number = int(redis_url.rsplit("/", 1)[1])
    return f"{REDIS_URL}/{number % 15 + 1}"


def _apart(broker_url: str) -> Settings:
    """Settings whose broker is ``broker_url`` and whose claims live in another Redis."""
    return _settings(broker_url, events_url=_other(broker_url))


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

    settings = _apart(redis_url)
    queue = settings.worker_queue
    push = task_push(settings)
    assert push is not None
    try:
        await asyncio.to_thread(task_sender(make_celery(settings), settings), ["r1", "r2"])
        await push.send(["r1", "r2"])
        ours_raw, celerys_raw = await redis.lrange(queue, 0, -1)  # LPUSH: newest first
    finally:
        await push.aclose()
        await redis.delete(queue, f"_kombu.binding.{queue}", f"_kombu.binding_permanent.{queue}")
    ours, celerys = json.loads(ours_raw), json.loads(celerys_raw)

    assert _fixed(ours) == _fixed(celerys)
    headers, properties = ours["headers"], ours["properties"]
    assert headers["task"] == DRIVE_MANY_TASK
    assert headers["root_id"] == headers["id"] == properties["correlation_id"]
    assert properties["delivery_tag"] != headers["id"]


async def test_kombu_reads_a_pushed_task_back(redis: Any, redis_url: str) -> None:
    from kombu import Connection

    settings = _apart(redis_url)
    push = task_push(settings)
    assert push is not None
    await push.send(["r1"])
    await push.send(["r2", "r3"])
    await push.aclose()
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


async def test_a_failed_push_leaves_no_mark(redis: Any, redis_url: str) -> None:
    from redis.asyncio import Redis

    settings = _apart(redis_url)
    events = Redis.from_url(settings.resolved_events_url)
    claims = RunClaims(events, namespace=settings.worker_queue, ttl_s=2.0)
    push = task_push(settings)
    assert push is not None

    async def refused(run_ids: list[str]) -> None:
        raise ConnectionError("the broker is restarting")

    push.send = refused  # type: ignore[method-assign]
    queue = RunQueue(claims, None, queued_for_s=5.0, push=push)
    try:
        with pytest.raises(ConnectionError):
            await queue.put_many(["a"], always=True)
        assert await claims.holder("a") is None, "the sweep may queue it at once"
        assert await redis.llen(settings.worker_queue) == 0
    finally:
        await push.aclose()
        await events.aclose()


async def test_a_broker_apart_from_the_claims_redis_gets_a_client_of_its_own(
    redis: Any, redis_url: str
) -> None:
    from redis.asyncio import Redis

    broker_url = _other(redis_url)
    settings = _settings(broker_url, events_url=redis_url)
    push = task_push(settings)
    assert isinstance(push, TaskPush)
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
    assert task_push(settings) is None
    assert not inbox_used(settings)


def test_the_claims_redis_as_the_broker_takes_runs_through_the_inbox() -> None:
    settings = _settings("redis://127.0.0.1:6379/3")
    assert task_push(settings) is None
    assert inbox_used(settings)
    assert inbox_used(_settings("redis://h/3", events_url="redis://h/3"))
    assert not inbox_used(_settings("redis://h/3", events_url="redis://h/4"))
