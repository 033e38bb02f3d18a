"""Artifact rows on the database (see ``engine/artifacts.py`` for what they are)."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from sqlalchemy import insert, select

from flowloom.ids import new_id
from flowloom.storage.database import Database
from flowloom.storage.tables import Artifact

__all__ = ["owns_blob", "record_artifacts"]


async def record_artifacts(
    db: Database,
    *,
    owner_id: str,
    run_id: str,
    node_execution_id: str,
    references: Mapping[str, Mapping[str, Any]],
    stored: Collection[str] = (),
) -> int:
    """Add the artifact rows for the owner's blobs ``references`` name (sha256 -> reference:
    those in ``stored``, which the attempt put, and those the owner has rows for already); how
    many were added."""
    found = dict(references)
    if not found:
        return 0
    async with db.write() as session:
        owned = set(stored) | set(
            await session.scalars(
                select(Artifact.sha256)
                .where(Artifact.user_id == owner_id, Artifact.sha256.in_(sorted(found)))
                .distinct()
            )
        )
        found = {sha256: ref for sha256, ref in found.items() if sha256 in owned}
        if not found:
            return 0
        known = set(
            await session.scalars(
                select(Artifact.sha256).where(
                    Artifact.node_execution_id == node_execution_id,
                    Artifact.sha256.in_(sorted(found)),
                )
            )
        )
        rows = [
            {
                "id": new_id("art"),
                "user_id": owner_id,
                "run_id": run_id,
                "node_execution_id": node_execution_id,
                "sha256": sha256,
                "content_type": reference["content_type"][:100],
                "size": _count(reference.get("size")) or 0,
                "width": _count(reference.get("width")),
                "height": _count(reference.get("height")),
            }
            for sha256, reference in found.items()
            if sha256 not in known
        ]
        if rows:
            await session.execute(insert(Artifact), rows)
        return len(rows)


async def owns_blob(db: Database, *, owner_id: str, sha256: str) -> bool:
    """Whether one of the owner's artifact rows refers to ``sha256``."""
    async with db.read() as session:
        found = await session.scalar(
            select(Artifact.id)
            .where(Artifact.user_id == owner_id, Artifact.sha256 == sha256)
            .limit(1)
        )
    return found is not None


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None
