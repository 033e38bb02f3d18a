"""One workflow's memory for its nodes, on the database."""

from __future__ import annotations

from typing import Any

from flowloom.exceptions import NotFound
from flowloom.nodes.base import MemoryItem
from flowloom.storage.database import Database
from flowloom.storage.repos.memory import MemoryRepo

__all__ = ["MemoryAdapter"]


class MemoryAdapter:
    """One workflow's memory for nodes: each call is its own short transaction.

    Short transactions on purpose: a node may read and write memory while the scheduler commits
    other nodes' results, and a long-held write transaction would stall those commits.
    """

    def __init__(self, db: Database, *, owner_id: str, workflow_id: str) -> None:
        self._db = db
        self._owner_id = owner_id
        self._workflow_id = workflow_id

    def _repo(self, session: Any) -> MemoryRepo:
        return MemoryRepo(session, owner_id=self._owner_id, workflow_id=self._workflow_id)

    async def get(self, key: str) -> MemoryItem | None:
        async with self._db.read() as session:
            try:
                entry = await self._repo(session).get_entry(key=key)
            except NotFound:
                return None
            return MemoryItem(entry.key, entry.value, entry.value_type, entry.expires_at)

    async def set(self, key: str, value: Any, *, ttl_s: float | None = None) -> MemoryItem:
        async with self._db.write() as session:
            entry = await self._repo(session).set(key=key, value=value, ttl_s=ttl_s)
            return MemoryItem(entry.key, entry.value, entry.value_type, entry.expires_at)

    async def delete(self, key: str) -> bool:
        async with self._db.write() as session:
            try:
                await self._repo(session).delete(key=key)
            except NotFound:
                return False
            return True
