"""The generation history (seeds 002, 003): every attempt at a workflow from plain language,
by owner, with its draft, its problems and its tokens."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from flowloom.ids import PREFIXES, new_id
from flowloom.storage.pages import Page, check_cursor, check_limit, page_of
from flowloom.storage.tables import AiGeneration

__all__ = ["GenerationRepo"]

_PREFIX = PREFIXES["ai_generation_history"]


class GenerationRepo:
    """One owner's generation attempts; flushes, never commits."""

    def __init__(self, session: AsyncSession, *, owner_id: str) -> None:
        self.session = session
        self.owner_id = owner_id

    async def record(
        self,
        *,
        prompt: str,
        provider: str,
        model: str,
        attempt: int,
        outcome: str,
        definition: dict[str, Any] | None,
        problems: list[dict[str, Any]],
        tokens_in: int,
        tokens_out: int,
    ) -> AiGeneration:
        row = AiGeneration(
            id=new_id(_PREFIX),
            user_id=self.owner_id,
            prompt=prompt,
            provider=provider,
            model=model,
            attempt=attempt,
            outcome=outcome,
            definition=definition,
            problems=problems,
            tokens_in=tokens_in,
            tokens_out=tokens_out,
        )
        self.session.add(row)
        await self.session.flush()
        return row

    async def link_workflow(self, *, generation_ids: Sequence[str], workflow_id: str) -> None:
        """Point the attempts at the workflow saved from them."""
        await self.session.execute(
            update(AiGeneration)
            .where(AiGeneration.id.in_(generation_ids), AiGeneration.user_id == self.owner_id)
            .values(workflow_id=workflow_id)
        )

    async def list(self, *, cursor: str | None = None, limit: int = 20) -> Page[AiGeneration]:
        """The owner's attempts, newest first."""
        check_limit(limit)
        statement = select(AiGeneration).where(AiGeneration.user_id == self.owner_id)
        if (after := check_cursor(cursor, prefix=_PREFIX)) is not None:
            statement = statement.where(AiGeneration.id < after)
        rows = await self.session.scalars(
            statement.order_by(AiGeneration.id.desc()).limit(limit + 1)
        )
        return page_of(list(rows), limit=limit)
