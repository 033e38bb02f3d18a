"""Artifacts: a row for every blob a node's outputs refer to, so pruning and the API find it.

A node puts bytes in the blob store and outputs a reference: an object with a ``sha256`` (64
lower-case hex digits) and a ``content_type`` (image values, non-JSON HTTP bodies). When the
attempt succeeds, each distinct blob referred to gets an ``artifacts`` row linked to the run
and the node execution, in one short transaction of the node's own task (not the scheduler's
tick), before the result is committed. A re-run of the same node execution (a retry, a resume
after a crash) does not add a second row for a blob it already recorded.

Only the owner's own blobs get rows: those the attempt stored itself (``stored``, from the
attempt's scoped blob store) and those the owner already has rows for. An output that merely
names another hash (a JSON value typed into a node, say) records nothing, so it cannot make
someone else's blob readable through the owner's artifacts.

The outputs themselves are left as the node made them: adding the artifact id to the value
would make every downstream input differ run after run, and so defeat the signature cache.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator
from typing import Any

from sqlalchemy import insert, select

from flowloom.ids import new_id
from flowloom.storage.database import Database
from flowloom.storage.tables import Artifact

__all__ = ["blob_references", "record_artifacts"]

_SHA256 = re.compile(r"[0-9a-f]{64}")


def blob_references(value: Any) -> Iterator[dict[str, Any]]:
    """Every blob reference inside ``value`` (outputs are small JSON: a plain walk)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            sha256 = item.get("sha256")
            content_type = item.get("content_type")
            if (
                isinstance(sha256, str)
                and _SHA256.fullmatch(sha256)
                and isinstance(content_type, str)
                and "/" in content_type
            ):
                yield item
                continue
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


async def record_artifacts(
    db: Database,
    *,
    owner_id: str,
    run_id: str,
    node_execution_id: str,
    outputs: dict[str, Any],
    stored: Collection[str] = (),
) -> int:
    """Add the artifact rows for the owner's blobs ``outputs`` refer to (those in ``stored``,
    which the attempt put, and those the owner has rows for already); how many were added."""
    found: dict[str, dict[str, Any]] = {}
    for reference in blob_references(outputs):
        found.setdefault(reference["sha256"], reference)
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


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None
