"""Node types: what the canvas palette, the nodes and the config forms are built from."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from flowloom.api.deps import AppStateDep, WorkflowReader
from flowloom.api.schemas import Page
from flowloom.api.state import AppState
from flowloom.exceptions import NotFound
from flowloom.graph.ports import PortType
from flowloom.nodes.base import Category

__all__ = ["CATEGORY_COLORS", "NodeTypePublic", "PortPublic", "router"]

router = APIRouter(prefix="/node-types", tags=["node types"])

CATEGORY_COLORS: dict[str, str] = {
    Category.TRIGGER: "#0d9488",
    Category.AI_AGENT: "#7c3aed",
    Category.EXTERNAL_ACTION: "#2563eb",
    Category.ACTION: "#475569",
    Category.FLOW: "#d97706",
    Category.HUMAN_IN_THE_LOOP: "#db2777",
    Category.TOOL: "#0891b2",
    Category.MEMORY: "#65a30d",
}
"""A node's accent colour when its type names none: one per category, readable on light and
dark backgrounds alike."""


class PortPublic(BaseModel):
    """One input or output port of a node type."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    name: str
    type: PortType
    required: bool
    is_list: bool
    """A list port joins the values of several edges, in edge order."""
    description: str
    default: Any = None
    """The value an unwired, unset input takes (absent when it has none)."""


class NodeTypePublic(BaseModel):
    """One node type, as the palette, the canvas and the config form show it."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    type: str
    """The type id saved in workflows (``text.template``)."""
    display_name: str
    """The name people read (``Text template``)."""
    description: str
    """One or two sentences on what the node does."""
    icon: str
    """A name of the UI's icon set or the path data of a 24x24 SVG icon; empty: the category's."""
    color: str
    """The accent colour, ``#rrggbb``."""
    category: Category
    version: int
    deterministic: bool
    dynamic_ports: bool
    """The ports change with the config (the UI derives them again after an edit)."""
    config_schema: dict[str, Any] = Field(default_factory=dict)
    """The JSON Schema of the config."""
    inputs: list[PortPublic]
    outputs: list[PortPublic]


def _humanize(type_name: str) -> str:
    words = type_name.replace(".", " ").replace("_", " ").strip()
    return words[:1].upper() + words[1:]


def _public(state: AppState, schema: dict[str, Any]) -> NodeTypePublic:
    node = state.registry.get(schema["type"])
    return NodeTypePublic.model_validate(
        {
            **schema,
            "display_name": node.display_name or _humanize(node.type_name),
            "icon": node.icon,
            "color": node.color or CATEGORY_COLORS.get(node.category, "#64748b"),
        }
    )


@router.get("")
async def list_node_types(caller: WorkflowReader, state: AppStateDep) -> Page[NodeTypePublic]:
    """Every node type with its name, icon, category, ports and the JSON Schema of its config."""
    return Page(items=[_public(state, schema) for schema in state.node_types.values()])


@router.get("/{type_name}")
async def read_node_type(
    type_name: str, caller: WorkflowReader, state: AppStateDep
) -> NodeTypePublic:
    schema = state.node_types.get(type_name)
    if schema is None:
        raise NotFound("node type", type_name)
    return _public(state, schema)
