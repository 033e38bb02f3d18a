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
from collections.abc import Iterator
from typing import Any

__all__ = ["blob_references", "distinct_references"]

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


def distinct_references(outputs: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The blob references in ``outputs``, one per hash (the first found)."""
    found: dict[str, dict[str, Any]] = {}
    for reference in blob_references(outputs):
        found.setdefault(reference["sha256"], reference)
    return found
