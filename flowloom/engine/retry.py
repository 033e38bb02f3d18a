"""Retry policies and timeouts, read from a node's ``data`` in the definition.

A node's ``data`` may carry ``retry`` and ``timeout_s`` next to its ``config``::

    "data": {"config": {...}, "retry": {"max_attempts": 3, "backoff_s": 0.5}, "timeout_s": 10}

Only retryable failures are retried: RetryNode (its ``after_s`` is honoured), NodeFailed with
``retryable=True``, and a node timeout. Any other error fails the node at once.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from flowloom.exceptions import Problem, ValidationFailed
from flowloom.graph.definition import NodeDefinition

__all__ = ["RetryPolicy", "node_timeout_s", "retry_policy"]


class _RetryModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_attempts: int = Field(default=1, ge=1, le=100)
    backoff_s: float = Field(default=1.0, ge=0)
    max_backoff_s: float = Field(default=60.0, ge=0)
    jitter: float = Field(default=0.1, ge=0, le=1)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often a node is tried and how long it waits between tries.

    The delay before attempt ``n + 1`` is ``backoff_s * 2 ** (n - 1)``, capped at
    ``max_backoff_s``, then spread by up to ``jitter`` (a fraction) either way so that nodes
    failing together do not retry in lockstep.
    """

    max_attempts: int = 1
    backoff_s: float = 1.0
    max_backoff_s: float = 60.0
    jitter: float = 0.1

    def delay_s(self, attempt: int, *, requested_s: float | None = None) -> float:
        """Seconds to wait after ``attempt`` failed; a node's own ``RetryNode.after_s`` wins."""
        if requested_s is not None:
            return max(0.0, requested_s)
        base: float = min(self.max_backoff_s, self.backoff_s * 2.0 ** max(0, attempt - 1))
        if self.jitter:
            base *= 1 + random.uniform(-self.jitter, self.jitter)
        return max(0.0, base)


_NO_RETRY = RetryPolicy()
"""The policy of a node that names none (shared: a policy never changes)."""


def retry_policy(node: NodeDefinition) -> RetryPolicy:
    """The node's policy from ``data.retry``; ValidationFailed naming the node if it is bad."""
    raw = (node.data.model_extra or {}).get("retry")
    if raw is None:
        return _NO_RETRY
    try:
        parsed = _RetryModel.model_validate(raw)
    except ValidationError as exc:
        raise ValidationFailed(
            [Problem(f"bad retry policy: {exc.errors()[0]['msg']}", node_id=node.id, field="retry")]
        ) from None
    return RetryPolicy(parsed.max_attempts, parsed.backoff_s, parsed.max_backoff_s, parsed.jitter)


def node_timeout_s(node: NodeDefinition) -> float | None:
    """The node's ``data.timeout_s`` (positive seconds), or None for no limit."""
    raw: Any = (node.data.model_extra or {}).get("timeout_s")
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not raw > 0:
        raise ValidationFailed(
            [Problem("timeout_s must be a positive number", node_id=node.id, field="timeout_s")]
        )
    return float(raw)
