"""Workflow triggers: webhooks (a path and a token digest) and schedules (cron, time zone, next
fire time), owner-scoped, plus the instance-wide lookups that fire them.

``TriggerRepo`` is bound to one owner like every repository of a user's objects: another user's
trigger, or a trigger of a deleted workflow, behaves exactly like a missing one (NotFound). It
stores what it is given; checking cron expressions and making tokens is ``flowloom.triggers``'
work. The module functions are for the machinery that fires triggers and see every user's rows:
``find_webhook`` (the webhook's hot path: one indexed read) and ``due_schedules`` /
``claim_schedule`` (the schedule loop). They take a sync ``Connection``, for
``Database.run_read`` / ``run_write``.

A due schedule is claimed with one conditional UPDATE that moves ``next_fire_at`` on only if it
still holds the fire time the claimer read; of several processes that saw the same due
schedule exactly one touches the row, and only that one starts a run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any, Final, cast

from sqlalchemy import Connection, CursorResult, Update, bindparam, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from flowloom.exceptions import InputError, NotFound
from flowloom.ids import PREFIXES, new_id
from flowloom.storage.database import Database, sqlite_connection
from flowloom.storage.enums import TriggerType
from flowloom.storage.errors import translate_integrity_error
from flowloom.storage.pages import Page, check_cursor, check_limit, page_of
from flowloom.storage.raw_statements import PgStatement, SqliteStatement
from flowloom.storage.tables import User, Workflow, WorkflowRun, WorkflowTrigger
from flowloom.storage.tables.base import utcnow

__all__ = [
    "KEEP",
    "DueSchedule",
    "RunOutcome",
    "TriggerRepo",
    "WebhookGuard",
    "WebhookTarget",
    "claim_schedule",
    "claim_schedule_in",
    "claim_statement",
    "due_schedules",
    "find_webhook",
    "lookup_webhook",
    "run_outcome",
]

_ID_PREFIX = PREFIXES["workflow_triggers"]


class _Keep:
    def __repr__(self) -> str:
        return "KEEP"


KEEP: Final = _Keep()
"""Marks an ``update`` argument that was not given (for fields where None is a real value)."""


class TriggerRepo:
    """One user's triggers. Methods flush, never commit: the caller owns the transaction."""

    def __init__(self, session: AsyncSession, *, owner_id: str) -> None:
        self._session = session
        self._owner_id = owner_id

    async def create(
        self,
        *,
        workflow_id: str,
        kind: TriggerType | str,
        enabled: bool = True,
        webhook_path: str | None = None,
        webhook_secret_sha256: str | None = None,
        cron: str | None = None,
        timezone: str = "UTC",
        next_fire_at: datetime | None = None,
        config: dict[str, Any] | None = None,
    ) -> WorkflowTrigger:
        """A new trigger on the owner's live workflow.

        A webhook needs ``webhook_path`` and ``webhook_secret_sha256``; a schedule needs
        ``cron`` (and, to ever fire, ``next_fire_at``). NotFound for a workflow that is not the
        owner's or was deleted; Conflict for a path already taken; InputError for a missing
        field of the kind or an unknown kind.
        """
        kind = _kind(kind)
        if kind is TriggerType.WEBHOOK and (not webhook_path or not webhook_secret_sha256):
            raise InputError("a webhook needs a path and a token digest", field="webhook_path")
        if kind is TriggerType.SCHEDULE and not cron:
            raise InputError("a schedule needs a cron expression", field="cron")
        await self._live_workflow(workflow_id)
        trigger = WorkflowTrigger(
            id=new_id(_ID_PREFIX),
            workflow_id=workflow_id,
            user_id=self._owner_id,
            kind=kind.value,
            enabled=enabled,
            webhook_path=webhook_path if kind is TriggerType.WEBHOOK else None,
            webhook_secret_sha256=(webhook_secret_sha256 if kind is TriggerType.WEBHOOK else None),
            cron=cron if kind is TriggerType.SCHEDULE else None,
            timezone=timezone,
            next_fire_at=next_fire_at if kind is TriggerType.SCHEDULE else None,
            config=dict(config or {}),
        )
        self._session.add(trigger)
        await self._flush()
        return trigger

    async def get(self, *, trigger_id: str) -> WorkflowTrigger:
        """The owner's trigger on a live workflow, or NotFound."""
        trigger = await self._session.scalar(
            select(WorkflowTrigger)
            .join(Workflow, Workflow.id == WorkflowTrigger.workflow_id)
            .where(
                WorkflowTrigger.id == trigger_id,
                WorkflowTrigger.user_id == self._owner_id,
                Workflow.user_id == self._owner_id,
                Workflow.deleted_at.is_(None),
            )
        )
        if trigger is None:
            raise NotFound("trigger", trigger_id)
        return trigger

    async def list(
        self, *, workflow_id: str, cursor: str | None = None, limit: int = 10
    ) -> Page[WorkflowTrigger]:
        """The triggers of the owner's workflow, newest first; NotFound for the workflow."""
        check_limit(limit)
        await self._live_workflow(workflow_id)
        query = select(WorkflowTrigger).where(
            WorkflowTrigger.workflow_id == workflow_id,
            WorkflowTrigger.user_id == self._owner_id,
        )
        after = check_cursor(cursor, prefix=_ID_PREFIX)
        if after is not None:
            query = query.where(WorkflowTrigger.id < after)
        rows = await self._session.scalars(
            query.order_by(WorkflowTrigger.id.desc()).limit(limit + 1)
        )
        return page_of(rows.all(), limit=limit)

    async def update(
        self,
        *,
        trigger_id: str,
        enabled: bool | None = None,
        webhook_secret_sha256: str | None = None,
        cron: str | None = None,
        timezone: str | None = None,
        next_fire_at: datetime | _Keep | None = KEEP,
        config: dict[str, Any] | None = None,
    ) -> WorkflowTrigger:
        """Change the given fields (None or ``KEEP``: left as they are); the trigger after.

        Changing a schedule's ``cron`` or ``timezone`` on a webhook, or a webhook's digest on
        a schedule, is an InputError naming the field. NotFound as ``get``.
        """
        trigger = await self.get(trigger_id=trigger_id)
        is_webhook = trigger.kind == TriggerType.WEBHOOK
        if is_webhook and cron is not None:
            raise InputError("a webhook has no cron expression", field="cron")
        if is_webhook and timezone is not None:
            raise InputError("a webhook has no time zone", field="timezone")
        if not is_webhook and webhook_secret_sha256 is not None:
            raise InputError("a schedule has no token", field="token")
        if enabled is not None:
            trigger.enabled = enabled
        if webhook_secret_sha256 is not None:
            trigger.webhook_secret_sha256 = webhook_secret_sha256
        if cron is not None:
            trigger.cron = cron
        if timezone is not None:
            trigger.timezone = timezone
        if not isinstance(next_fire_at, _Keep) and not is_webhook:
            trigger.next_fire_at = next_fire_at
        if config is not None:
            trigger.config = dict(config)
        trigger.updated_at = utcnow()
        await self._flush()
        return trigger

    async def delete(self, *, trigger_id: str) -> WorkflowTrigger:
        """Delete the trigger for good (its runs stay); the row as it was. NotFound as ``get``."""
        trigger = await self.get(trigger_id=trigger_id)
        await self._session.delete(trigger)
        await self._flush()
        return trigger

    async def _live_workflow(self, workflow_id: str) -> None:
        found = await self._session.scalar(
            select(Workflow.id).where(
                Workflow.id == workflow_id,
                Workflow.user_id == self._owner_id,
                Workflow.deleted_at.is_(None),
            )
        )
        if found is None:
            raise NotFound("workflow", workflow_id)

    async def _flush(self) -> None:
        try:
            await self._session.flush()
        except IntegrityError as exc:
            raise translate_integrity_error(exc, what="trigger") from None


