"""Cache signatures: when two executions of a deterministic node must give the same outputs.

signature = sha256 of the canonical JSON of (owner, node type, type version, config, resolved
input values). Canonical JSON sorts keys, uses no whitespace and refuses NaN, so equal values always
hash equal whatever the key order they were built in.

This hashes the input VALUES, not "the signatures of the producers" that DESIGN.md §3 names.
Values are what the node actually sees, so the signature stays right when a non-deterministic
parent (an HTTP call, a trigger fed by run inputs) happens to produce the same value as before:
the child is then rightly reused, where a producer signature could not even be computed. Image
values are small blob references that carry the content's sha256, so hashing them is cheap and
still exact. The cost is serialising each input once per execution, which is small next to
running the node.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

__all__ = ["canonical_json", "signature"]


def canonical_json(value: Any) -> str:
    """``value`` as canonical JSON; ValueError/TypeError if it is not plain JSON."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def signature(
    *,
    owner_id: str,
    node_type: str,
    version: int,
    config: Mapping[str, Any],
    inputs: Mapping[str, Any],
) -> str | None:
    """The hex signature, or None when config or inputs are not plain JSON (then no caching).

    ``owner_id`` is part of it: one user's results are never served to another, so the cache
    cannot become a side channel between accounts.
    """
    try:
        text = canonical_json([owner_id, node_type, version, dict(config), dict(inputs)])
    except (TypeError, ValueError):
        return None
    return hashlib.sha256(text.encode()).hexdigest()
