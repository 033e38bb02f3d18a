"""The Redis transport Celery consumes through (flowloom/worker/broker_redis.py): kombu's, with
its bookkeeping client built once per channel, and the same messages, acknowledgements and
unacknowledged records as kombu's own."""

from __future__ import annotations

import secrets
from typing import Any

import pytest
from workerkit import REDIS_URL, require_redis

from flowloom.settings import Settings
from flowloom.worker import broker_redis
from flowloom.worker.celery_app import BROKER_REDIS_TRANSPORT, make_celery


@pytest.mark.parametrize(
    ("broker_url", "ours"),
    [
        ("redis://127.0.0.1:6379/4", True),
        ("rediss://cache.example:6380/0", True),
        ("amqp://guest:guest@127.0.0.1:5672//", False),
        ("amqps://mq.example:5671//", False),
    ],
)
def test_celery_consumes_redis_through_this_transport_and_the_rest_through_kombu_s(
    broker_url: str, ours: bool
) -> None:
    settings = Settings(
        executor="celery", broker_url=broker_url, events_url="redis://127.0.0.1:6379/4"
    )
    app = make_celery(settings)

    assert (app.conf.broker_transport == BROKER_REDIS_TRANSPORT) is ours


def _through_a_queue(transport: Any, monkeypatch: pytest.MonkeyPatch) -> tuple[list[Any], int]:
    """Three messages put and taken (acknowledged) on a queue of Redis db 15; what came back
    and how many bookkeeping clients the channel built meanwhile."""
    from kombu import Connection

    built = [0]
    create = broker_redis.kombu_redis.Channel._create_client

    def counting(self: Any, asynchronous: bool = False) -> Any:
        if not asynchronous:
            built[0] += 1
        return create(self, asynchronous)

    monkeypatch.setattr(broker_redis.kombu_redis.Channel, "_create_client", counting)
    name = f"t_broker_{secrets.token_hex(4)}"
    got = []
    with Connection(f"{REDIS_URL}/15", transport=transport) as connection:
        queue = connection.SimpleQueue(name)
        try:
            for number in range(3):
                queue.put({"n": number})
            built[0] = 0  # what taking and acknowledging cost
            tags = []
            for _ in range(3):
                message = queue.get(timeout=5)
                got.append(message.payload)
                tags.append(message.delivery_tag)
                message.ack()
            channel = queue.channel
            unacked = [channel.client.hexists(channel.unacked_key, tag) for tag in tags]
        finally:
            queue.clear()
            queue.close()
    assert unacked == [False, False, False], "each acknowledgement cleared its record"
    return got, built[0]


def test_messages_go_round_with_one_bookkeeping_client(monkeypatch: pytest.MonkeyPatch) -> None:
    require_redis()

    got, built = _through_a_queue(broker_redis.Transport, monkeypatch)

    assert got == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert built <= 1


def test_kombu_s_own_transport_builds_a_client_per_record_and_ack(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What the transport saves (and that the count above can see it)."""
    require_redis()

    got, built = _through_a_queue("redis", monkeypatch)

    assert got == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert built >= 6
