"""The Redis transport Celery consumes through: kombu's, with one client per channel.

kombu's Redis channel builds a new ``redis.Redis`` client for each piece of bookkeeping
(``Channel.conn_or_acquire``): with late acknowledgement that is twice per task in the worker's
consumer, once to note the delivered message as unacknowledged and once to acknowledge it,
and a client costs ~55 us of CPU to build (its table of response callbacks), a fifth of what
the rest of both round trips costs. This channel builds that client once and reuses it: it
holds no connection of its own (each command takes one from the channel's pool, as before),
and ``redis.Redis`` is safe to share between threads. Nothing else changes: the same keys,
the same commands, the same pipelines.

Used for ``redis://`` and ``rediss://`` broker URLs (``make_celery``); RabbitMQ goes through
kombu's own transport.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from kombu.transport import redis as kombu_redis

__all__ = ["Channel", "Transport"]


class Channel(kombu_redis.Channel):
    """kombu's Redis channel, building its bookkeeping client once."""

    _bookkeeper: Any = None

    @contextlib.contextmanager
    def conn_or_acquire(self, client: Any = None) -> Iterator[Any]:
        if client:
            yield client
            return
        if self._bookkeeper is None:
            self._bookkeeper = self._create_client()  # type: ignore[no-untyped-call]
        yield self._bookkeeper


class Transport(kombu_redis.Transport):
    Channel = Channel
