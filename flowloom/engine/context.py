"""What the engine hands to nodes: async adapters over the blob store and the workflow memory.

Nodes see the small async protocols of :mod:`flowloom.nodes.base`; storage offers a synchronous
blob store (plain file I/O) and a session-bound memory repository. These adapters bridge the two
without nodes ever importing storage.

Blobs are stored once per content for everybody, but each owner sees only their own: a node
reads a blob only if its run's owner has an ``artifacts`` row for it (one of their runs
produced it) or if the same attempt stored it. Any other hash, whether it names another
owner's blob or nothing at all, gets the same NotFound after the same work, so a node cannot
read someone else's bytes nor learn whether some content exists.
"""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import select

from flowloom.exceptions import NotFound
from flowloom.nodes.base import MemoryItem
from flowloom.storage.blobs import BlobStore as StorageBlobStore
from flowloom.storage.blobs import check_sha256
from flowloom.storage.database import Database
from flowloom.storage.repos.memory import MemoryRepo
from flowloom.storage.tables import Artifact

__all__ = ["BlobAdapter", "MemoryAdapter", "OwnerBlobs"]


class BlobAdapter:
    """The storage blob store with its file I/O run in a thread, for every owner at once.

    Not for nodes: what a node gets is :meth:`for_owner`'s view. The API uses this directly
    after checking ownership itself (``GET /blobs/{sha256}``).
    """

    def __init__(self, store: StorageBlobStore) -> None:
        self._store = store

    async def put(self, data: bytes) -> str:
        return await asyncio.to_thread(self._store.put, data)

    async def read(self, sha256: str) -> bytes:
        return await asyncio.to_thread(self._store.read, sha256)

    def for_owner(self, db: Database, owner_id: str) -> OwnerBlobs:
        """The blob store as one owner's node attempt sees it (a new view per attempt)."""
        return OwnerBlobs(self, db, owner_id)


class OwnerBlobs:
    """One owner's blobs, for one node attempt: the node BlobStore protocol, scoped.

    ``put`` stores the bytes and remembers the hash (:attr:`stored`): the engine records
    artifact rows only for blobs the owner already has or that the attempt stored, so an
    output that merely names someone else's hash gives its owner nothing. ``read`` answers
    only those blobs; every other hash raises ``NotFound("blob", sha256)``, the very error a
    hash that exists nowhere raises.
    """

    def __init__(self, blobs: BlobAdapter, db: Database, owner_id: str) -> None:
        self._blobs = blobs
        self._db = db
        self.owner_id = owner_id
        self.stored: set[str] = set()
        """The hashes this attempt put (the owner's even before their artifact rows exist)."""

    def __repr__(self) -> str:
        return f"OwnerBlobs(owner_id={self.owner_id!r})"

    async def put(self, data: bytes) -> str:
        sha256 = await self._blobs.put(data)
        self.stored.add(sha256)
        return sha256

    async def read(self, sha256: str) -> bytes:
        check_sha256(sha256)
        if sha256 not in self.stored and not await self.owns(sha256):
            raise NotFound("blob", sha256)
        return await self._blobs.read(sha256)

    async def owns(self, sha256: str) -> bool:
        """Whether one of the owner's artifact rows refers to ``sha256``."""
        async with self._db.read() as session:
            found = await session.scalar(
                select(Artifact.id)
                .where(Artifact.user_id == self.owner_id, Artifact.sha256 == sha256)
                .limit(1)
            )
        return found is not None


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
