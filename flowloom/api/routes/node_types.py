"""Node types: what the canvas palette, the nodes and the config forms are built from."""

import re
from typing import Any

from fastapi import APIRouter

from flowloom.api.deps import AppStateDep, WorkflowReader
from flowloom.api.schemas.common import Page
from flowloom.api.schemas.node_types import NodeTypePublic
from flowloom.api.state import AppState
from flowloom.exceptions import NotFound
from flowloom.nodes.base import Category

__all__ = ["CATEGORY_COLORS", "router"]

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


_HEX_COLOR = re.compile(r"#[0-9a-fA-F]{6}")


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
            # A plugin's colour is used as it says ``#rrggbb``; anything else is its category's.
            "color": node.color
            if _HEX_COLOR.fullmatch(node.color)
            else CATEGORY_COLORS.get(node.category, "#64748b"),
        }
    )


@router.get("")
async def list_node_types(caller: WorkflowReader, state: AppStateDep) -> Page[NodeTypePublic]:
    """Every node type with its name, icon, category, ports and the JSON Schema of its config."""
    return Page(items=[_public(state, schema) for schema in state.node_types().values()])


@router.get("/{type_name}")
async def read_node_type(
    type_name: str, caller: WorkflowReader, state: AppStateDep
) -> NodeTypePublic:
    schema = state.node_types().get(type_name)
    if schema is None:
        raise NotFound("node type", type_name)
    return _public(state, schema)
