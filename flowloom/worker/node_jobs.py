"""Nodes on a queue of their own: the driver's side (``RoutedNodes``) and the worker's
(``run_job``).

A node whose type is routed (``node_queues.py``) is not run by the driver that claimed it. The
driver sends a ``flowloom.run_node`` task (a ``NodeJob``: the node's type, rendered config and
inputs, and the run's owner) to the route's queue and waits, while its lease on the node keeps
being renewed as for any running node. A worker consuming that queue takes a claim on the
attempt (``<run>/<node>/<attempt>`` in the run claims, renewed by its heartbeat thread), checks
in the database that the attempt is still RUNNING, runs the node, and pushes the outcome to a
Redis list the driver pops. The driver then applies it in a tick like any local outcome, fenced
by its lease, so a result is still written once.

What can go wrong, and what happens:

- the worker running the job dies: its attempt claim expires with the job marked started and
  no outcome; the driver, looking every claim TTL, sends the job again (same attempt, same
  idempotency key);
- the driver dies: its run is resumed elsewhere and the node claimed again as a new attempt,
  which sends a new job; the old job's outcome lands in a list nobody pops and expires, and a
  job that has not started yet finds its attempt no longer RUNNING and does nothing;
- the broker hands a job out twice: the second copy finds the claim held, or the outcome
  pushed, and does nothing.

Nodes on such a queue cannot wait for input or start sub-runs (a routed type should be a
self-contained step: image work, a heavy model); doing so fails the node, saying why.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from flowloom.engine.events import progress_publisher
from flowloom.engine.execution import Outcome, execute_attempt
from flowloom.nodes.base import RunContext, idempotency_key

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from flowloom.engine.ports import SharedRunStore
    from flowloom.engine.seams import Executor
    from flowloom.worker.claims import RunClaims

__all__ = ["NodeJob", "RoutedNodes", "run_job"]

_log = logging.getLogger("flowloom.worker")
_OUTCOME_TTL_S = 3600
"""How long an outcome nobody popped (its driver died) stays in Redis."""


@dataclass(slots=True)
class NodeJob:
    """One attempt of one routed node: what its task carries."""

    run_id: str
    node_id: str
    attempt: int
    row_id: str
    node_type: str
    config: dict[str, Any]
    inputs: dict[str, Any]
    outputs: list[str]
    timeout_s: float | None
    owner_id: str
    workflow_id: str | None = None
    api_key_id: str | None = None
    run_inputs: dict[str, Any] = field(default_factory=dict)

    @property
    def claim_id(self) -> str:
        """The attempt's name among the run claims (never a run id: it holds slashes)."""
        return f"{self.run_id}/{self.node_id}/{self.attempt}"

    def to_wire(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> NodeJob:
        return cls(**data)


def outcome_key(claims: RunClaims, job: NodeJob) -> str:
    return f"{claims.key(job.claim_id)}:outcome"


def started_key(claims: RunClaims, job: NodeJob) -> str:
    """Set by the worker that takes the job, taken by the driver that finds it died."""
    return f"{claims.key(job.claim_id)}:started"


class RoutedNodes:
    """The driver's side: send a job to its queue and wait for its outcome."""

    def __init__(
        self,
        redis: Redis,
        claims: RunClaims,
        send: Callable[[str, dict[str, Any]], None],
        *,
        check_s: float,
    ) -> None:
        self.redis = redis
        self.claims = claims
        self._send = send
        self.check_s = check_s
        """How often the waiting driver looks whether the job's worker is still alive."""

    async def run(self, queue: str, job: NodeJob) -> Outcome:
        """The job's outcome, however many times it had to be sent; never raises but
        ``CancelledError`` (a queue that cannot be reached is a retryable failure)."""
        key = outcome_key(self.claims, job)
        if (sent := await self._try_send(queue, job)) is not None:
            return sent
        while True:
            popped = await self.redis.blpop([key], timeout=self.check_s)
            if popped is not None:
                return Outcome.from_wire(json.loads(popped[1]))
            if await self.claims.holder(job.claim_id) is not None:
                continue
            if await self.redis.getdel(started_key(self.claims, job)) is not None:
                # A worker started it, and its claim is gone without an outcome: it died.
                _log.warning(
                    "run %s: the worker running %s on %s was lost; sending it again",
                    job.run_id,
                    job.node_id,
                    queue,
                )
                if (sent := await self._try_send(queue, job)) is not None:
                    return sent

    async def _try_send(self, queue: str, job: NodeJob) -> Outcome | None:
        try:
            await asyncio.to_thread(self._send, queue, job.to_wire())
        except Exception as exc:
            message = f"could not queue it on {queue}: {type(exc).__name__}: {exc}"
            error = {"message": message, "type": "QueueUnavailable"}
            return Outcome(job.node_id, job.attempt, error=error, retryable=True)
        return None


async def run_job(
    engine: Executor, shared: SharedRunStore, claims: RunClaims, owner: str, job: NodeJob
) -> str:
    """The worker's side: run the job unless it is done, running or no longer wanted; push
    its outcome for the driver. What happened, in words."""
    key = outcome_key(claims, job)
    redis = claims.redis
    if await redis.exists(key):
        return "done already"
    if not await claims.take(job.claim_id, owner):
        return "running on another worker"
    await redis.set(started_key(claims, job), owner, ex=_OUTCOME_TTL_S)
    try:
        if not await shared.attempt_wanted(job.row_id, job.attempt):
            return "no longer wanted: its driver gave the attempt up"
        outcome = await _execute(engine, job)
        async with redis.pipeline(transaction=True) as pipe:
            pipe.rpush(key, json.dumps(outcome.to_wire(), ensure_ascii=False))
            pipe.expire(key, _OUTCOME_TTL_S)
            pipe.delete(started_key(claims, job))
            await pipe.execute()
        return "failed" if outcome.error is not None else "succeeded"
    finally:
        await claims.release(job.claim_id, owner)


async def _execute(engine: Executor, job: NodeJob) -> Outcome:
    node = engine.registry.find(job.node_type)
    if node is None:
        message = f"this worker has no node type {job.node_type!r} (install its plugin here)"
        return Outcome(job.node_id, job.attempt, error={"message": message, "type": "NodeFailed"})
    try:
        config = node.parse_config(job.config)
    except Exception as exc:
        message = f"its config did not reach this worker intact: {exc}"
        return Outcome(job.node_id, job.attempt, error={"message": message, "type": "NodeFailed"})
    store = engine.store
    owner_id = job.owner_id

    async def owns(sha256: str) -> bool:
        return await store.owns_blob(owner_id=owner_id, sha256=sha256)

    blobs = engine.blobs.for_owner(owner_id, owns)
    ctx = RunContext(
        run_id=job.run_id,
        node_id=job.node_id,
        attempt=job.attempt,
        idempotency_key=idempotency_key(job.run_id, job.node_id),
        blobs=blobs,
        memory=store.memory(owner_id=owner_id, workflow_id=job.workflow_id or ""),
        workflow_id=job.workflow_id,
        run_inputs=job.run_inputs,
        settings=engine.node_settings,
        owner_id=owner_id,
        providers=engine.providers,
        usage=store.usage(owner_id=owner_id, api_key_id=job.api_key_id, run_id=job.run_id),
        integrations=engine.integrations,
        secrets=engine.http_secrets,
        progress=progress_publisher(engine.bus, job.run_id, job.node_id, job.attempt),
    )
    outcome = await execute_attempt(
        engine.concurrency,
        node,
        config,
        ctx,
        job.inputs,
        timeout_s=job.timeout_s,
        outputs=job.outputs,
    )
    if outcome.wait is not None:
        message = "a node on a queue of its own cannot wait for input"
        return Outcome(job.node_id, job.attempt, error={"message": message, "type": "NodeFailed"})
    outcome.stored = tuple(blobs.stored)
    return outcome
