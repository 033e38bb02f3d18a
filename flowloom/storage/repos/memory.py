"""Workflow memory: keyed JSON values a workflow keeps between runs, optionally expiring.

Entries live under (workflow, scope, key); ``scope`` is ``""`` for the whole workflow or a thread
id for one conversation. An expired entry behaves exactly like a missing one at once, whether or
not ``purge_expired_memory`` has removed its row yet.
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Delete, Select, delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from flowloom.exceptions import InputError, NotFound
from flowloom.ids import PREFIXES, new_id
from flowloom.storage.enums import MemoryValueType
from flowloom.storage.tables import Workflow, WorkflowMemory
from flowloom.storage.tables.base import ID_LENGTH, utcnow
from flowloom.storage.upsert import insert_for

__all__ = [
    "MemoryRepo",
    "WorkflowMemoryCount",
    "memory_overview",
    "purge_expired_memory",
    "value_type_of",
]

_KEY_MAX_LENGTH = 200


def value_type_of(value: Any) -> MemoryValueType:
    """The JSON type of ``value``; InputError if it cannot be stored as JSON at all."""
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InputError(f"value cannot be stored as JSON: {exc}", field="value") from None
    # bool before int: in Python, True is an int too.
    if value is None:
        return MemoryValueType.NULL
    if isinstance(value, bool):
        return MemoryValueType.BOOLEAN
    if isinstance(value, int | float):
        return MemoryValueType.NUMBER
    if isinstance(value, str):
        return MemoryValueType.STRING
    if isinstance(value, dict):
        return MemoryValueType.OBJECT
    return MemoryValueType.ARRAY


def _check_place(key: str, scope: str) -> None:
    if not key or len(key) > _KEY_MAX_LENGTH:
        raise InputError(f"key must be 1-{_KEY_MAX_LENGTH} characters", field="key")
    if len(scope) > ID_LENGTH:
        raise InputError(f"scope must be at most {ID_LENGTH} characters", field="scope")


class MemoryRepo:
    """The memory of one workflow of one owner.

    Every method first checks that the workflow is the owner's and not deleted (once per repo),
    so another user's workflow id, or a deleted one, is NotFound and nothing is read or written.
    ``clock`` gives the current time; tests pass their own.
    """

    def __init__(
        self,
        session: AsyncSession,
        *,
        owner_id: str,
        workflow_id: str,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._session = session
        self._owner_id = owner_id
        self._workflow_id = workflow_id
        self._clock = clock
        self._checked = False

    async def set(
        self, *, key: str, value: Any, scope: str = "", ttl_s: float | None = None
    ) -> WorkflowMemory:
        """Store ``value`` under ``key``, replacing what was there; it expires ``ttl_s`` from now.

        Without ``ttl_s`` it never expires (even if the replaced entry would have). Atomic: two
        concurrent sets of one key leave one of the two values, never an error.
        """
        _check_place(key, scope)
        value_type = value_type_of(value)
        if ttl_s is not None and not ttl_s > 0:
            raise InputError("ttl_s must be a positive number of seconds", field="ttl_s")
        await self._check_workflow()
        now = self._clock()
        expires_at = now + timedelta(seconds=ttl_s) if ttl_s is not None else None
        dialect = self._session.get_bind().dialect.name
        statement = insert_for(dialect)(WorkflowMemory).values(
            id=new_id(PREFIXES["workflow_memory"]),
            workflow_id=self._workflow_id,
            user_id=self._owner_id,
            scope=scope,
            key=key,
            value=value,
            value_type=value_type.value,
            expires_at=expires_at,
            created_at=now,
            updated_at=now,
        )
        statement = statement.on_conflict_do_update(
            index_elements=[WorkflowMemory.workflow_id, WorkflowMemory.scope, WorkflowMemory.key],
            set_={
                "value": statement.excluded.value,
                "value_type": statement.excluded.value_type,
                "expires_at": statement.excluded.expires_at,
                "updated_at": statement.excluded.updated_at,
            },
        )
        # populate_existing: an entry loaded earlier in this session must show the new value.
        rows = await self._session.scalars(
            statement.returning(WorkflowMemory),
            execution_options={"populate_existing": True},
        )
        entry: WorkflowMemory = rows.one()
        return entry

    async def get(self, *, key: str, scope: str = "") -> Any:
        """The value stored under ``key``; NotFound if there is none or it has expired."""
        entry = await self.get_entry(key=key, scope=scope)
        return entry.value

    async def get_entry(self, *, key: str, scope: str = "") -> WorkflowMemory:
        """The whole entry (value, type, expiry) under ``key``; NotFound as ``get``."""
        await self._check_workflow()
        entry = await self._session.scalar(
            self._live().where(WorkflowMemory.scope == scope, WorkflowMemory.key == key)
        )
        if entry is None:
            raise NotFound("memory entry", f"{scope}/{key}" if scope else key)
        return entry

    async def delete(self, *, key: str, scope: str = "") -> None:
        """Remove the entry under ``key``; NotFound if there is none or it had expired."""
        await self._check_workflow()
        result = await self._session.execute(
            self._matching(
                delete(WorkflowMemory).where(
                    WorkflowMemory.scope == scope, WorkflowMemory.key == key
                )
            ).returning(WorkflowMemory.expires_at)
        )
        row = result.one_or_none()
        if row is None or (row.expires_at is not None and row.expires_at <= self._clock()):
            raise NotFound("memory entry", f"{scope}/{key}" if scope else key)

    async def list(self, *, scope: str = "") -> builtins.list[WorkflowMemory]:
        """Every live entry in ``scope``, ordered by key."""
        await self._check_workflow()
        rows = await self._session.scalars(
            self._live().where(WorkflowMemory.scope == scope).order_by(WorkflowMemory.key)
        )
        return builtins.list(rows.all())

    async def list_every_scope(self, *, limit: int = 500) -> builtins.list[WorkflowMemory]:
        """The first ``limit`` live entries of every scope, by scope (``""`` first) then key."""
        await self._check_workflow()
        rows = await self._session.scalars(
            self._live().order_by(WorkflowMemory.scope, WorkflowMemory.key).limit(limit)
        )
        return builtins.list(rows.all())

    async def clear(self, *, scope: str | None = None) -> int:
        """Delete every entry (of one ``scope`` if given); how many live ones there were."""
        await self._check_workflow()
        statement = self._matching(delete(WorkflowMemory))
        if scope is not None:
            statement = statement.where(WorkflowMemory.scope == scope)
        result = await self._session.execute(
            statement.returning(WorkflowMemory.expires_at).execution_options(
                synchronize_session=False
            )
        )
        now = self._clock()
        return sum(1 for row in result if row.expires_at is None or row.expires_at > now)

    def _live(self) -> Select[WorkflowMemory]:
        return select(WorkflowMemory).where(
            WorkflowMemory.workflow_id == self._workflow_id,
            WorkflowMemory.user_id == self._owner_id,
            _not_expired(self._clock()),
        )

    def _matching(self, statement: Delete) -> Delete:
        return statement.where(
            WorkflowMemory.workflow_id == self._workflow_id,
            WorkflowMemory.user_id == self._owner_id,
        )

    async def _check_workflow(self) -> None:
        if self._checked:
            return
        found = await self._session.scalar(
            select(Workflow.id).where(
                Workflow.id == self._workflow_id,
                Workflow.user_id == self._owner_id,
                Workflow.deleted_at.is_(None),
            )
        )
        if found is None:
            raise NotFound("workflow", self._workflow_id)
        self._checked = True


def _not_expired(now: datetime) -> ColumnElement[bool]:
    return or_(WorkflowMemory.expires_at.is_(None), WorkflowMemory.expires_at > now)


@dataclass(frozen=True, slots=True)
class WorkflowMemoryCount:
    workflow_id: str
    workflow_name: str
    entries: int
    scopes: int
    """Distinct scopes: the whole workflow's (``""``) and one per thread."""
    last_updated_at: datetime


