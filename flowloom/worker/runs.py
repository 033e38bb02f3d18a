"""Queueing runs for the workers, and the shared store both sides of distributed mode use.

Which runs need a driver is the shared run store's question (``SharedRunStore``); whether
somebody already drives one is the claims' (``claims.py``); this module queues runs, onto the
runs' inbox (``inbox.py``) or as Celery tasks.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import cast

from flowloom.engine.ports import RunStore, SharedRunStore
from flowloom.exceptions import ConfigurationError
from flowloom.settings import Settings
from flowloom.worker.claims import RunClaims
from flowloom.worker.inbox import RunInbox
from flowloom.worker.redis_push import TaskPush

__all__ = ["RunQueue", "queued_for_s", "shared_store"]


_SHARED_KINDS: set[type] = set()
"""Store classes found to be shared (a check against a runtime protocol looks up each of its
members: too slow for a question asked several times per run)."""


def shared_store(store: RunStore) -> SharedRunStore:
    """``store`` as one that several processes share; ConfigurationError if it is not (an
    in-memory store cannot carry runs between processes)."""
    if type(store) in _SHARED_KINDS:
        return cast(SharedRunStore, store)
    if not isinstance(store, SharedRunStore):
        raise ConfigurationError(
            f"distributed mode needs a run store the processes share, not {type(store).__name__}"
        )
    _SHARED_KINDS.add(type(store))
    return store


def queued_for_s(settings: Settings) -> float:
    """How long a "queued" mark keeps the sweep from queueing a run again: two claim TTLs and
    four sweeps (5 s by default). A task can vanish with a worker killed after the broker
    handed it over but before it claimed the run (Redis keeps it unacknowledged for the
    visibility timeout), and only the mark's expiry lets the sweep queue that run again: it
    bounds recovery in that case (it was 60 s). The price: a run waiting in the broker longer
    than this is queued a second time, and the later of the two deliveries finds it driven or
    finished (a stale delivery, acknowledged at once)."""
    return 2 * settings.worker_claim_ttl_s + 4 * settings.worker_sweep_interval_s


class RunQueue:
    """Queues runs for the workers: onto the runs' inbox (``inbox.py``) when given, else as
    ``drive_runs`` tasks, pushed onto a Redis broker from the loop (``push``) or sent by
    Celery (``send``, blocking: one task for a list of runs)."""

    def __init__(
        self,
        claims: RunClaims,
        send: Callable[[list[str]], None] | None,
        *,
        queued_for_s: float,
        push: TaskPush | None = None,
        inbox: RunInbox | None = None,
    ) -> None:
        if send is None and push is None and inbox is None:
            raise ConfigurationError("a RunQueue needs an inbox, a Celery sender or a Redis push")
        self.claims = claims
        self._send = send
        self._push = push
        self.inbox = inbox
        self.queued_for_s = queued_for_s
        """How long a queued run is left to its task before a sweep may queue it again."""

    async def put(self, run_id: str, *, always: bool = False) -> bool:
        """Queue the run unless it is queued already or a worker drives it (``always``:
        queue anyway, e.g. for an answer or a cancellation); whether it was queued."""
        return bool(await self.put_many([run_id], always=always))

    async def put_many(self, run_ids: list[str], *, always: bool = False) -> list[str]:
        """``put`` for several runs at once: one round trip onto the inbox, or ONE task (one
        message for the broker to deliver and the worker to acknowledge); the runs queued."""
        if not run_ids:
            return []
        inbox = self.inbox
        if inbox is not None:
            # Marks and pushes in one script: nothing is marked that is not pushed.
            pushed = await inbox.put(run_ids, for_s=self.queued_for_s, always=always)
            return [run_id for run_id, done in zip(run_ids, pushed, strict=True) if done]
        marked = await self.claims.mark_queued(run_ids, for_s=self.queued_for_s)
        chosen = [run_id for run_id, fresh in zip(run_ids, marked, strict=True) if fresh or always]
        if not chosen:
            return []
        # Celery's send is blocking network I/O (kombu): it runs beside the event loop.
        if self._push is not None:
            send = self._push.send(chosen)
        else:
            assert self._send is not None  # __init__ saw to it
            send = asyncio.to_thread(self._send, chosen)
        try:
            await send
        except BaseException:
            # No task is queued after all (as far as anyone can tell): a mark left behind
            # would hide the runs from the sweep for ``queued_for_s``.
            with contextlib.suppress(Exception):
                await self.claims.unmark_queued(chosen)
            raise
        return chosen