def _kind(value: TriggerType | str) -> TriggerType:
    try:
        return TriggerType(value)
    except ValueError:
        allowed = ", ".join(kind.value for kind in TriggerType)
        raise InputError(
            f"unknown trigger kind {value!r}; kinds are: {allowed}", field="kind"
        ) from None


# ---- firing: instance-wide, for the webhook route and the schedule loop


@dataclass(frozen=True, slots=True)
class WebhookTarget:
    """What the webhook route needs to know about the hook at a path, in one read."""

    trigger_id: str
    user_id: str
    workflow_id: str
    secret_sha256: str | None
    enabled: bool
    workflow_active: bool
    config: dict[str, Any]


_FIND_WEBHOOK = (
    select(
        WorkflowTrigger.id,
        WorkflowTrigger.user_id,
        WorkflowTrigger.workflow_id,
        WorkflowTrigger.webhook_secret_sha256,
        WorkflowTrigger.enabled,
        Workflow.active,
        WorkflowTrigger.config,
    )
    .join(Workflow, Workflow.id == WorkflowTrigger.workflow_id)
    .join(User, User.id == WorkflowTrigger.user_id)
    .where(
        WorkflowTrigger.webhook_path == bindparam("path"),
        WorkflowTrigger.kind == TriggerType.WEBHOOK.value,
        Workflow.deleted_at.is_(None),
        User.is_active.is_(True),
    )
)
"""Built once: a statement made afresh per call costs SQLAlchemy a new cache key each time."""

