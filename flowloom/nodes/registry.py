"""The node registry: node types by name, and the schemas the UI builds its palette from."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from typing import Any, Final

from pydantic import BaseModel, ValidationError

from flowloom.exceptions import DefinitionError
from flowloom.nodes.agent import Agent
from flowloom.nodes.ai import LlmCall
from flowloom.nodes.base import Category, Node
from flowloom.nodes.data import JsonExtract
from flowloom.nodes.flow import Condition, Delay, Merge, Switch
from flowloom.nodes.http import HttpRequest
from flowloom.nodes.human import Approval
from flowloom.nodes.images import ImageConvert, ImageCrop, ImageLoad, ImageResize
from flowloom.nodes.lists import ListSort
from flowloom.nodes.mcp import McpToolCall
from flowloom.nodes.memory import MemoryRead, MemoryWrite
from flowloom.nodes.text import TextJoin, TextSplit, TextTemplate, TextValue
from flowloom.nodes.trigger import ManualTrigger
from flowloom.nodes.workflows import WorkflowCall

__all__ = ["BUILTIN_NODES", "NodeRegistry", "UnknownNodeType", "default_registry"]

_TYPE_NAME: Final = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")


class UnknownNodeType(DefinitionError):
    """No node type of that name is registered; the message suggests close names."""

    def __init__(self, type_name: str, known: Iterable[str]) -> None:
        self.type_name = type_name
        message = f"unknown node type {type_name!r}"
        close = difflib.get_close_matches(type_name, list(known), n=3)
        if close:
            message += f"; did you mean {', '.join(repr(name) for name in close)}?"
        super().__init__(message)


class NodeRegistry:
    """Node types by ``type_name``; one stateless instance of each."""

    def __init__(self, node_classes: Iterable[type[Node[Any]]] = ()) -> None:
        self._nodes: dict[str, Node[Any]] = {}
        for node_class in node_classes:
            self.register(node_class)

    def register(self, node_class: type[Node[Any]], *, replace: bool = False) -> None:
        """Add a node type. Refuses malformed declarations and, unless ``replace``, a name
        that is already taken (type names are a public contract; shadowing one is a bug)."""
        name = getattr(node_class, "type_name", None)
        if not isinstance(name, str) or not _TYPE_NAME.match(name):
            raise DefinitionError(
                f"{node_class.__name__}.type_name must look like 'family.name', got {name!r}"
            )
        if not isinstance(getattr(node_class, "category", None), Category):
            raise DefinitionError(f"{name}: category must be a Category")
        if not (isinstance(node_class.version, int) and node_class.version >= 1):
            raise DefinitionError(f"{name}: version must be a positive integer")
        if not (isinstance(node_class.Config, type) and issubclass(node_class.Config, BaseModel)):
            raise DefinitionError(f"{name}: Config must be a pydantic model")
        if name in self._nodes and not replace:
            raise DefinitionError(f"node type {name!r} is already registered")
        self._nodes[name] = node_class()

    def get(self, type_name: str) -> Node[Any]:
        """The node type called ``type_name``; UnknownNodeType (suggesting names) if none."""
        node = self._nodes.get(type_name)
        if node is None:
            raise UnknownNodeType(type_name, self._nodes)
        return node

    def find(self, type_name: str) -> Node[Any] | None:
        """The node type called ``type_name``, or None."""
        return self._nodes.get(type_name)

    def names(self) -> list[str]:
        return sorted(self._nodes)

    def all(self) -> list[Node[Any]]:
        """Every node type, by name."""
        return [self._nodes[name] for name in sorted(self._nodes)]

    def __contains__(self, type_name: object) -> bool:
        return type_name in self._nodes

    def __len__(self) -> int:
        return len(self._nodes)

    def schema(self, type_name: str) -> dict[str, Any]:
        """What the palette needs about one type (see :meth:`schemas`)."""
        return _schema(self.get(type_name))

    def schemas(self) -> list[dict[str, Any]]:
        """For each type, by name: ``type``, ``category``, ``version``, ``deterministic``,
        ``description``, ``config_schema`` (JSON Schema of its config), ``inputs`` and
        ``outputs`` (ports of the default config) and ``dynamic_ports`` (ports change with
        the config, so the UI asks again after an edit)."""
        return [_schema(node) for node in self.all()]


def _schema(node: Node[Any]) -> dict[str, Any]:
    try:
        config = node.parse_config({})
    except ValidationError:
        # Types with required settings (a URL, an expression) have ports that do not depend
        # on them, so an unvalidated config with the defaults that exist is enough to list them.
        config = node.Config.model_construct()
    return {
        "type": node.type_name,
        "category": node.category.value,
        "version": node.version,
        "deterministic": node.deterministic,
        "description": node.description(),
        "dynamic_ports": node.dynamic_ports,
        "config_schema": node.Config.model_json_schema(),
        "inputs": [port.to_json() for port in node.inputs(config)],
        "outputs": [port.to_json() for port in node.outputs(config)],
    }


BUILTIN_NODES: Final[tuple[type[Node[Any]], ...]] = (
    ManualTrigger,
    TextValue,
    TextTemplate,
    TextJoin,
    TextSplit,
    ListSort,
    JsonExtract,
    Condition,
    Switch,
    Merge,
    Delay,
    Approval,
    MemoryRead,
    MemoryWrite,
    ImageLoad,
    ImageCrop,
    ImageResize,
    ImageConvert,
    HttpRequest,
    WorkflowCall,
    LlmCall,
    Agent,
    McpToolCall,
)
"""Every built-in node class. ``workflow.call`` runs sub-runs through ``RunContext.subruns``,
which only an engine provides; elsewhere it fails the node saying so."""


def default_registry() -> NodeRegistry:
    """A new registry holding every built-in node type (callers may register more)."""
    return NodeRegistry(BUILTIN_NODES)
