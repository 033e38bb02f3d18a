"""What the engine hands to nodes: async adapters over the blob store and the workflow memory.

Nodes see the small async protocols of :mod:`flowloom.nodes.base`; storage offers a synchronous
blob store (plain file I/O) and a session-bound memory repository. These adapters bridge the two
without nodes ever importing storage.
"""

from __future__ import annotations

import asyncio
from typing import Any

from flowloom.exceptions import NotFound
from flowloom.nodes.base import MemoryItem
from flowloom.storage.blobs import BlobStore as StorageBlobStore
from flowloom.storage.database import Database
from flowloom.storage.repos.memory import MemoryRepo

__all__ = ["BlobAdapter", "MemoryAdapter"]


class BlobAdapter:
    """The node BlobStore protocol over a storage blob store, its file I/O run in a thread."""

    def __init__(self, store: StorageBlobStore) -> None:
        self._store = store

    async def put(self, data: bytes) -> str:
        return await asyncio.to_thread(self._store.put, data)

    async def read(self, sha256: str) -> bytes:
        return await asyncio.to_thread(self._store.read, sha256)


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
