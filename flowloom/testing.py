"""Fakes that ship with flowloom, for testing nodes (and code that runs them) without storage.

``make_context()`` builds a :class:`~flowloom.nodes.RunContext` over an in-memory blob store and
an in-memory workflow memory; ``run_node()`` validates a config, resolves inputs the way the
engine does (wired value, else config literal, else port default) and runs one node::

    ctx = make_context(run_inputs={"name": "Ada"})
    result = await run_node("text.template", {"template": "Hi {{ name }}", "variables": ["name"]},
                            {"name": "Ada"}, ctx=ctx)
    assert result.outputs == {"text": "Hi Ada"}
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from flowloom.exceptions import NotFound, Problem, ValidationFailed
from flowloom.graph.validation import config_problems
from flowloom.ids import new_id
from flowloom.nodes.base import (
    HttpClientFactory,
    MemoryItem,
    NodeResult,
    NodeSettings,
    RunContext,
    default_http_client,
    idempotency_key,
)
from flowloom.nodes.memory import memory_value_type
from flowloom.nodes.registry import NodeRegistry, default_registry

__all__ = ["InMemoryBlobStore", "InMemoryMemoryStore", "make_context", "run_node"]


class InMemoryBlobStore:
    """A content-addressed blob store in a dict, keyed by SHA-256."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}

    async def put(self, data: bytes) -> str:
        sha256 = hashlib.sha256(data).hexdigest()
        self.blobs[sha256] = bytes(data)
        return sha256

    async def read(self, sha256: str) -> bytes:
        try:
            return self.blobs[sha256]
        except KeyError:
            raise NotFound("blob", sha256) from None


class InMemoryMemoryStore:
    """One workflow's keyed memory in a dict, with expiry measured by an injectable clock.

    ``clock`` returns seconds (``time.time`` by default); tests pass their own to expire
    values without sleeping.
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._items: dict[str, tuple[Any, str, float | None]] = {}

    async def get(self, key: str) -> MemoryItem | None:
        entry = self._items.get(key)
        if entry is None:
            return None
        value, value_type, expires = entry
        if expires is not None and self._clock() >= expires:
            del self._items[key]
            return None
        return MemoryItem(key, value, value_type, _as_datetime(expires))

    async def set(self, key: str, value: Any, *, ttl_s: float | None = None) -> MemoryItem:
        value_type = memory_value_type(value)
        if value_type is None:
            raise TypeError(f"memory holds JSON values, not {type(value).__name__}")
        expires = None if ttl_s is None else self._clock() + ttl_s
        self._items[key] = (value, value_type, expires)
        return MemoryItem(key, value, value_type, _as_datetime(expires))

    async def delete(self, key: str) -> bool:
        live = await self.get(key) is not None
        self._items.pop(key, None)
        return live


def _as_datetime(timestamp: float | None) -> datetime | None:
    return None if timestamp is None else datetime.fromtimestamp(timestamp, UTC)


def make_context(
    *,
    node_id: str = "node",
    run_id: str | None = None,
    attempt: int = 1,
    workflow_id: str | None = None,
    run_inputs: Mapping[str, Any] | None = None,
    answer: Mapping[str, Any] | None = None,
    blobs: InMemoryBlobStore | None = None,
    memory: InMemoryMemoryStore | None = None,
    settings: NodeSettings | None = None,
    allow_private_http: bool = False,
    http_client: HttpClientFactory = default_http_client,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> RunContext:
    """A RunContext over fresh in-memory stores (or the ones given).

    ``allow_private_http`` is a shortcut for ``settings=NodeSettings(allow_private_http=True)``.
    """
    run_id = run_id or new_id("run")
    if settings is None:
        settings = NodeSettings(allow_private_http=allow_private_http)
    return RunContext(
        run_id=run_id,
        node_id=node_id,
        attempt=attempt,
        idempotency_key=idempotency_key(run_id, node_id),
        workflow_id=workflow_id,
        run_inputs=dict(run_inputs or {}),
        answer=answer,
        blobs=blobs if blobs is not None else InMemoryBlobStore(),
        memory=memory if memory is not None else InMemoryMemoryStore(),
        settings=settings,
        http_client=http_client,
        sleep=sleep,
    )


async def run_node(
    type_name: str,
    config: Mapping[str, Any] | None = None,
    inputs: Mapping[str, Any] | None = None,
    *,
    ctx: RunContext | None = None,
    registry: NodeRegistry | None = None,
) -> NodeResult:
    """Run one node as the engine would, outside any graph.

    Raises ValidationFailed (with field paths) for a bad config or a missing required input,
    and AssertionError if the node emits an output it does not declare.
    """
    node = (registry or default_registry()).get(type_name)
    raw = dict(config or {})
    try:
        parsed = node.parse_config(raw)
    except ValidationError as exc:
        raise ValidationFailed(config_problems(None, exc)) from None
    given = dict(inputs or {})
    resolved: dict[str, Any] = {}
    for port in node.inputs(parsed):
        if port.name in given:
            resolved[port.name] = given[port.name]
        elif raw.get(port.name) is not None:
            resolved[port.name] = raw[port.name]
        elif port.has_default:
            resolved[port.name] = port.default
        elif port.required:
            raise ValidationFailed([Problem("required input has no value", port=port.name)])
    result = await node.run(ctx or make_context(), parsed, resolved)
    declared = {port.name for port in node.outputs(parsed)}
    undeclared = set(result.outputs) - declared
    assert not undeclared, f"{type_name} emitted undeclared outputs {sorted(undeclared)}"
    return result
