"""The workflow definition: one JSON document per workflow version, in React Flow's own shape.

The canvas saves ``{nodes, edges}`` exactly as React Flow holds them, so every model here keeps
keys it does not know (``measured``, ``selected``, ``width``, an edge's ``animated``, the
document's ``viewport``...) and :meth:`WorkflowDefinition.to_json` gives them back unchanged.
Handles are port names: an edge runs from ``source``'s output ``sourceHandle`` to ``target``'s
input ``targetHandle``.

``annotations`` are what the canvas draws beside the graph, as React Flow nodes of their own
types: sticky notes (text) and groups (a labelled frame behind nodes). The engine never reads
them; they are checked (shape, bounds, ids distinct from every node's) so that a definition
stays small and the canvas can trust them.
"""

from __future__ import annotations

import json
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from flowloom.exceptions import Problem, ValidationFailed

__all__ = [
    "MAX_ANNOTATIONS",
    "SCHEMA_VERSION",
    "Annotation",
    "AnnotationData",
    "EdgeDefinition",
    "NodeData",
    "NodeDefinition",
    "Position",
    "WorkflowDefinition",
    "parse_definition",
    "parse_definition_json",
]

SCHEMA_VERSION: Final = 1
MAX_ANNOTATIONS: Final = 500
"""Sticky notes and groups one workflow may hold."""
_MAX_NOTE_CHARS: Final = 10_000
_MAX_SIDE: Final = 20_000.0


class _Keeps(BaseModel):
    """A part of the document that keeps unknown keys, so the canvas round-trips unchanged."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)


class Position(_Keeps):
    """Where the node sits on the canvas."""

    x: float
    y: float


class NodeData(_Keeps):
    """React Flow's free-form ``data``: flowloom reads ``label`` and ``config`` from it."""

    label: str | None = None
    config: dict[str, Any] = Field(default_factory=dict)
    """The node's configuration; validated by its type's config model."""
    pinned: dict[str, Any] | None = None
    """Outputs pinned as test data, by output port: a run asked to use pinned data takes
    them instead of running the node."""


class NodeDefinition(_Keeps):
    """One node of the graph as React Flow stores it."""

    id: str = Field(min_length=1)
    type: str = Field(min_length=1)
    """A registered node type name such as ``text.template``."""
    position: Position = Field(default_factory=lambda: Position(x=0, y=0))
    data: NodeData = Field(default_factory=NodeData)

    @property
    def config(self) -> dict[str, Any]:
        return self.data.config


class EdgeDefinition(_Keeps):
    """A wire from one node's output port to another node's input port."""

    id: str = Field(min_length=1)
    source: str = Field(min_length=1)
    source_handle: str = Field(alias="sourceHandle", min_length=1)
    """The name of the source node's output port."""
    target: str = Field(min_length=1)
    target_handle: str = Field(alias="targetHandle", min_length=1)
    """The name of the target node's input port."""


class AnnotationData(BaseModel):
    """What a note says, or what a group is called, and its colour."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(default="", max_length=_MAX_NOTE_CHARS)
    """A note's text (plain text, line breaks kept)."""
    label: str = Field(default="", max_length=200)
    """A group's title."""
    color: Literal["yellow", "blue", "green", "pink", "purple", "gray"] = "yellow"


class Annotation(BaseModel):
    """A sticky note or a group on the canvas; the engine ignores it."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=100)
    type: Literal["note", "group"]
    position: Position
    width: float = Field(default=240.0, ge=40.0, le=_MAX_SIDE)
    height: float = Field(default=160.0, ge=40.0, le=_MAX_SIDE)
    data: AnnotationData = Field(default_factory=AnnotationData)


class WorkflowDefinition(_Keeps):
    """A whole workflow: nodes and the edges between them, and the canvas's annotations."""

    schema_version: Literal[1] = SCHEMA_VERSION
    nodes: list[NodeDefinition] = Field(default_factory=list)
    edges: list[EdgeDefinition] = Field(default_factory=list)
    annotations: list[Annotation] = Field(default_factory=list, max_length=MAX_ANNOTATIONS)
    """Sticky notes and groups (see the module); never part of a run."""

    def node_map(self) -> dict[str, NodeDefinition]:
        """Nodes by id; with duplicate ids (an invalid definition) the first one wins."""
        found: dict[str, NodeDefinition] = {}
        for node in self.nodes:
            found.setdefault(node.id, node)
        return found

    def pinned_outputs(self) -> dict[str, dict[str, Any]]:
        """The pinned outputs of every node that has them, by node id."""
        return {node.id: node.data.pinned for node in self.nodes if node.data.pinned is not None}

    def to_json(self) -> dict[str, Any]:
        """The document as the canvas stores it: React Flow's key names, unknown keys kept."""
        data = self.model_dump(mode="json", by_alias=True, exclude_unset=True)
        data["schema_version"] = self.schema_version
        return data


def parse_definition(data: Any) -> WorkflowDefinition:
    """A definition from decoded JSON, or ValidationFailed naming every malformed part.

    Only the shape is checked here (node types, configs and edges are checked by
    :func:`flowloom.graph.validate`). Each problem carries the node id when the broken part
    belongs to a node, and ``field`` holds its path in the document (``nodes.2.position.x``).
    """
    if not isinstance(data, dict):
        raise ValidationFailed(
            [Problem("a workflow definition is a JSON object with 'nodes' and 'edges'")]
        )
    try:
        return WorkflowDefinition.model_validate(data)
    except ValidationError as exc:
        raise ValidationFailed(_shape_problems(exc, data)) from None


def parse_definition_json(text: str | bytes) -> WorkflowDefinition:
    """A definition from JSON text; text that is not JSON is one problem with its position."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValidationFailed(
            [Problem(f"not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}")]
        ) from None
    return parse_definition(data)


def _shape_problems(exc: ValidationError, data: dict[str, Any]) -> list[Problem]:
    problems = []
    for error in exc.errors():
        loc = error["loc"]
        node_id: str | None = None
        message = error["msg"]
        if len(loc) >= 2 and loc[0] in ("nodes", "edges") and isinstance(loc[1], int):
            item = _item(data, str(loc[0]), loc[1])
            item_id = item.get("id") if isinstance(item, dict) else None
            if isinstance(item_id, str) and item_id:
                if loc[0] == "nodes":
                    node_id = item_id
                else:
                    message = f"edge {item_id!r}: {message}"
        path = ".".join(str(part) for part in loc)
        problems.append(Problem(message, node_id=node_id, field=path or None))
    return problems


def _item(data: dict[str, Any], key: str, index: int) -> Any:
    items = data.get(key)
    if isinstance(items, list) and 0 <= index < len(items):
        return items[index]
    return None
