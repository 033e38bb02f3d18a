"""The claim heartbeat: a thread that keeps this worker's run claims alive in Redis.

A claim expires ``worker_claim_ttl_s`` after its last renewal, and another worker then takes
the run over: that expiry is what bounds recovery after a worker is killed, so the TTL should be
short (2 s by default). A short TTL is only safe if a live worker never misses a renewal, and
renewals made on the engine's event loop would be late whenever the loop is busy (a node doing
CPU work, a long synchronous call, a burst of ticks): a busy worker would lose its runs to
another, which would run their nodes again. So the renewals run here, on a thread of their own
with its own synchronous Redis connection, every third of the TTL, all of this worker's claims
in one round trip. Redis times the expiry, so no two machines' clocks are compared.

When a renewal finds the claim held by someone else, ``on_lost(run_id)`` is called on the
engine's loop (the host makes that driver stop); when Redis cannot be reached, the thread logs
it and tries again at the next beat.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from flowloom.worker.claims import RENEW_MANY_SCRIPT, RunClaims

if TYPE_CHECKING:
    from redis import Redis

__all__ = ["ClaimHeartbeat"]

_log = logging.getLogger("flowloom.worker")


class ClaimHeartbeat:
    """Renews ``owner``'s claims on the runs ``held()`` names, from a daemon thread."""

    def __init__(
        self,
        redis_url: str,
        claims: RunClaims,
        owner: str,
        *,
        held: Callable[[], Iterable[str]],
        on_lost: Callable[[str], None],
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self._redis_url = redis_url
        self._claims = claims
        self._owner = owner
        self._held = held
        self._on_lost = on_lost
        self._loop = loop
        self.every_s = claims.ttl_ms / 3000
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="flowloom claim heartbeat")
        self._thread.daemon = True
        self.beats = 0
        """Completed rounds (tests watch it)."""

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _beat(self) -> None:
        from redis import Redis

        redis: Redis = Redis.from_url(
            self._redis_url, socket_timeout=self.every_s, socket_connect_timeout=self.every_s
        )
        renew = redis.register_script(RENEW_MANY_SCRIPT)
        try:
            while not self._stop.wait(self.every_s):
                try:
                    self.renew_once(redis, renew)
                except Exception as exc:
                    _log.warning("renewing this worker's run claims failed: %s", exc)
        finally:
            redis.close()

    def renew_once(self, redis: Redis, renew: Callable[..., object]) -> None:
        # tuple() of a dict's keys runs in C under the GIL: a consistent snapshot even while
        # the loop adds and removes drivers.
        run_ids = tuple(self._held())
        if run_ids:
            found = renew(
                keys=[self._claims.key(run_id) for run_id in run_ids],
                args=[self._owner, self._claims.ttl_ms],
            )
            assert isinstance(found, list)
            for run_id, kept in zip(run_ids, found, strict=True):
                if int(kept) != 1:
                    self._loop.call_soon_threadsafe(self._on_lost, run_id)
        self.beats += 1
