"""The engine of ``flowloom serve`` in distributed mode (``executor = "celery"``).

It writes runs exactly as the embedded engine does (``Engine.start_run``, every check and row
the same) and queues them for the workers instead of driving them. The rest of the engine's
public face works across processes:

- ``answer``: for a WAITING run no driver exists anywhere, so the answer is applied to the
  node's row in one transaction (the run row locked), as the driver would apply it, and the
  run is queued. Should a worker still drive the run (other branches running), that worker's
  watch sees the answered row and posts the answer to its driver.
- ``cancel``: sets the run's ``cancel_requested`` and queues it; the driving worker notices
  within half a second, a run nobody drives is cancelled by the worker its task reaches.
  Returns once the run ended, or after ``_CANCEL_WAIT_S`` (the run then cancels as soon as a
  worker takes it).
- ``wait`` and the event bus: events come from the workers over Redis (``relay.py``) onto
  this engine's bus (a ``FeedBus``: the events of a run are decoded only when somebody here
  follows it; the metrics read every run's digest); ``wait`` wakes on the digests that say
  a run may have settled (``EventFeed.settling``) and reads the run from the database.
  ``settle`` (the runs API's wait, which reads the run itself next) ends on the digest that
  the run finished, with no read.
- ``resume_unfinished`` only connects (Redis, and the Celery app, built once here at start-up,
  never lazily from several threads at once): the workers' sweep resumes runs.

A run is committed before it is queued, so queueing can fail after the run exists (Redis or
the broker down). Such a run is never an error for the caller, who gets the run as usual: it
goes to this engine's outbox, which re-sends it with backoff until the broker takes it, and no
"queued" mark is left behind, so a worker's sweep also finds it (a PENDING run with no driver)
within its next interval. Either way the run starts as soon as the broker answers again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from flowloom.engine.events import DROPPED, RUN_FINISHED_EVENTS
from flowloom.engine.ports import SharedRunStore, StoredRun
from flowloom.engine.scheduler import Engine, RunResult
from flowloom.engine.unstorable import check_storable
from flowloom.nodes.registry import NodeRegistry
from flowloom.settings import Settings
from flowloom.storage.database import Database
from flowloom.worker.claims import RunClaims
from flowloom.worker.inbox import RunInbox, inbox_used
from flowloom.worker.redis_push import TaskPush, task_push
from flowloom.worker.relay import EventFeed, FeedBus, Settling
from flowloom.worker.runs import RunQueue, queued_for_s, shared_store

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["RemoteEngine"]

_log = logging.getLogger("flowloom.worker")

_POLL_S = 5.0
"""How often ``wait`` reads the run again when no event woke it: a safety net only, as the
feed reports lost events (``events.dropped``) and a run's end always comes as an event."""
_POLL_BLIND_S = 0.5
"""How often it reads the run while no event can come (the feed has no subscription)."""
_CANCEL_WAIT_S = 30.0
_OUTBOX_FIRST_S = 0.2
_OUTBOX_MAX_S = 5.0
"""The outbox re-sends after 0.2 s, doubling up to 5 s while the broker stays away."""
_FRESH_MAX = 10_000
_BATCH_MAX = 8
"""The most runs one task carries: more would pile a busy API's runs onto one worker slot
while other slots wait for work."""
_SEND_SPACING_S = 0.020
"""A task is sent no sooner than this after the one before it: runs made meanwhile wait and go
together. A worker pays Celery and a task's own round trips per task, whatever it carries, so
while runs come in faster than one per spacing (a busy API), fewer and fuller tasks cost the
workers less (fuller tasks also commit less: PostgreSQL transactions per run fall too); a run
made after a quiet spell is sent at once, and a busy one waits at most this long. Celery's
send, slow beside a busy loop, used to batch about 0.4-0.5 tasks a run by itself in
benchmarks.distributed; pushing from the loop sent 0.65 with no spacing, 0.63-0.72 with 3 ms,
0.48-0.55 with 10 ms, 0.31-0.34 with 20 ms. A full task (``_BATCH_MAX`` runs) goes at once:
the spacing never caps how many runs a second an API can send."""


