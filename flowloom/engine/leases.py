"""Lease renewal: a node that runs longer than half its lease keeps its claim alive.

A claim lasts ``lease_s``; past that, another engine may take the node back (after a crash that
is the point). A node that simply runs long must not lose it, so one keeper task per engine
looks at the running attempts every quarter lease and renews each whose lease is half gone,
with one UPDATE fenced by the attempt and the owner. When that UPDATE finds no row, somebody
else holds the node now: the attempt is abandoned (its result must never be written) and this
engine stops driving the run, which the new holder drives.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta
from typing import TYPE_CHECKING

from flowloom.engine.backoff import DEFAULT_CAP_S, Backoff
from flowloom.storage.enums import NodeStatus
from flowloom.storage.errors import is_unavailable

if TYPE_CHECKING:
    from flowloom.engine.seams import Executor

__all__ = ["LeaseKeeper"]

_log = logging.getLogger("flowloom.engine")


class LeaseKeeper:
    """The engine's one renewal task, started when the first node is dispatched."""

    def __init__(self, engine: Executor) -> None:
        self._engine = engine
        self._task: asyncio.Task[None] | None = None

    def ensure_running(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._keep(), name="flowloom lease keeper")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _keep(self) -> None:
        engine = self._engine
        every_s = engine.lease_s / 4
        # An outage must not end renewal, nor wait a whole round once the database is back:
        # the leases have a quarter of their time left by then. Retries back off (capped
        # well inside the lease) until renewal succeeds.
        backoff = Backoff(cap_s=min(DEFAULT_CAP_S, every_s))
        delay_s = every_s
        while True:
            await asyncio.sleep(delay_s)
            try:
                await self.renew_due()
            except Exception as exc:
                if not is_unavailable(exc):
                    _log.exception("renewing node leases failed")
                    delay_s = every_s
                    continue
                if backoff.failures == 0:
                    _log.warning("renewing node leases: the database is unavailable (%s)", exc)
                delay_s = min(every_s, backoff.next_delay())
                continue
            backoff.reset()
            delay_s = every_s

    async def renew_due(self) -> None:
        """Renew every running attempt of this engine whose lease is half gone."""
        engine = self._engine
        half = timedelta(seconds=engine.lease_s / 2)
        now = engine.clock.now()
        for driver in engine.drivers():
            state = driver.state
            if state is None:
                continue
            for node_id in driver.running_nodes():
                slot = state.slots[node_id]
                expires_at = slot.lease_expires_at
                if expires_at is None or expires_at - now > half:
                    continue
                attempt = slot.attempt
                until = engine.clock.now() + timedelta(seconds=engine.lease_s)
                renewed = await engine.store.renew_lease(
                    row_id=slot.row_id, attempt=attempt, owner=engine.owner_token, until=until
                )
                if renewed:
                    if slot.attempt == attempt and slot.status is NodeStatus.RUNNING:
                        slot.lease_expires_at = until
                elif slot.status is NodeStatus.RUNNING and slot.attempt == attempt:
                    driver.abandon(f"the lease of node {node_id!r} (attempt {attempt}) was lost")
                    break
