"""Node types: each type's ports, config schema and place in the palette."""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, Field

from flowloom.api.schemas.common import ApiModel
from flowloom.field_docs import describe_fields
from flowloom.graph.ports import PortType
from flowloom.nodes.base import Category


class PortPublic(ApiModel):
    """One input or output port of a node type."""

    model_config = ConfigDict(json_schema_extra=describe_fields)

    name: str
    type: PortType
    required: bool
    is_list: bool
    """A list port joins the values of several edges, in edge order."""
    description: str
    default: Any = None
    """The value an unwired, unset input takes (absent when it has none)."""


class NodeTypePublic(ApiModel):
    """One node type, as the palette, the canvas and the config form show it."""

    model_config = ConfigDict(json_schema_extra=describe_fields)

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
