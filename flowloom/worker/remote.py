"""The engine of ``flowloom serve`` in distributed mode (``executor = "celery"``).

It writes runs exactly as the embedded engine does (``Engine.start_run``, every check and row
the same) and queues them for the workers instead of driving them. The rest of the engine's
public face works across processes:

- ``answer``: for a WAITING run no driver exists anywhere, so the answer is applied to the
  node's row in one transaction (the run row locked), as the driver would apply it, and the
  run is queued. Should a worker still drive the run (other branches running), that worker's
  watch sees the answered row and posts the answer to its driver.
- ``cancel``: sets the run's ``cancel_requested`` and queues it; the driving worker notices
  within a quarter second, a run nobody drives is cancelled by the worker its task reaches.
  Returns once the run ended, or after ``_CANCEL_WAIT_S`` (the run then cancels as soon as a
  worker takes it).
- ``wait`` and the event bus: events come from the workers over Redis (``relay.py``) onto
  this engine's ordinary bus; ``wait`` wakes on them and reads the run from the database.
- ``resume_unfinished`` only connects to Redis: the workers' sweep resumes runs.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from flowloom.engine.scheduler import Engine, RunResult
from flowloom.exceptions import Conflict, NotFound
from flowloom.nodes.registry import NodeRegistry
from flowloom.settings import Settings
from flowloom.storage.database import Database
from flowloom.storage.enums import FINISHED_RUN_STATUSES, NodeStatus, RunStatus
from flowloom.storage.tables import DebugSession, NodeExecution, WorkflowRun
from flowloom.storage.tables.base import utcnow
from flowloom.worker.claims import RunClaims
from flowloom.worker.relay import EventFeed
from flowloom.worker.runs import RunQueue

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["RemoteEngine"]

_POLL_S = 0.5
"""How often ``wait`` reads the run again when no event woke it."""
_CANCEL_WAIT_S = 30.0


class RemoteEngine(Engine):
    """An Engine that queues its runs for ``flowloom worker`` processes (see the module)."""

    def __init__(self, *args: Any, remote_settings: Settings, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._settings = remote_settings
        self._redis: Redis | None = None
        self._feed: EventFeed | None = None
        self._queue: RunQueue | None = None
        self._connecting = asyncio.Lock()

    @classmethod
    def from_settings(
        cls, db: Database, settings: Settings, registry: NodeRegistry | None = None, **given: Any
    ) -> Engine:
        given.setdefault("remote_settings", settings)
        return super().from_settings(db, settings, registry, **given)

    async def _connect(self) -> RunQueue:
        """Redis, the event feed (subscribed before anything is queued) and the queue."""
        async with self._connecting:
            if self._queue is not None:
                return self._queue
            from redis.asyncio import Redis

            from flowloom.worker.celery_app import make_celery, task_sender

            settings = self._settings
            self._redis = Redis.from_url(settings.resolved_events_url)
            self._feed = EventFeed(self._redis, settings.worker_queue, self.bus)
            await self._feed.start()
            claims = RunClaims(
                self._redis, namespace=settings.worker_queue, ttl_s=settings.worker_claim_ttl_s
            )
            # Celery (slow to import) is only loaded when the first run is queued.
            app: Any = None

            def send(run_id: str) -> None:
                nonlocal app
                if app is None:
                    app = make_celery(settings)
                task_sender(app, settings)(run_id)

            self._queue = RunQueue(
                claims, send, queued_for_s=max(60.0, 4 * settings.worker_sweep_interval_s)
            )
            return self._queue

    async def _drive_new_run(self, run_id: str) -> None:
        await (await self._connect()).put(run_id, always=True)

    async def resume_unfinished(self) -> list[str]:
        """Connect to Redis; the workers' sweep takes up unfinished runs, not the API."""
        self._check_open()
        await self._connect()
        return []

    async def answer(self, run_id: str, node_id: str, answer: Mapping[str, Any]) -> None:
        self._check_open()
        queue = await self._connect()
        now = utcnow()
        async with self.db.write() as session:
            run = await session.get(WorkflowRun, run_id, with_for_update=True)
            if run is None:
                raise NotFound("run", run_id)
            if run.status in FINISHED_RUN_STATUSES:
                raise Conflict(f"run {run_id!r} already finished as {run.status}")
            row = await session.scalar(
                select(NodeExecution)
                .where(NodeExecution.run_id == run_id, NodeExecution.node_id == node_id)
                .with_for_update()
            )
            if row is None:
                raise NotFound("node execution", f"{run_id}/{node_id}")
            if row.status != NodeStatus.WAITING:
                raise Conflict(f"node {node_id!r} is {row.status}, not WAITING")
            wait = dict(row.wait or {})
            if wait.get("kind") == "breakpoint":
                action = answer.get("action", "continue")
                debug = await session.scalar(
                    select(DebugSession).where(DebugSession.run_id == run_id)
                )
                if action not in ("step", "continue") or debug is None:
                    raise Conflict("a breakpoint is answered with action 'step' or 'continue'")
                debug.mode = action
                debug.paused_node_id = None
                wait["breakpoint_passed"] = True
            # What RunState.answer does to the slot, written to the row.
            wait["answer"] = dict(answer)
            wait["answered_at"] = now.isoformat()
            row.wait = wait
            row.status = NodeStatus.READY
            row.retry_at = None
        await queue.put(run_id, always=True)

    async def cancel(self, run_id: str) -> None:
        self._check_open()
        queue = await self._connect()
        async with self.db.write() as session:
            run = await session.get(WorkflowRun, run_id, with_for_update=True)
            if run is None:
                raise NotFound("run", run_id)
            if run.status == RunStatus.CANCELLED:
                return
            if run.status in FINISHED_RUN_STATUSES:
                raise Conflict(f"run {run_id!r} already finished as {run.status}")
            run.cancel_requested = True
        await queue.put(run_id, always=True)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._settle(run_id, finished_only=True), _CANCEL_WAIT_S)

    async def wait(self, run_id: str) -> RunResult:
        """Return once the run is finished, or WAITING with nothing for a worker to do."""
        await self._connect()
        return await self._settle(run_id, finished_only=False)

    async def _settle(self, run_id: str, *, finished_only: bool) -> RunResult:
        with self.bus.subscribe(run_id) as events:
            stream = aiter(events)
            while True:
                result, settled = await self._read(run_id, finished_only=finished_only)
                if settled:
                    return result
                with contextlib.suppress(TimeoutError, StopAsyncIteration):
                    await asyncio.wait_for(anext(stream), _POLL_S)

    async def _read(self, run_id: str, *, finished_only: bool) -> tuple[RunResult, bool]:
        async with self.db.read() as session:
            run = await session.get(WorkflowRun, run_id)
            if run is None:
                raise NotFound("run", run_id)
            result = RunResult(
                run_id=run.id,
                status=RunStatus(run.status),
                outputs=run.outputs,
                error=run.error,
                duration_ms=run.duration_ms,
            )
            if result.status in FINISHED_RUN_STATUSES:
                return result, True
            if finished_only or result.status is not RunStatus.WAITING or run.cancel_requested:
                return result, False
            ready = await session.scalar(
                select(NodeExecution.id)
                .where(NodeExecution.run_id == run_id, NodeExecution.status == NodeStatus.READY)
                .limit(1)
            )
            return result, ready is None

    async def close(self) -> None:
        if self._feed is not None:
            await self._feed.stop()
        if self._redis is not None:
            await self._redis.aclose()
        await super().close()