class RemoteEngine(Engine):
    """An Engine that queues its runs for ``flowloom worker`` processes (see the module)."""

    @property
    def shared(self) -> SharedRunStore:
        """The run store the API shares with the workers."""
        return shared_store(self.store)

    def __init__(self, *args: Any, remote_settings: Settings, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._settings = remote_settings
        self._redis: Redis | None = None
        self._feed: EventFeed | None = None
        self._push: TaskPush | None = None
        self._queue: RunQueue | None = None
        self._connecting = asyncio.Lock()
        self._outbox: dict[str, None] = {}
        """Runs committed but not yet queued, in the order they were made."""
        self._outbox_task: asyncio.Task[None] | None = None
        self._pending: list[tuple[str, asyncio.Future[None]]] = []
        """Runs to send in the next task, each with the future its dispatcher awaits."""
        self._sender: asyncio.Task[None] | None = None
        self._sent_at = float("-inf")
        """When (loop time) the last task was sent (``_SEND_SPACING_S``)."""
        self._spacing: asyncio.Future[None] | None = None
        """Done when the sender's wait for the spacing is over (a full task ends it early)."""
        self._fresh: dict[str, int] = {}
        """Runs this process made, each with the feed's generation when it sent it: ``wait``
        knows such a run has not settled while the feed saw no event saying so."""

    @classmethod
    def from_settings(
        cls, db: Database, settings: Settings, registry: NodeRegistry | None = None, **given: Any
    ) -> Engine:
        given.setdefault("remote_settings", settings)
        # The metrics read the digests of the runs' events; events are decoded only for the
        # runs somebody here follows (``relay.py``).
        given.setdefault("bus", FeedBus())
        return super().from_settings(db, settings, registry, **given)

    async def _connect(self) -> RunQueue:
        """Redis, the event feed (subscribed before anything is queued), the sender of tasks
        and the queue; connected once, again only after a failure."""
        async with self._connecting:
            if self._queue is not None:
                return self._queue
            from redis.asyncio import Redis

            settings = self._settings
            redis = Redis.from_url(settings.resolved_events_url)
            feed = EventFeed(redis, settings.worker_queue, self.bus)
            try:
                await feed.start()
            except BaseException:
                await redis.aclose()
                raise
            self._redis, self._feed = redis, feed
            claims = RunClaims(
                redis, namespace=settings.worker_queue, ttl_s=settings.worker_claim_ttl_s
            )
            # Runs go onto the inbox when the broker is this Redis (``inbox``); else as tasks,
            # pushed from this loop onto a Redis broker of its own (``redis_push``) or sent
            # by Celery, whose app is built here, once, under the lock: importing Celery from
            # several threads at once fails ("cannot import name 'Celery'") while the first
            # import is half done.
            inbox = RunInbox(claims) if inbox_used(settings) else None
            self._push = task_push(settings)  # None with the inbox
            send = None
            if inbox is None and self._push is None:
                from flowloom.worker.celery_app import make_celery, task_sender

                send = task_sender(await asyncio.to_thread(make_celery, settings), settings)
            self._queue = RunQueue(
                claims, send, queued_for_s=queued_for_s(settings), push=self._push, inbox=inbox
            )
            return self._queue

    async def _dispatch(self, run_id: str) -> None:
        """Queue a task for the run, which is committed already; never raises: a run the
        broker cannot take now goes to the outbox (see the module). Returns once the run was
        sent (or went to the outbox). Runs dispatched while a send is on its way, or less
        than ``_SEND_SPACING_S`` after it, wait for the next task and go together in it
        (``_BATCH_MAX`` at most): a busy API sends one message for several runs, and a run
        made after a quiet spell goes at once."""
        if self._outbox:
            self._to_outbox([run_id])
            return
        sent: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((run_id, sent))
        if len(self._pending) >= _BATCH_MAX and self._spacing is not None:
            _settle(self._spacing)  # a full task waits for nothing
        if self._sender is None or self._sender.done():
            self._sender = asyncio.create_task(self._send_pending(), name="flowloom dispatch")
        await asyncio.shield(sent)

    async def _send_pending(self) -> None:
        loop = asyncio.get_running_loop()
        while self._pending:
            wait_s = self._sent_at + _SEND_SPACING_S - loop.time()
            if wait_s > 0 and len(self._pending) < _BATCH_MAX:
                # Until the spacing is over or the task is full, whichever comes first.
                spacing = self._spacing = loop.create_future()
                timer = loop.call_later(wait_s, _settle, spacing)
                try:
                    await spacing
                finally:
                    timer.cancel()
                    self._spacing = None
            self._sent_at = loop.time()
            batch, self._pending = self._pending[:_BATCH_MAX], self._pending[_BATCH_MAX:]
            run_ids = [run_id for run_id, _ in batch]
            try:
                await (await self._connect()).put_many(run_ids, always=True)
            except Exception as exc:  # Redis or the broker: the failure is theirs, not the runs'
                _log.warning("%d run(s) saved but not queued yet (%s); retrying", len(batch), exc)
                self._to_outbox(run_ids)
            finally:
                for _, sent in batch:
                    if not sent.done():
                        sent.set_result(None)

    def _to_outbox(self, run_ids: list[str]) -> None:
        self._outbox.update(dict.fromkeys(run_ids))
        if self._outbox_task is None or self._outbox_task.done():
            self._outbox_task = asyncio.create_task(self._drain_outbox())

    async def _drain_outbox(self) -> None:
        delay_s = _OUTBOX_FIRST_S
        while self._outbox:
            await asyncio.sleep(delay_s)
            try:
                queue = await self._connect()
                while self._outbox:
                    run_ids = list(self._outbox)[:_BATCH_MAX]
                    await queue.put_many(run_ids, always=True)
                    for run_id in run_ids:
                        del self._outbox[run_id]
                        _log.info("run %s queued from the outbox", run_id)
            except Exception as exc:
                delay_s = min(_OUTBOX_MAX_S, delay_s * 2)
                _log.warning("%d run(s) still wait for the broker: %s", len(self._outbox), exc)

    async def dispatch_new_run(self, run_id: str, stored: StoredRun | None = None) -> None:
        # A worker drives it, from its rows (``stored`` is this process's copy only).
        if self._feed is not None and self._feed.live:
            # Noted before it is sent: from here on, its end or wait comes through the feed.
            self._fresh[run_id] = self._feed.generation
            if len(self._fresh) > _FRESH_MAX:
                del self._fresh[next(iter(self._fresh))]
        await self._dispatch(run_id)

    async def resume_unfinished(self) -> list[str]:
        """Connect to Redis and build the Celery app; the workers' sweep takes up unfinished
        runs, not the API. A broker that is down now is not fatal: runs wait in the outbox."""
        self._check_open()
        try:
            await self._connect()
        except Exception as exc:
            _log.warning("Redis or the broker is unreachable at start (%s); runs will wait", exc)
        return []

    async def answer(self, run_id: str, node_id: str, answer: Mapping[str, Any]) -> None:
        self._check_open()
        check_storable(dict(answer), "answer")
        await self.shared.answer_waiting(run_id, node_id, answer, now=self.clock.now())
        await self._dispatch(run_id)

    async def cancel(self, run_id: str) -> None:
        self._check_open()
        if not await self.shared.request_cancel(run_id):
            return
        await self._dispatch(run_id)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._settle(run_id, finished_only=True), _CANCEL_WAIT_S)

    async def wait(self, run_id: str) -> RunResult:
        """Return once the run is finished, or WAITING with nothing for a worker to do.

        Without Redis no event wakes it, but it still reads the run every ``_POLL_BLIND_S``."""
        with contextlib.suppress(Exception):
            await self._connect()
        result = await self._settle(run_id, finished_only=False)
        assert result is not None  # read, as ``outcome`` asks
        return result

    async def settle(self, run_id: str) -> None:
        """``wait`` without the outcome: the event that the run finished is enough (it is
        published after the commit that finished the run, and a finished run never
        changes), so no read of the run follows it. A WAITING run is still read: only its
        rows say whether a worker has work left in it."""
        with contextlib.suppress(Exception):
            await self._connect()
        await self._settle(run_id, finished_only=False, outcome=False)

    async def _settle(
        self, run_id: str, *, finished_only: bool, outcome: bool = True
    ) -> RunResult | None:
        """Read the run again when the feed says it may have settled (or that events were
        lost), or every ``_POLL_S``; the other events, most of a run's, need no read (nor
        decoding: the feed wakes a waiter from the digests). A run this process just made is
        not read first while the feed says it has not settled. Without ``outcome``, an event
        that the run finished ends the wait with no read (None), whether it comes during the
        wait or came before it."""
        loop = asyncio.get_running_loop()
        wakers = _FINISHED_WAKERS if finished_only else _SETTLED_WAKERS
        generation = self._fresh.pop(run_id, None)
        feed = self._feed
        if not outcome and feed is not None and feed.saw_finish(run_id):
            # It finished before this wait began (a short run, sent in a batch): the event
            # that says so is as good as one that comes later.
            return None
        with contextlib.ExitStack() as stack:
            settling: Settling | None = None
            if feed is not None:
                settling = stack.enter_context(feed.settling(run_id))
            read = not (
                generation is not None and feed is not None and feed.quiet_since(run_id, generation)
            )
            while True:
                if read:
                    result, settled = await self.shared.settled(run_id, finished_only=finished_only)
                    if settled:
                        return result
                read = True
                if settling is None and self._feed is not None:
                    # Connected since: from here on the feed wakes this wait.
                    settling = stack.enter_context(self._feed.settling(run_id))
                    continue
                live = self._feed is not None and self._feed.live
                deadline = loop.time() + (_POLL_S if live else _POLL_BLIND_S)
                woken = None
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout_at(deadline):
                        if settling is None:
                            await asyncio.sleep(_POLL_BLIND_S)
                        else:
                            while (woken := await settling.next()) not in wakers:
                                pass
                if not outcome and woken in RUN_FINISHED_EVENTS:
                    return None

    async def close(self) -> None:
        if self._sender is not None:
            with contextlib.suppress(Exception):
                await self._sender
        if self._outbox_task is not None:
            self._outbox_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._outbox_task
        if self._outbox:
            _log.warning("%d run(s) were never queued; a worker's sweep will", len(self._outbox))
        if self._feed is not None:
            await self._feed.stop()
        if self._push is not None:
            await self._push.aclose()
        if self._redis is not None:
            await self._redis.aclose()
        await super().close()


_FINISHED_WAKERS = frozenset({*RUN_FINISHED_EVENTS, DROPPED})
"""The events after which a waiter for the end reads the run again (``events.dropped``: some
were lost, here or on the way from Redis)."""
_SETTLED_WAKERS = frozenset({*_FINISHED_WAKERS, "run.waiting"})


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
