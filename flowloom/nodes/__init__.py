"""Node types: the contract every node follows, the registry, and the built-in families.

Nodes never import the API or storage layers: what they need from outside reaches them through
the :class:`RunContext` the engine passes to ``run``; :mod:`flowloom.testing` has fakes of it.
"""

from flowloom.nodes.base import (
    BlobStore,
    Category,
    MemoryItem,
    MemoryStore,
    Node,
    NodeConfig,
    NodeResult,
    NodeSettings,
    Port,
    PortType,
    RunContext,
    WaitForInput,
    idempotency_key,
)
from flowloom.nodes.registry import BUILTIN_NODES, NodeRegistry, UnknownNodeType, default_registry

__all__ = [
    "BUILTIN_NODES",
    "BlobStore",
    "Category",
    "MemoryItem",
    "MemoryStore",
    "Node",
    "NodeConfig",
    "NodeRegistry",
    "NodeResult",
    "NodeSettings",
    "Port",
    "PortType",
    "RunContext",
    "UnknownNodeType",
    "WaitForInput",
    "default_registry",
    "idempotency_key",
]
