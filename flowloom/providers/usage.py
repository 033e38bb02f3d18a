"""How a provider call is recorded for billing: one :class:`UsageEvent` per call, into a sink.

The engine gives nodes a sink bound to the run's user and API key; it stores a usage row and
prices it exactly from the ``ai_models`` table. Nodes never compute money themselves.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

__all__ = ["UsageEvent", "UsageSink"]


@dataclass(frozen=True, slots=True, kw_only=True)
class UsageEvent:
    """One billable call."""

    provider: str
    model: str
    tokens_in: int
    tokens_out: int
    type: str = "chat"
    """``chat``, ``image``, ``embeddings``, ``agent`` or ``generation`` (the usage types)."""
    run_id: str | None = None
    node_id: str | None = None
    attempt: int | None = None
    images: int = 0
    """Images made by the call (priced per image where the model table says so)."""
    metadata: Mapping[str, Any] = field(default_factory=dict)
    """Details worth keeping (finish reason, whether a stored credential was used); no secrets."""

    @property
    def tokens_total(self) -> int:
        return self.tokens_in + self.tokens_out


class UsageSink(Protocol):
    """Where usage goes: the database in a running engine, a list in tests."""

    async def record(self, event: UsageEvent) -> Decimal:
        """Store ``event`` and return its exact cost (0 for a model without a price)."""
        ...
