"""Memory nodes: read and write the workflow's keyed memory (kept between runs)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from flowloom.nodes.base import Category, Node, NodeConfig, NodeResult, Port, PortType, RunContext

__all__ = [
    "MemoryRead",
    "MemoryReadConfig",
    "MemoryWrite",
    "MemoryWriteConfig",
    "memory_value_type",
]

MemoryValueType = Literal["string", "number", "boolean", "object", "array", "null"]


def memory_value_type(value: Any) -> MemoryValueType | None:
    """The JSON type a value is stored as, or None for a value JSON cannot hold."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return None


class MemoryReadConfig(NodeConfig):
    key: str = Field(min_length=1, max_length=200)
    """The memory key."""
    default: Any = None
    """Output when the key holds nothing (or its value expired)."""


class MemoryRead(Node[MemoryReadConfig]):
    """The value stored under a key of the workflow's memory, and whether there was one."""

    type_name = "memory.read"
    display_name = "Read memory"
    icon = "memory-read"
    category = Category.MEMORY
    deterministic = False
    Config = MemoryReadConfig

    def outputs(self, config: MemoryReadConfig) -> list[Port]:
        return [Port("value", PortType.ANY), Port("found", PortType.BOOLEAN)]

    async def run(
        self, ctx: RunContext, config: MemoryReadConfig, inputs: dict[str, Any]
    ) -> NodeResult:
        item = await ctx.memory.get(config.key)
        if item is None:
            return NodeResult({"value": config.default, "found": False})
        return NodeResult({"value": item.value, "found": True})


class MemoryWriteConfig(NodeConfig):
    key: str = Field(min_length=1, max_length=200)
    """The memory key."""
    value_type: MemoryValueType | None = None
    """Refuse values of any other JSON type; empty accepts any."""
    ttl_s: float | None = Field(default=None, gt=0)
    """Forget the value after this many seconds; empty keeps it."""


class MemoryWrite(Node[MemoryWriteConfig]):
    """Store the input under a key of the workflow's memory, and pass it on."""

    type_name = "memory.write"
    display_name = "Write memory"
    icon = "memory-write"
    category = Category.MEMORY
    deterministic = False
    Config = MemoryWriteConfig

    def inputs(self, config: MemoryWriteConfig) -> list[Port]:
        return [Port("value", PortType.ANY)]

    def outputs(self, config: MemoryWriteConfig) -> list[Port]:
        return [Port("value", PortType.ANY)]

    async def run(
        self, ctx: RunContext, config: MemoryWriteConfig, inputs: dict[str, Any]
    ) -> NodeResult:
        value = inputs.get("value")
        kind = memory_value_type(value)
        if kind is None:
            raise ctx.fail(f"cannot store a {type(value).__name__} in memory (JSON values only)")
        if config.value_type is not None and kind != config.value_type:
            raise ctx.fail(f"key {config.key!r} takes {config.value_type} values, got {kind}")
        await ctx.memory.set(config.key, value, ttl_s=config.ttl_s)
        return NodeResult({"value": value})
