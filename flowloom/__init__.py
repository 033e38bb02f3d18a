"""flowloom: draw a graph of AI steps, run it, and read every run back, node by node.

The public face of the package, for running workflows from Python and for writing node plugins::

    import flowloom

    result = flowloom.run("flow.json", inputs={"name": "Ada"})

    async with flowloom.Flowloom(data_dir=".flowloom") as fl:
        result = await fl.run("flow.json", inputs={"name": "Ada"})

    class Reverse(flowloom.Node[flowloom.NodeConfig]):   # a plugin's node type
        type_name = "text.reverse"
        category = flowloom.Category.ACTION
        ...

Everything else lives in submodules, whose names may change. The names here are imported on
first use, so that ``import flowloom.settings`` (say) does not load the engine.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from flowloom.embedding import Flowloom, NodeOutcome, RunOutcome, WorkflowSource, run
    from flowloom.exceptions import (
        ConfigurationError,
        DefinitionError,
        ExecutionError,
        FlowloomError,
        InputError,
        NodeFailed,
        NodeTimedOut,
        NotFound,
        Problem,
        RetryNode,
        StorageError,
        ValidationFailed,
    )
    from flowloom.graph import WorkflowDefinition
    from flowloom.graph.ports import NO_DEFAULT, Port, PortType
    from flowloom.nodes.base import (
        BlobStore,
        Category,
        MemoryItem,
        MemoryStore,
        Node,
        NodeConfig,
        NodeResult,
        NodeSettings,
        RunContext,
        WaitForInput,
    )
    from flowloom.nodes.registry import NodeRegistry
    from flowloom.storage.enums import NodeStatus, RunStatus

__all__ = [
    "NO_DEFAULT",
    "BlobStore",
    "Category",
    "ConfigurationError",
    "DefinitionError",
    "ExecutionError",
    "Flowloom",
    "FlowloomError",
    "InputError",
    "MemoryItem",
    "MemoryStore",
    "Node",
    "NodeConfig",
    "NodeFailed",
    "NodeOutcome",
    "NodeRegistry",
    "NodeResult",
    "NodeSettings",
    "NodeStatus",
    "NodeTimedOut",
    "NotFound",
    "Port",
    "PortType",
    "Problem",
    "RetryNode",
    "RunContext",
    "RunOutcome",
    "RunStatus",
    "StorageError",
    "ValidationFailed",
    "WaitForInput",
    "WorkflowDefinition",
    "WorkflowSource",
    "__version__",
    "run",
]

_HOME = {
    "flowloom.embedding": ("Flowloom", "NodeOutcome", "RunOutcome", "WorkflowSource", "run"),
    "flowloom.exceptions": (
        "ConfigurationError",
        "DefinitionError",
        "ExecutionError",
        "FlowloomError",
        "InputError",
        "NodeFailed",
        "NodeTimedOut",
        "NotFound",
        "Problem",
        "RetryNode",
        "StorageError",
        "ValidationFailed",
    ),
    "flowloom.graph": ("WorkflowDefinition",),
    "flowloom.graph.ports": ("NO_DEFAULT", "Port", "PortType"),
    "flowloom.nodes.base": (
        "BlobStore",
        "Category",
        "MemoryItem",
        "MemoryStore",
        "Node",
        "NodeConfig",
        "NodeResult",
        "NodeSettings",
        "RunContext",
        "WaitForInput",
    ),
    "flowloom.nodes.registry": ("NodeRegistry",),
    "flowloom.storage.enums": ("NodeStatus", "RunStatus"),
}
_MODULE_OF = {name: module for module, names in _HOME.items() for name in names}


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'flowloom' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # the next lookup finds it without calling here
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
