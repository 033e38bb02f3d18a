"""The kinds of run events that the bus and its readers act on (``flowloom.engine.events``)."""

from __future__ import annotations

from typing import Final

__all__ = ["DELTA", "DROPPED", "NODE_ENDS", "RUN_FINISHED_EVENTS"]

DROPPED: Final = "events.dropped"
"""The type of the event that tells a slow subscriber how many events it lost (``data.count``)."""

DELTA: Final = "node.delta"
"""A piece of a node's streamed text: ``data.text``, at ``data.offset`` in the whole text,
of ``data.attempt``."""

RUN_FINISHED_EVENTS: Final = frozenset({"run.completed", "run.failed", "run.cancelled"})
"""Event types after which a run publishes nothing more."""

NODE_ENDS: Final = frozenset(
    {"node.succeeded", "node.failed", "node.cancelled", "node.retrying", "node.skipped"}
)
"""Event types after which a node's streamed text of that attempt is over."""