async def memory_overview(session: AsyncSession, *, owner_id: str) -> list[WorkflowMemoryCount]:
    """The owner's workflows that hold live memory, with their counts, most recently used
    first."""
    last = func.max(WorkflowMemory.updated_at)
    rows = await session.execute(
        select(
            Workflow.id,
            Workflow.name,
            func.count(),
            func.count(func.distinct(WorkflowMemory.scope)),
            last,
        )
        .join(Workflow, Workflow.id == WorkflowMemory.workflow_id)
        .where(
            WorkflowMemory.user_id == owner_id,
            Workflow.user_id == owner_id,
            Workflow.deleted_at.is_(None),
            _not_expired(utcnow()),
        )
        .group_by(Workflow.id, Workflow.name)
        .order_by(last.desc())
    )
    return [WorkflowMemoryCount(r[0], r[1], int(r[2]), int(r[3]), r[4]) for r in rows]


async def purge_expired_memory(session: AsyncSession, *, now: datetime | None = None) -> int:
    """Delete every expired memory entry of every workflow; the number deleted.

    Instance-wide maintenance (not owner-scoped), for a periodic sweep.
    """
    result = await session.execute(
        delete(WorkflowMemory)
        .where(WorkflowMemory.expires_at <= (now or utcnow()))
        .returning(WorkflowMemory.id)
        .execution_options(synchronize_session=False)
    )
    return len(result.all())
