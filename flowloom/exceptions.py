"""Every error flowloom raises on purpose, in one tree.

Setup errors (a bad definition, bad settings, bad input) and runtime errors (a node that failed
while running) are different branches, so callers can tell "fix your input" from "try again"::

    FlowloomError
    ├── ConfigurationError          settings or environment are unusable (bad URL, bad data dir)
    ├── DefinitionError             a workflow definition cannot be run as written
    │   └── ValidationFailed        carries every problem found, each with node id, port, message
    ├── InputError                  a caller passed something malformed (bad cursor, bad duration)
    ├── NotFound                    no such object, or it belongs to somebody else
    ├── Conflict                    the change collides with what is stored (duplicate, stale)
    ├── PermissionDenied            the caller may not do this
    ├── LimitExceeded               a plan limit or a rate limit refuses the work before it starts
    │   └── QuotaExceeded           a monthly plan limit is used up: which, how much used, allowed
    ├── StorageError                the database refused or could not be reached
    └── ExecutionError              something went wrong while a run was running
        ├── NodeFailed              a node raised; carries node id and attempt
        ├── NodeTimedOut            a node ran past its timeout
        ├── RunCancelled            the run was cancelled while the work was in flight
        └── RetryNode               control flow, not failure: run the node again after ``after_s``

The HTTP API maps this tree to problem+json in one place; the CLI maps it to one line and an exit
code. Nothing else needs to know about the leaves.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

__all__ = [
    "ConfigurationError",
    "Conflict",
    "DefinitionError",
    "ExecutionError",
    "FlowloomError",
    "InputError",
    "LimitExceeded",
    "NodeFailed",
    "NodeTimedOut",
    "NotFound",
    "PermissionDenied",
    "Problem",
    "QuotaExceeded",
    "RetryNode",
    "RunCancelled",
    "StorageError",
    "ValidationFailed",
]


class FlowloomError(Exception):
    """The root of every error flowloom raises on purpose."""


class ConfigurationError(FlowloomError):
    """Settings or the environment cannot be used as given."""


class DefinitionError(FlowloomError):
    """A workflow definition cannot be run as written."""


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a definition or a request, precise enough to point at."""

    message: str
    node_id: str | None = None
    port: str | None = None
    field: str | None = None

    def __str__(self) -> str:
        where = ".".join(p for p in (self.node_id, self.port or self.field) if p)
        return f"{where}: {self.message}" if where else self.message


class ValidationFailed(DefinitionError):
    """Validation found problems; ``problems`` holds all of them, not just the first."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        summary = "; ".join(str(p) for p in problems[:5])
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        super().__init__(f"{len(problems)} problem(s): {summary}{more}")


class InputError(FlowloomError):
    """A caller passed something malformed: the message names the field and what is wrong."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        self.field = field
        super().__init__(message)


class NotFound(FlowloomError):
    """No such object, or it belongs to someone else (the two are deliberately the same)."""

    def __init__(self, kind: str, object_id: str) -> None:
        self.kind = kind
        self.object_id = object_id
        super().__init__(f"{kind} {object_id!r} not found")


class Conflict(FlowloomError):
    """The change collides with what is stored: a duplicate, or a stale version."""


class PermissionDenied(FlowloomError):
    """The caller is known but may not do this."""


class LimitExceeded(FlowloomError):
    """A plan limit or a rate limit refuses the work before it starts."""

    def __init__(self, message: str, *, limit: str, retry_after_s: float | None = None) -> None:
        self.limit = limit
        self.retry_after_s = retry_after_s
        super().__init__(message)


class QuotaExceeded(LimitExceeded):
    """A monthly limit of the user's plan is used up; the work was refused before it started.

    ``limit`` names the package field (``max_runs_per_month``, ``max_tokens_per_month``);
    ``used`` is what the month has used so far, ``allowed`` the plan's number, ``resets_at`` the
    start of the next calendar month (UTC), when the count starts again.
    """

    def __init__(
        self,
        *,
        limit: str,
        used: int,
        allowed: int,
        package: str,
        resets_at: datetime,
    ) -> None:
        self.used = used
        self.allowed = allowed
        self.package = package
        self.resets_at = resets_at
        what = limit.removeprefix("max_").replace("_", " ")
        super().__init__(
            f"the {package!r} plan allows {allowed} {what}; {used} used this month. "
            f"It resets at {resets_at.isoformat()}; until then a bigger plan "
            + ("or a credit " if limit == "max_runs_per_month" else "")
            + "lifts the limit",
            limit=limit,
        )


class StorageError(FlowloomError):
    """The database refused the operation or could not be reached."""


class ExecutionError(FlowloomError):
    """Something went wrong while a run was running."""


class NodeFailed(ExecutionError):
    """A node raised while running."""

    def __init__(self, message: str, *, node_id: str, attempt: int, retryable: bool = False):
        self.node_id = node_id
        self.attempt = attempt
        self.retryable = retryable
        super().__init__(f"node {node_id!r} failed (attempt {attempt}): {message}")


class NodeTimedOut(ExecutionError):
    """A node ran past its timeout."""

    def __init__(self, *, node_id: str, timeout_s: float) -> None:
        self.node_id = node_id
        self.timeout_s = timeout_s
        super().__init__(f"node {node_id!r} timed out after {timeout_s:g} s")


class RunCancelled(ExecutionError):
    """The run was cancelled while the work was in flight."""


class RetryNode(ExecutionError):
    """Raised by a node to ask to be run again after ``after_s`` seconds (control flow)."""

    def __init__(self, *, after_s: float = 0.0, reason: str = "") -> None:
        self.after_s = after_s
        self.reason = reason
        super().__init__(f"retry after {after_s:g} s" + (f": {reason}" if reason else ""))