# Run on sqlite3 itself on SQLite: on the webhook's hot path SQLAlchemy's per-execution work
# (a cache key for a three-table join, result processing) costs ten times the read.
_FIND_WEBHOOK_RAW = SqliteStatement(_FIND_WEBHOOK)


_FIND_WEBHOOK_PG = PgStatement(_FIND_WEBHOOK)


def find_webhook(conn: Connection, *, path: str) -> WebhookTarget | None:
    """The webhook at ``path``, or None: no such path, its workflow deleted, or its owner's
    account disabled (all of which look alike to a caller). One read by the unique index."""
    if conn.dialect.name == "sqlite":
        row = _FIND_WEBHOOK_RAW.first(sqlite_connection(conn), path=path)
        if row is None:
            return None
        return _webhook_target(row, json.loads(row[6]) if row[6] else {})
    found = conn.execute(_FIND_WEBHOOK, {"path": path}).first()
    return None if found is None else _webhook_target(found, dict(found[6] or {}))


async def lookup_webhook(db: Database, *, path: str) -> WebhookTarget | None:
    """``find_webhook`` for the webhook route: on SQLite on the event loop's thread (one
    lookup by a unique index is cheaper than a hop to a reader); on PostgreSQL one prepared
    statement on asyncpg (SQLAlchemy's checkout and execution cost ten times the read)."""
    if db.is_sqlite:
        return await db.run_read(lambda conn: find_webhook(conn, path=path), inline=True)
    async with db.asyncpg_connection() as pg:
        row = await _FIND_WEBHOOK_PG.fetchrow(pg, path=path)
    return None if row is None else _webhook_target(row, dict(row[6] or {}))


class WebhookGuard:
    """The webhook at ``path`` is still ``seen`` (a ``StartGuard`` of the engine): the same
    hook, owner, workflow, token digest and config, switched on, its workflow active (and not
    deleted, its owner's account active: ``find_webhook``'s read). Read by the statement that
    writes the webhook's run on PostgreSQL, so that the hook's look-up and the run's start are
    one round trip; when it does not hold, its row is the hook as it is now (``target_of``)."""

    __slots__ = ("args",)

    def __init__(self, path: str, seen: WebhookTarget) -> None:
        self.args: tuple[Any, ...] = (
            *_FIND_WEBHOOK_PG.args({"path": path}),
            seen.trigger_id,
            seen.user_id,
            seen.workflow_id,
            seen.secret_sha256,
            json.dumps(seen.config),
        )

    def pg_sql(self, first: int) -> str:
        return _pg_webhook_guard_sql(first)

    @staticmethod
    def target_of(row: tuple[Any, ...]) -> WebhookTarget | None:
        """The webhook as the guard's row read it (None: no hook at its path)."""
        if not row or row[1] is None:
            return None
        config = row[7]
        if isinstance(config, str):
            config = json.loads(config)
        return _webhook_target(row[1:], dict(config or {}))


@cache
def _pg_webhook_guard_sql(first: int) -> str:
    # One row whether or not a hook is at the path; ``_FIND_WEBHOOK``'s columns after ``ok``,
    # its parameters first.
    n = first + len(_FIND_WEBHOOK_PG.args({"path": ""})) - 1  # the path, and its kind
    return (
        f"SELECT coalesce(f.id = ${n + 1}::varchar AND f.user_id = ${n + 2}::varchar"
        f" AND f.workflow_id = ${n + 3}::varchar AND f.webhook_secret_sha256 = ${n + 4}::varchar"
        f" AND f.enabled AND f.active AND f.config = ${n + 5}::jsonb, false) AS ok,"
        " f.id, f.user_id, f.workflow_id, f.webhook_secret_sha256, f.enabled, f.active, f.config"
        f" FROM (SELECT 1) AS one LEFT JOIN ({_FIND_WEBHOOK_PG.sql_from(first)}) AS f ON true"
    )


def _webhook_target(row: Any, config: Any) -> WebhookTarget:
    return WebhookTarget(
        trigger_id=row[0],
        user_id=row[1],
        workflow_id=row[2],
        secret_sha256=row[3],
        enabled=bool(row[4]),
        workflow_active=bool(row[5]),
        config=config if isinstance(config, dict) else {},
    )


@dataclass(frozen=True, slots=True)
class RunOutcome:
    """Where a run stands, as a webhook answers it."""

    status: str
    outputs: dict[str, Any] | None
    error: dict[str, Any] | None
    duration_ms: int | None


