"""The node registry: node types by name, and the schemas the UI builds its palette from.

Node plugins: an installed distribution that declares entry points in the group
``flowloom.nodes`` adds node types to every default registry (the server's, the workers',
``flowloom run``'s, ``flowloom.run()``'s). Each entry point loads a ``Node`` subclass or a list
of them::

    [project.entry-points."flowloom.nodes"]
    reverse = "flowloom_plugin_example:TextReverse"

They are found once per process (``installed_plugins``). One that fails to import, is not a
``Node`` subclass, declares itself badly, or takes a name already taken (a built-in's or an
earlier plugin's) is logged as a warning naming the entry point and why, and skipped.
"""

from __future__ import annotations

import difflib
import functools
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any, Final

from pydantic import BaseModel, ValidationError

from flowloom.exceptions import DefinitionError
from flowloom.nodes.agent import Agent
from flowloom.nodes.ai import LlmCall
from flowloom.nodes.base import Category, Node
from flowloom.nodes.data import JsonExtract
from flowloom.nodes.embed import Embed
from flowloom.nodes.flow import Condition, Delay, Merge, Switch
from flowloom.nodes.http import HttpRequest
from flowloom.nodes.human import Approval
from flowloom.nodes.image_gen import ImageGenerate
from flowloom.nodes.images import ImageConvert, ImageCrop, ImageLoad, ImageResize
from flowloom.nodes.lists import ListSort
from flowloom.nodes.mcp import McpToolCall
from flowloom.nodes.memory import MemoryRead, MemoryWrite
from flowloom.nodes.text import TextJoin, TextSplit, TextTemplate, TextValue
from flowloom.nodes.trigger import ManualTrigger
from flowloom.nodes.workflows import WorkflowCall

__all__ = [
    "BUILTIN_NODES",
    "ENTRY_POINT_GROUP",
    "NodeRegistry",
    "PluginProblem",
    "Plugins",
    "UnknownNodeType",
    "default_registry",
    "discover_plugins",
    "installed_plugins",
]

ENTRY_POINT_GROUP: Final = "flowloom.nodes"
"""The entry-point group node plugins declare their node classes in."""

_log = logging.getLogger("flowloom.plugins")

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
    Embed,
    ImageGenerate,
    Agent,
    McpToolCall,
)
"""Every built-in node class. ``workflow.call`` runs sub-runs through ``RunContext.subruns``,
which only an engine provides; elsewhere it fails the node saying so."""


@dataclass(frozen=True, slots=True)
class PluginProblem:
    """Why (part of) a node plugin was skipped."""

    entry_point: str
    """The entry point as declared: ``name = module:attribute``."""
    distribution: str | None
    """The installed distribution that declares it (name and version), when known."""
    reason: str

    def __str__(self) -> str:
        source = f" (from {self.distribution})" if self.distribution else ""
        return f"node plugin {self.entry_point!r}{source} skipped: {self.reason}"


@dataclass(frozen=True, slots=True)
class Plugins:
    """What the installed node plugins add, and what was skipped."""

    nodes: tuple[type[Node[Any]], ...] = ()
    problems: tuple[PluginProblem, ...] = ()


def discover_plugins(found: Iterable[EntryPoint] | None = None) -> Plugins:
    """Load the node plugins of ``found`` (default: the ``flowloom.nodes`` entry points of the
    installed distributions) and check each class as ``NodeRegistry.register`` would, against
    the built-ins and the plugins before it, and that its palette schema can be built. Nothing
    a plugin does here raises: what fails is a PluginProblem, and the rest is kept."""
    problems: list[PluginProblem] = []
    if found is None:
        try:
            found = entry_points(group=ENTRY_POINT_GROUP)
        except Exception as exc:  # broken metadata of some distribution: no plugins at all
            why = f"the installed distributions' entry points cannot be read: {_error(exc)}"
            return Plugins(problems=(PluginProblem(ENTRY_POINT_GROUP, None, why),))
    taken = {node.type_name: "a built-in" for node in BUILTIN_NODES}
    nodes: list[type[Node[Any]]] = []
    for entry_point in found:
        declared = f"{entry_point.name} = {entry_point.value}"
        reasons: list[str] = []
        for candidate in _load(entry_point, reasons):
            if (reason := _refusal(candidate, taken)) is not None:
                reasons.append(reason)
                continue
            taken[candidate.type_name] = f"the plugin {declared!r}"
            nodes.append(candidate)
        source = _distribution(entry_point) if reasons else None
        problems.extend(PluginProblem(declared, source, reason) for reason in reasons)
    return Plugins(nodes=tuple(nodes), problems=tuple(problems))


def _load(entry_point: EntryPoint, reasons: list[str]) -> list[Any]:
    """What the entry point names, as a list; empty (and why in ``reasons``) if nothing."""
    try:
        loaded = entry_point.load()
    except (Exception, SystemExit) as exc:  # a module that exits on import must not stop us
        reasons.append(f"cannot import it: {_error(exc)}")
        return []
    candidates = list(loaded) if isinstance(loaded, list | tuple) else [loaded]
    if not candidates:
        reasons.append("it names an empty list of node classes")
    return candidates


def _refusal(candidate: Any, taken: dict[str, str]) -> str | None:
    """Why ``candidate`` cannot be a plugin node type (``taken``: names -> their owner)."""
    if not (isinstance(candidate, type) and issubclass(candidate, Node)):
        return (
            f"{candidate!r} is not a Node subclass (an entry point of the group "
            f"{ENTRY_POINT_GROUP!r} names a flowloom.Node subclass or a list of them)"
        )
    try:
        # Declared well, can be created, and the palette can describe it: the server lists
        # every type's schema, so one that cannot be built would break the listing.
        _schema(NodeRegistry([candidate]).get(candidate.type_name))
    except DefinitionError as exc:
        return str(exc)
    except Exception as exc:
        return f"{candidate.__name__}: {_error(exc)}"
    owner = taken.get(candidate.type_name)
    if owner is not None:
        return f"{candidate.__name__}: node type {candidate.type_name!r} is taken by {owner}"
    return None


@functools.cache
def installed_plugins() -> Plugins:
    """The installed node plugins, discovered once per process; each problem is logged as a
    warning when they are (``installed_plugins.cache_clear()`` discovers them again)."""
    plugins = discover_plugins()
    for problem in plugins.problems:
        _log.warning("%s", problem)
    for node_class in plugins.nodes:
        _log.info("node plugin type %r loaded from %s", node_class.type_name, node_class.__module__)
    return plugins


def default_registry(*, plugins: bool = True) -> NodeRegistry:
    """A new registry holding every built-in node type and, unless ``plugins=False``, those
    of the installed node plugins (callers may register more)."""
    registry = NodeRegistry(BUILTIN_NODES)
    if plugins:
        for node_class in installed_plugins().nodes:
            registry.register(node_class)
    return registry


def _distribution(entry_point: EntryPoint) -> str | None:
    dist = getattr(entry_point, "dist", None)
    if dist is None:
        return None
    try:
        return f"{dist.name} {dist.version}"
    except Exception:  # metadata without a name or version: the entry point says enough
        return None


def _error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
