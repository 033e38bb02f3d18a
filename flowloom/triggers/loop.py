"""The schedule loop: every ``interval_s``, fire the schedules whose time has come.

Each due schedule is claimed with a conditional UPDATE (``claim_schedule``: next_fire_at moves
on only if it still holds the fire time this loop read), and a run starts only when the claim
touched the row. So a fire time fires once however many server processes share the database,
and a process that restarts never fires one again.

A fire time is due once it has passed; if it passed by more than ``grace_s`` (the server was
down, or stalled), it is not fired late: it is *missed*. The schedule moves on to its next
future time, and the miss is reported, once, as a warning in the log and an audit entry
``schedule.missed`` (on the trigger, for its owner) with how many fire times passed unseen.
Nothing is replayed by surprise. Within the grace period a late schedule fires once, not once
per fire time it slept through.

What "once" means: the claim commits before the run starts, so a process that dies between the
two loses that firing (at most once); the run's idempotency key names the trigger and the fire
time, so nothing can start it twice. A database outage is not a death: the loop backs off while
the database is away, and a claimed firing whose run cannot start for the outage is started once
the database is back (within the grace period).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final, Literal

from sqlalchemy import Connection

from flowloom.engine import Engine
from flowloom.engine.backoff import Backoff, patiently
from flowloom.exceptions import FlowloomError, InputError
from flowloom.storage.database import Database
from flowloom.storage.enums import TriggerKind
from flowloom.storage.errors import is_unavailable
from flowloom.storage.repos.audit import AuditRepo
from flowloom.storage.repos.triggers import (
    DueSchedule,
    claim_schedule,
    claim_schedule_in,
    due_schedules,
)
from flowloom.storage.tables.base import utcnow
from flowloom.triggers.schedule import Schedule

__all__ = ["Firing", "ScheduleLoop", "TickReport"]

_log = logging.getLogger("flowloom.triggers")

_OUTAGE_CAP_S: Final = 5.0
"""The longest pause between passes while the database is unavailable."""

Outcome = Literal["fired", "missed", "lost", "failed"]


@dataclass(frozen=True, slots=True)
class Firing:
    """What one claim attempt came to: ``fired`` (``run_id`` started), ``missed`` (reported
    and moved on), ``lost`` (another process claimed it first) or ``failed`` (claimed, but the
    run could not start: the reason is logged and audited)."""

    trigger_id: str
    due: datetime
    outcome: Outcome
    run_id: str | None = None
    missed: int = 0


@dataclass(slots=True)
class TickReport:
    """Every firing of one tick, in the order the schedules were due."""

    firings: list[Firing] = field(default_factory=list)

    def runs(self) -> list[str]:
        return [f.run_id for f in self.firings if f.run_id is not None]

    def count(self, outcome: Outcome) -> int:
        return sum(1 for f in self.firings if f.outcome == outcome)


class ScheduleLoop:
    """Fires due schedules through ``engine``; ``start()`` it, ``await stop()`` it.

    ``tick(now)`` is one pass, usable on its own (tests drive time with it). ``batch`` bounds
    the schedules one pass takes; the next pass takes the rest.
    """

    def __init__(
        self,
        db: Database,
        engine: Engine,
        *,
        interval_s: float = 1.0,
        grace_s: float = 60.0,
        batch: int = 100,
    ) -> None:
        if interval_s <= 0 or grace_s < 0 or batch < 1:
            raise ValueError("interval_s must be positive, grace_s not negative, batch >= 1")
        self.db = db
        self.engine = engine
        self.interval_s = interval_s
        self.grace = timedelta(seconds=grace_s)
        self.batch = batch
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # ---- one pass

    async def tick(self, now: datetime | None = None) -> TickReport:
        """Claim and fire (or report as missed) every schedule due at ``now``."""
        now = now or utcnow()
        report = TickReport()
        for due in await self.due(now):
            report.firings.append(await self.fire(due, now))
        return report

    async def due(self, now: datetime) -> list[DueSchedule]:
        """The schedules due at ``now``, longest overdue first (nothing is claimed yet)."""

        def read(conn: Connection) -> list[DueSchedule]:
            return due_schedules(conn, now=now, limit=self.batch)

        return await self.db.run_read(read)

    async def fire(self, due: DueSchedule, now: datetime) -> Firing:
        """Claim ``due`` and start its run, or report it missed; see the module docstring."""
        try:
            schedule = Schedule(due.cron, due.timezone)
            next_at = schedule.next_after(now)
        except (InputError, ValueError) as exc:
            # The stored schedule no longer parses (a time zone gone from the system's
            # database): stop it rather than trip over it every pass.
            return await self._park(due, reason=str(exc))
        if now - due.due > self.grace:
            return await self._report_missed(due, schedule, now, next_at)

        def claim(conn: Connection) -> bool:
            return claim_schedule(
                conn, trigger_id=due.trigger_id, due=due.due, next_fire_at=next_at, fired_at=now
            )

        if not await self.db.run_write(claim, inline=True):
            return Firing(due.trigger_id, due.due, "lost")
        inputs = due.config.get("inputs")

        async def start() -> str:
            return await self.engine.start_run(
                owner_id=due.user_id,
                workflow_id=due.workflow_id,
                inputs=inputs if isinstance(inputs, dict) else {},
                trigger_kind=TriggerKind.SCHEDULE,
                trigger_data={"trigger_id": due.trigger_id, "scheduled_for": due.due.isoformat()},
                idempotency_key=f"schedule:{due.trigger_id}:{due.due.isoformat()}",
            )

        try:
            # Claimed, so this process alone starts it: an outage between the claim and the
            # run is waited out (within the grace period) rather than losing the firing. The
            # idempotency key makes a start that did commit before the error count once.
            async with asyncio.timeout(max(self.interval_s, self.grace.total_seconds())):
                run_id = await patiently(start, what=f"schedule {due.trigger_id}: starting its run")
        except Exception as exc:
            if not isinstance(exc, FlowloomError):
                _log.exception("schedule %s: starting its run failed", due.trigger_id)
            await self._audit_failure(due, reason=str(exc) or type(exc).__name__)
            return Firing(due.trigger_id, due.due, "failed")
        return Firing(due.trigger_id, due.due, "fired", run_id=run_id)

    async def _report_missed(
        self, due: DueSchedule, schedule: Schedule, now: datetime, next_at: datetime
    ) -> Firing:
        missed = schedule.missed_between(due.due, now)
        async with self.db.write() as session:
            claimed = await claim_schedule_in(
                session, trigger_id=due.trigger_id, due=due.due, next_fire_at=next_at, fired_at=None
            )
            if not claimed:
                return Firing(due.trigger_id, due.due, "lost")
            await AuditRepo(session).record(
                user_id=due.user_id,
                action="schedule.missed",
                object_type="workflow_trigger",
                object_id=due.trigger_id,
                details={
                    "workflow_id": due.workflow_id,
                    "missed": missed.count,
                    "count_is_lower_bound": missed.capped,
                    "first_missed_at": missed.first.isoformat(),
                    "last_missed_at": missed.last.isoformat(),
                    "next_fire_at": next_at.isoformat(),
                },
            )
        _log.warning(
            "schedule %s (workflow %s) missed %s%d fire time(s) from %s to %s while the server "
            "was not running them; not replayed, next at %s",
            due.trigger_id,
            due.workflow_id,
            "at least " if missed.capped else "",
            missed.count,
            missed.first.isoformat(),
            missed.last.isoformat(),
            next_at.isoformat(),
        )
        return Firing(due.trigger_id, due.due, "missed", missed=missed.count)

    async def _park(self, due: DueSchedule, *, reason: str) -> Firing:
        async with self.db.write() as session:
            claimed = await claim_schedule_in(
                session, trigger_id=due.trigger_id, due=due.due, next_fire_at=None, fired_at=None
            )
            if not claimed:
                return Firing(due.trigger_id, due.due, "lost")
        _log.error("schedule %s cannot be computed and is parked: %s", due.trigger_id, reason)
        await self._audit_failure(due, reason=f"the schedule cannot be computed: {reason}")
        return Firing(due.trigger_id, due.due, "failed")

    async def _audit_failure(self, due: DueSchedule, *, reason: str) -> None:
        _log.warning("schedule %s: run not started: %s", due.trigger_id, reason)
        try:
            async with self.db.write() as session:
                await AuditRepo(session).record(
                    user_id=due.user_id,
                    action="schedule.failed",
                    object_type="workflow_trigger",
                    object_id=due.trigger_id,
                    details={
                        "workflow_id": due.workflow_id,
                        "scheduled_for": due.due.isoformat(),
                        "reason": reason[:500],
                    },
                )
        except FlowloomError:
            _log.exception("schedule %s: the failure could not be audited", due.trigger_id)

    # ---- the loop

    def start(self) -> None:
        """Run ``tick`` now and then every ``interval_s`` in a task of the running loop."""
        if self._task is not None:
            raise RuntimeError("the schedule loop is already running")
        self._stopping.clear()
        self._task = asyncio.create_task(self._run(), name="flowloom-schedules")

    async def stop(self, *, timeout_s: float = 10.0) -> None:
        """Stop after the pass in progress (cut short after ``timeout_s``); idempotent."""
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping.set()
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout_s)
        except TimeoutError:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        # A pass that fails never ends the loop. While the database is away, passes back off
        # (from the interval up to a few times it, with jitter, so that many servers do not
        # retry in step) and say so in one line; the first pass after it returns fires what
        # came due meanwhile (within the grace period).
        backoff = Backoff(base_s=self.interval_s, cap_s=max(self.interval_s, _OUTAGE_CAP_S))
        while not self._stopping.is_set():
            pause_s = self.interval_s
            try:
                await self.tick()
            except Exception as exc:
                if not is_unavailable(exc):
                    _log.exception(
                        "the schedule pass failed; trying again in %.1f s", self.interval_s
                    )
                else:
                    if backoff.failures == 0:
                        _log.warning("the schedule pass: the database is unavailable (%s)", exc)
                    pause_s = backoff.next_delay()
            else:
                if backoff.failures:
                    _log.info("the schedule pass: the database is back")
                    backoff.reset()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), pause_s)
