"""The engine: runs workflows durably, node by node, with every state change checkpointed.

``Engine`` (scheduler.py) starts, drives, answers, cancels and resumes runs; ``EventBus``
(events.py) streams their state changes; ``RetryPolicy`` (retry.py) and cache signatures
(signature.py) are read from the definition; failpoints (failpoints.py) let crash tests kill
the process at the worst moments.
"""

from flowloom.engine.events import DROPPED, RUN_FINISHED_EVENTS, Event, EventBus, Subscription
from flowloom.engine.failpoints import FAILPOINT_EXIT_CODE, Failpoints
from flowloom.engine.retry import RetryPolicy, node_timeout_s, retry_policy
from flowloom.engine.scheduler import Engine, RunResult
from flowloom.engine.signature import canonical_json, signature

__all__ = [
    "DROPPED",
    "FAILPOINT_EXIT_CODE",
    "RUN_FINISHED_EVENTS",
    "Engine",
    "Event",
    "EventBus",
    "Failpoints",
    "RetryPolicy",
    "RunResult",
    "Subscription",
    "canonical_json",
    "node_timeout_s",
    "retry_policy",
    "signature",
]
