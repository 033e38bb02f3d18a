"""One attempt of one node, and how it ended (``Outcome``): what the driver applies in a tick.

``execute_attempt`` never raises but ``CancelledError``: every way a node can end (outputs, a
failure, a retry asked for, a wait, a timeout, outputs no database can store) becomes an
``Outcome``. The driver runs it in its own process; a worker of a routed queue runs it for a
driver elsewhere and sends the outcome back in its wire form (``to_wire``/``from_wire``).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from flowloom.engine.unstorable import UNSTORABLE_OUTPUT, outputs_problem, storable_text
from flowloom.exceptions import NodeFailed, RetryNode
from flowloom.nodes.base import Node, RunContext, WaitForInput
from flowloom.storable import find_unstorable

__all__ = ["Outcome", "execute_attempt"]


@dataclass(slots=True)
class Outcome:
    """How one attempt of one node ended."""

    node_id: str
    attempt: int
    outputs: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    retryable: bool = False
    retry_after_s: float | None = None
    wait: WaitForInput | None = None
    stored: tuple[str, ...] = ()
    """Blobs the attempt stored, when it ran in another process (their artifact rows)."""

    def to_wire(self) -> dict[str, Any]:
        """The outcome as JSON-ready data (a wait cannot travel: routed nodes do not wait)."""
        return {
            "node_id": self.node_id,
            "attempt": self.attempt,
            "outputs": self.outputs,
            "error": self.error,
            "retryable": self.retryable,
            "retry_after_s": self.retry_after_s,
            "stored": list(self.stored),
        }

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> Outcome:
        return cls(
            node_id=str(data["node_id"]),
            attempt=int(data["attempt"]),
            outputs=data.get("outputs"),
            error=data.get("error"),
            retryable=bool(data.get("retryable")),
            retry_after_s=data.get("retry_after_s"),
            stored=tuple(str(sha) for sha in data.get("stored") or ()),
        )


async def execute_attempt(
    limit: asyncio.Semaphore,
    node: Node[Any],
    config: Any,
    ctx: RunContext,
    inputs: dict[str, Any],
    *,
    timeout_s: float | None,
    outputs: Collection[str],
) -> Outcome:
    """Run one attempt of one node and say how it ended; never raises but CancelledError."""
    node_id, attempt = ctx.node_id, ctx.attempt
    try:
        async with limit:
            if timeout_s is None:
                result = await node.run(ctx, config, inputs)
            else:
                async with asyncio.timeout(timeout_s) as scope:
                    try:
                        result = await node.run(ctx, config, inputs)
                    except TimeoutError:
                        if scope.expired():
                            raise
                        raise _OwnTimeout() from None
    except WaitForInput as wait:
        found = find_unstorable({"reason": wait.reason, "payload": wait.payload}, "wait")
        if found is not None:
            message = f"{found.message()}; it cannot be stored"
            return Outcome(node_id, attempt, error={"message": message, "type": UNSTORABLE_OUTPUT})
        return Outcome(node_id, attempt, wait=wait)
    except RetryNode as retry:
        return Outcome(
            node_id, attempt, error=_error(retry), retryable=True, retry_after_s=retry.after_s
        )
    except NodeFailed as failed:
        return Outcome(node_id, attempt, error=_error(failed), retryable=failed.retryable)
    except TimeoutError:
        message = f"node {node_id!r} timed out after {timeout_s:g} s"
        return Outcome(
            node_id, attempt, error={"message": message, "type": "NodeTimedOut"}, retryable=True
        )
    except _OwnTimeout:
        return Outcome(node_id, attempt, error={"message": "TimeoutError", "type": "TimeoutError"})
    except Exception as exc:
        return Outcome(node_id, attempt, error=_error(exc))
    produced = result.outputs
    undeclared = set(produced) - set(outputs)
    if undeclared:
        message = f"emitted outputs it does not declare: {', '.join(sorted(undeclared))}"
        return Outcome(node_id, attempt, error={"message": message, "type": "NodeFailed"})
    try:
        encoded = json.dumps(produced, allow_nan=False, ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        message = f"outputs are not JSON (binary data belongs in the blob store): {exc}"
        return Outcome(node_id, attempt, error={"message": message, "type": "NodeFailed"})
    problem = outputs_problem(produced, encoded)
    if problem is not None:
        # Refused here, before any commit: the node fails, its run stays writable.
        return Outcome(node_id, attempt, error={"message": problem, "type": UNSTORABLE_OUTPUT})
    return Outcome(node_id, attempt, outputs=produced)


class _OwnTimeout(Exception):
    """The node raised TimeoutError itself: a failure like any other, not our timeout."""


def _error(exc: BaseException) -> dict[str, Any]:
    message = str(exc)
    if isinstance(exc, NodeFailed):
        # NodeFailed's text repeats the node and attempt, which the row already records.
        message = message.split("): ", 1)[-1]
    return {"message": storable_text(message) or type(exc).__name__, "type": type(exc).__name__}
