"""What the engine hands to nodes for blobs: an async adapter over the blob store, per owner.

Nodes see the small async protocols of :mod:`flowloom.nodes.base`; storage offers a synchronous
blob store (plain file I/O). These adapters bridge the two without nodes ever importing storage.
(The workflow memory nodes get comes from the run store: ``RunStore.memory``.)

Blobs are stored once per content for everybody, but each owner sees only their own: a node
reads a blob only if its run's owner has an ``artifacts`` row for it (one of their runs
produced it) or if the same attempt stored it. Any other hash, whether it names another
owner's blob or nothing at all, gets the same NotFound after the same work, so a node cannot
read someone else's bytes nor learn whether some content exists.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from flowloom.exceptions import NotFound
from flowloom.storage.blobs import BlobStore as StorageBlobStore
from flowloom.storage.blobs import check_sha256

__all__ = ["BlobAdapter", "OwnerBlobs", "Ownership"]

Ownership = Callable[[str], Awaitable[bool]]
"""Whether the owner has an artifact for a hash (``RunStore.owns_blob``, bound to the owner)."""


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

    def for_owner(self, owner_id: str, owns: Ownership) -> OwnerBlobs:
        """The blob store as one owner's node attempt sees it (a new view per attempt)."""
        return OwnerBlobs(self, owner_id, owns)


class OwnerBlobs:
    """One owner's blobs, for one node attempt: the node BlobStore protocol, scoped.

    ``put`` stores the bytes and remembers the hash (:attr:`stored`): the engine records
    artifact rows only for blobs the owner already has or that the attempt stored, so an
    output that merely names someone else's hash gives its owner nothing. ``read`` answers
    only those blobs; every other hash raises ``NotFound("blob", sha256)``, the very error a
    hash that exists nowhere raises.
    """

    def __init__(self, blobs: BlobAdapter, owner_id: str, owns: Ownership) -> None:
        self._blobs = blobs
        self._owns = owns
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
        return await self._owns(sha256)
