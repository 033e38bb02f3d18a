"""The closed sets of values stored in status and kind columns (each backed by a CHECK)."""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "ACTIVE_RUN_STATUSES",
    "FINISHED_RUN_STATUSES",
    "ApiScope",
    "IntegrationKind",
    "MemoryValueType",
    "MessageRole",
    "NodeStatus",
    "RunScope",
    "RunStatus",
    "SubscriptionStatus",
    "TriggerKind",
    "TriggerType",
    "UsageType",
    "UserRole",
]


class RunStatus(StrEnum):
    PENDING = "PENDING"
    """Created, not yet picked up by the engine."""
    RUNNING = "RUNNING"
    """At least one node is ready or running."""
    WAITING = "WAITING"
    """Every unfinished node is parked (approval, delay, breakpoint); no slot is held."""
    COMPLETED = "COMPLETED"
    """Every node finished: succeeded, cached or skipped."""
    FAILED = "FAILED"
    """A node failed for good, or the run timed out."""
    CANCELLED = "CANCELLED"
    """Somebody cancelled it."""


ACTIVE_RUN_STATUSES = (RunStatus.PENDING, RunStatus.RUNNING, RunStatus.WAITING)
FINISHED_RUN_STATUSES = (RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED)


class NodeStatus(StrEnum):
    PENDING = "PENDING"
    """Some parent has not finished yet (``pending_parents`` > 0)."""
    READY = "READY"
    """Every parent finished; waiting for a slot."""
    RUNNING = "RUNNING"
    """Claimed under a lease and running."""
    SUCCEEDED = "SUCCEEDED"
    """Ran and produced outputs."""
    FAILED = "FAILED"
    """Failed after its last attempt."""
    SKIPPED = "SKIPPED"
    """Fed only by branches that were not taken."""
    CANCELLED = "CANCELLED"
    """The run was cancelled before the node finished."""
    WAITING = "WAITING"
    """Parked until an answer, a delay or a debugger step arrives."""
    CACHED = "CACHED"
    """Outputs reused from an earlier success with the same signature."""


class RunScope(StrEnum):
    FULL = "FULL"
    """Every node of the workflow."""
    NODE = "NODE"
    """One node; its inputs come from its parents' newest successful outputs or the request."""
    UPSTREAM = "UPSTREAM"
    """One node and everything it depends on."""


class TriggerKind(StrEnum):
    """What started a run."""

    MANUAL = "manual"
    API = "api"
    WEBHOOK = "webhook"
    SCHEDULE = "schedule"
    SUBWORKFLOW = "subworkflow"
    CLI = "cli"
    DEBUG = "debug"


class TriggerType(StrEnum):
    """The kinds of stored trigger that start runs by themselves."""

    WEBHOOK = "webhook"
    SCHEDULE = "schedule"


class UserRole(StrEnum):
    USER = "user"
    ADMIN = "admin"


class ApiScope(StrEnum):
    WORKFLOWS_READ = "workflows:read"
    WORKFLOWS_WRITE = "workflows:write"
    RUNS_EXECUTE = "runs:execute"
    ADMIN = "admin"


class UsageType(StrEnum):
    CHAT = "chat"
    IMAGE = "image"
    EMBEDDINGS = "embeddings"
    AGENT = "agent"
    GENERATION = "generation"


class IntegrationKind(StrEnum):
    MCP_STDIO = "mcp_stdio"
    MCP_HTTP = "mcp_http"
    OAUTH2 = "oauth2"
    HTTP = "http"


class MessageRole(StrEnum):
    SYSTEM = "system"
    USER = "user"
    ASSISTANT = "assistant"
    TOOL = "tool"


class SubscriptionStatus(StrEnum):
    ACTIVE = "active"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


class MemoryValueType(StrEnum):
    """The JSON type of a stored memory value."""

    STRING = "string"
    NUMBER = "number"
    BOOLEAN = "boolean"
    OBJECT = "object"
    ARRAY = "array"
    NULL = "null"
