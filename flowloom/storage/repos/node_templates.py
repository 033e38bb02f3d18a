"""Node templates (seed 003): a configured node saved by its owner as a preset for the palette.

Names are unique per owner; a duplicate name is a Conflict naming it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from flowloom.exceptions import NotFound
from flowloom.ids import PREFIXES, new_id
from flowloom.storage.errors import translate_integrity_error
from flowloom.storage.pages import Page, check_cursor, check_limit, page_of
from flowloom.storage.tables import NodeTemplate

__all__ = ["NodeTemplateRepo"]

_PREFIX = PREFIXES["node_templates"]


class NodeTemplateRepo:
    """One owner's node templates; another user's template is NotFound."""

    def __init__(self, session: AsyncSession, *, owner_id: str) -> None:
        self.session = session
        self.owner_id = owner_id

    async def create(
        self, *, name: str, node_type: str, config: dict[str, Any], description: str | None
    ) -> NodeTemplate:
        row = NodeTemplate(
            id=new_id(_PREFIX),
            user_id=self.owner_id,
            name=name,
            node_type=node_type,
            config=config,
            description=description,
        )
        self.session.add(row)
        await self._flush(name)
        return row

    async def get(self, *, template_id: str) -> NodeTemplate:
        row = await self.session.scalar(
            select(NodeTemplate).where(
                NodeTemplate.id == template_id, NodeTemplate.user_id == self.owner_id
            )
        )
        if row is None:
            raise NotFound("node template", template_id)
        return row

    async def list(
        self,
        *,
        node_type: str | None = None,
        search: str | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> Page[NodeTemplate]:
        """Newest first; ``search`` matches the name, case-insensitively."""
        check_limit(limit)
        statement = select(NodeTemplate).where(NodeTemplate.user_id == self.owner_id)
        if node_type is not None:
            statement = statement.where(NodeTemplate.node_type == node_type)
        if search:
            escaped = search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            statement = statement.where(NodeTemplate.name.ilike(f"%{escaped}%", escape="\\"))
        if (after := check_cursor(cursor, prefix=_PREFIX)) is not None:
            statement = statement.where(NodeTemplate.id < after)
        rows = await self.session.scalars(
            statement.order_by(NodeTemplate.id.desc()).limit(limit + 1)
        )
        return page_of(list(rows), limit=limit)

    async def update(
        self,
        *,
        template_id: str,
        name: str | None = None,
        config: dict[str, Any] | None = None,
        description: str | None = None,
    ) -> NodeTemplate:
        row = await self.get(template_id=template_id)
        if name is not None:
            row.name = name
        if config is not None:
            row.config = config
        if description is not None:
            row.description = description
        await self._flush(row.name)
        return row

    async def delete(self, *, template_id: str) -> None:
        done = await self.session.execute(
            delete(NodeTemplate).where(
                NodeTemplate.id == template_id, NodeTemplate.user_id == self.owner_id
            )
        )
        if not done.rowcount:  # type: ignore[attr-defined]
            raise NotFound("node template", template_id)

    async def _flush(self, name: str) -> None:
        try:
            async with self.session.begin_nested():
                await self.session.flush()
        except IntegrityError as exc:
            raise translate_integrity_error(exc, what=f"node template {name!r}") from None
