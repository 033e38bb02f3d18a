"""Putting ``drive_runs`` tasks on a Redis broker's queue straight from the event loop.

Celery's ``send_task`` costs the API more than the rest of queueing a run: it runs beside the
loop (kombu is blocking), acquires a producer and a connection from their pools, builds three
ids and a ``repr`` of the arguments, and pushes the message in a round trip of its own. With
Redis as the broker, what lands in Redis is one JSON envelope ``LPUSH``ed onto the list named
after the queue (kombu's Redis transport, task protocol 2). ``TaskPush`` builds that envelope
itself and pushes it with an asyncio Redis client of its own.

It serves a Redis broker apart from the claims' Redis only: when the broker IS the claims'
Redis, runs skip Celery altogether (``inbox.py``).

Only a plain ``redis://`` or ``rediss://`` URL with no query string is pushed to here (a
Sentinel, a socket or options only kombu reads go through Celery as before), and only at
priority 0 (no priority is ever set for these tasks). A worker cannot tell such a message from
Celery's own: the tests compare the two field by field.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import uuid
from typing import TYPE_CHECKING, Any

from flowloom.settings import Settings
from flowloom.worker import DRIVE_MANY_TASK
from flowloom.worker.inbox import inbox_used

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["TaskPush", "pushable", "task_message", "task_push"]

_EMBED = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}
"""Task protocol 2's third body part: no callbacks, no chain, no chord."""


def pushable(broker_url: str) -> bool:
    """Whether tasks for ``broker_url`` can be pushed by ``TaskPush`` (a plain Redis URL)."""
    scheme, _, rest = broker_url.partition("://")
    return scheme in ("redis", "rediss") and bool(rest) and "?" not in rest


def task_message(queue: str, run_ids: list[str], *, origin: str, reply_to: str) -> str:
    """The envelope Celery and kombu would push for ``drive_runs(run_ids)`` on ``queue``
    (``origin`` and ``reply_to`` name the sender; nobody replies: there is no result)."""
    task_id = str(uuid.uuid4())
    args = [run_ids]
    body = json.dumps([args, {}, _EMBED])
    headers: dict[str, Any] = {
        "lang": "py",
        "task": DRIVE_MANY_TASK,
        "id": task_id,
        "shadow": None,
        "eta": None,
        "expires": None,
        "group": None,
        "group_index": None,
        "retries": 0,
        "timelimit": [None, None],
        "root_id": task_id,
        "parent_id": None,
        "argsrepr": repr(args),
        "kwargsrepr": "{}",
        "origin": origin,
        "ignore_result": None,
        "replaced_task_nesting": 0,
        "stamped_headers": None,
        "stamps": {},
    }
    properties = {
        "correlation_id": task_id,
        "reply_to": reply_to,
        "delivery_mode": 2,
        "delivery_info": {"exchange": "", "routing_key": queue},
        "priority": 0,
        "body_encoding": "base64",
        "delivery_tag": str(uuid.uuid4()),
    }
    return json.dumps(
        {
            "body": base64.b64encode(body.encode()).decode(),
            "content-encoding": "utf-8",
            "content-type": "application/json",
            "headers": headers,
            "properties": properties,
        }
    )


def task_push(settings: Settings) -> TaskPush | None:
    """A ``TaskPush`` for the settings' broker when it is a plain Redis URL apart from the
    claims' Redis, else None (runs go through the inbox, or Celery sends them)."""
    url = settings.broker_url
    if not pushable(url) or inbox_used(settings):
        return None
    from redis.asyncio import Redis

    return TaskPush(Redis.from_url(url), settings.worker_queue)


class TaskPush:
    """Pushes ``drive_runs`` tasks for ``queue`` onto the Redis broker that ``redis`` reaches
    (a client of its own, closed by ``aclose``)."""

    def __init__(self, redis: Redis, queue: str) -> None:
        self.redis = redis
        self.queue = queue
        self._origin = f"gen{os.getpid()}@{socket.gethostname()}"
        self._reply_to = str(uuid.uuid4())

    def message(self, run_ids: list[str]) -> str:
        return task_message(self.queue, run_ids, origin=self._origin, reply_to=self._reply_to)

    async def send(self, run_ids: list[str]) -> None:
        """Push one task for ``run_ids`` (one round trip)."""
        await self.redis.lpush(self.queue, self.message(run_ids))

    async def aclose(self) -> None:
        await self.redis.aclose()
