"""Debug sessions (seed 003): a debug run's breakpoints and where it is paused, by owner.

The engine creates a session with its run and keeps ``mode``, ``paused_node_id`` and
``status`` up to date as the run pauses and goes on; this repository reads them for the API
and records a stop.
"""

from __future__ import annotations

from sqlalchemy import Select, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from flowloom.exceptions import NotFound
from flowloom.ids import PREFIXES
from flowloom.storage.pages import Page, check_cursor, check_limit, page_of
from flowloom.storage.tables import DebugSession, WorkflowRun

__all__ = ["DebugSessionRepo"]


class DebugSessionRepo:
    """The debug sessions of one owner; another user's session is NotFound."""

    def __init__(self, session: AsyncSession, *, owner_id: str) -> None:
        self.session = session
        self.owner_id = owner_id

    @staticmethod
    def by_run(*, run_id: str, owner_id: str) -> Select[DebugSession]:
        """The statement that finds the session of a run."""
        return select(DebugSession).where(
            DebugSession.run_id == run_id, DebugSession.user_id == owner_id
        )

    async def get(self, *, session_id: str) -> DebugSession:
        found = await self.session.scalar(
            select(DebugSession).where(
                DebugSession.id == session_id, DebugSession.user_id == self.owner_id
            )
        )
        if found is None:
            raise NotFound("debug session", session_id)
        return found

    async def list(
        self, *, workflow_id: str | None = None, cursor: str | None = None, limit: int = 20
    ) -> Page[DebugSession]:
        """The owner's sessions, newest first, optionally of one workflow's runs."""
        check_limit(limit)
        statement = select(DebugSession).where(DebugSession.user_id == self.owner_id)
        if workflow_id is not None:
            statement = statement.join(WorkflowRun, WorkflowRun.id == DebugSession.run_id).where(
                WorkflowRun.workflow_id == workflow_id
            )
        if (after := check_cursor(cursor, prefix=PREFIXES["debug_sessions"])) is not None:
            statement = statement.where(DebugSession.id < after)
        rows = await self.session.scalars(
            statement.order_by(DebugSession.id.desc()).limit(limit + 1)
        )
        return page_of(list(rows), limit=limit)

    async def mark_stopped(self, *, session_id: str) -> None:
        """Record that the person stopped the session (its run was cancelled)."""
        await self.session.execute(
            update(DebugSession)
            .where(DebugSession.id == session_id, DebugSession.user_id == self.owner_id)
            .values(status="stopped", paused_node_id=None)
        )
