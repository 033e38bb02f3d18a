"""Usage recording for the engine: a :class:`~flowloom.providers.UsageSink` that writes one
usage row per provider call, priced exactly from the ``ai_models`` table by ``UsageRepo``."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select

from flowloom.providers.usage import UsageEvent
from flowloom.storage.database import Database
from flowloom.storage.enums import UsageType
from flowloom.storage.repos.usage import UsageRepo
from flowloom.storage.tables import NodeExecution

__all__ = ["DatabaseUsageSink"]


class DatabaseUsageSink:
    """Usage of one run (or of calls outside any run), for its user and API key.

    The engine makes one per run. Each event is its own short transaction, so a long run does
    not hold a write lock; the node execution is found from the event's node id.
    """

    def __init__(
        self,
        db: Database,
        *,
        owner_id: str,
        api_key_id: str | None = None,
        run_id: str | None = None,
    ) -> None:
        self._db = db
        self.owner_id = owner_id
        self.api_key_id = api_key_id
        self.run_id = run_id

    async def record(self, event: UsageEvent) -> Decimal:
        metadata = dict(event.metadata)
        if event.attempt is not None:
            metadata.setdefault("attempt", event.attempt)
        if event.node_id is not None:
            metadata.setdefault("node_id", event.node_id)
        async with self._db.write() as session:
            node_execution_id = None
            if self.run_id is not None and event.node_id is not None:
                node_execution_id = await session.scalar(
                    select(NodeExecution.id).where(
                        NodeExecution.run_id == self.run_id,
                        NodeExecution.node_id == event.node_id,
                    )
                )
            row = await UsageRepo(session, owner_id=self.owner_id).record(
                provider=event.provider,
                model=event.model,
                tokens_in=event.tokens_in,
                tokens_out=event.tokens_out,
                type=UsageType(event.type),
                api_key_id=self.api_key_id,
                run_id=self.run_id,
                node_execution_id=node_execution_id,
                metadata=metadata or None,
                images=event.images,
            )
            return row.cost