_RUN_OUTCOME = select(
    WorkflowRun.status, WorkflowRun.outputs, WorkflowRun.error, WorkflowRun.duration_ms
).where(WorkflowRun.id == bindparam("run_id"), WorkflowRun.user_id == bindparam("owner_id"))
_RUN_OUTCOME_RAW = SqliteStatement(_RUN_OUTCOME)


def run_outcome(conn: Connection, *, run_id: str, owner_id: str) -> RunOutcome | None:
    """The status, outputs, error and duration of the owner's run; None if there is none.

    For the webhook's answer: one read by primary key, on sqlite3 itself on SQLite."""
    if conn.dialect.name == "sqlite":
        row = _RUN_OUTCOME_RAW.first(sqlite_connection(conn), run_id=run_id, owner_id=owner_id)
        if row is None:
            return None
        outputs = json.loads(row[1]) if row[1] is not None else None
        error = json.loads(row[2]) if row[2] is not None else None
        return RunOutcome(str(row[0]), outputs, error, row[3])
    found = conn.execute(_RUN_OUTCOME, {"run_id": run_id, "owner_id": owner_id}).first()
    if found is None:
        return None
    return RunOutcome(str(found[0]), found[1], found[2], found[3])


@dataclass(frozen=True, slots=True)
class DueSchedule:
    """A schedule whose fire time ``due`` has come, as read by ``due_schedules``."""

    trigger_id: str
    user_id: str
    workflow_id: str
    cron: str
    timezone: str
    due: datetime
    config: dict[str, Any]


def due_schedules(conn: Connection, *, now: datetime, limit: int = 100) -> list[DueSchedule]:
    """Enabled schedules of active, live workflows of active users whose fire time is at or
    before ``now``, the longest overdue first, at most ``limit``."""
    rows = conn.execute(
        select(
            WorkflowTrigger.id,
            WorkflowTrigger.user_id,
            WorkflowTrigger.workflow_id,
            WorkflowTrigger.cron,
            WorkflowTrigger.timezone,
            WorkflowTrigger.next_fire_at,
            WorkflowTrigger.config,
        )
        .join(Workflow, Workflow.id == WorkflowTrigger.workflow_id)
        .join(User, User.id == WorkflowTrigger.user_id)
        .where(
            WorkflowTrigger.kind == TriggerType.SCHEDULE.value,
            WorkflowTrigger.enabled.is_(True),
            WorkflowTrigger.next_fire_at <= now,
            Workflow.active.is_(True),
            Workflow.deleted_at.is_(None),
            User.is_active.is_(True),
        )
        .order_by(WorkflowTrigger.next_fire_at, WorkflowTrigger.id)
        .limit(limit)
    )
    return [
        DueSchedule(
            trigger_id=row[0],
            user_id=row[1],
            workflow_id=row[2],
            cron=row[3] or "",
            timezone=row[4],
            due=row[5],
            config=dict(row[6] or {}),
        )
        for row in rows
    ]


def claim_statement(
    *, trigger_id: str, due: datetime, next_fire_at: datetime | None, fired_at: datetime | None
) -> Update:
    """The conditional UPDATE that claims fire time ``due`` of a schedule (see the module
    docstring); ``fired_at`` None moves the schedule on without recording a firing, and
    ``next_fire_at`` None parks it (it fires no more until its schedule is set again)."""
    values: dict[str, Any] = {"next_fire_at": next_fire_at, "updated_at": utcnow()}
    if fired_at is not None:
        values["last_fired_at"] = fired_at
    return (
        update(WorkflowTrigger)
        .where(
            WorkflowTrigger.id == trigger_id,
            WorkflowTrigger.next_fire_at == due,
            WorkflowTrigger.enabled.is_(True),
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )


def claim_schedule(
    conn: Connection,
    *,
    trigger_id: str,
    due: datetime,
    next_fire_at: datetime,
    fired_at: datetime | None,
) -> bool:
    """Claim fire time ``due``: True if this call moved the schedule on, False if another
    claimer (or a change to the trigger) got there first."""
    result = conn.execute(
        claim_statement(
            trigger_id=trigger_id, due=due, next_fire_at=next_fire_at, fired_at=fired_at
        )
    )
    return result.rowcount == 1


async def claim_schedule_in(
    session: AsyncSession,
    *,
    trigger_id: str,
    due: datetime,
    next_fire_at: datetime | None,
    fired_at: datetime | None,
) -> bool:
    """``claim_schedule`` inside a session's transaction, so that whatever else the caller
    writes there (an audit entry) commits with the claim or not at all."""
    result = await session.execute(
        claim_statement(
            trigger_id=trigger_id, due=due, next_fire_at=next_fire_at, fired_at=fired_at
        )
    )
    return cast(CursorResult[Any], result).rowcount == 1
