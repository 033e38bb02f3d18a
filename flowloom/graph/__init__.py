"""The workflow definition: React Flow-shaped models, validation, and the topological plan.

This layer knows nothing of what nodes do: it sees node types only through the
:class:`NodeTypes` protocol, which :class:`flowloom.nodes.NodeRegistry` implements.
"""

from flowloom.graph.definition import (
    SCHEMA_VERSION,
    EdgeDefinition,
    NodeData,
    NodeDefinition,
    Position,
    WorkflowDefinition,
    parse_definition,
    parse_definition_json,
)
from flowloom.graph.plan import Plan, Scope, build_plan, find_cycles, topological_order
from flowloom.graph.ports import NO_DEFAULT, Port, PortType, compatible, value_matches
from flowloom.graph.validation import NodeType, NodeTypes, config_problems, ensure_valid, validate

__all__ = [
    "NO_DEFAULT",
    "SCHEMA_VERSION",
    "EdgeDefinition",
    "NodeData",
    "NodeDefinition",
    "NodeType",
    "NodeTypes",
    "Plan",
    "Port",
    "PortType",
    "Position",
    "Scope",
    "WorkflowDefinition",
    "build_plan",
    "compatible",
    "config_problems",
    "ensure_valid",
    "find_cycles",
    "parse_definition",
    "parse_definition_json",
    "topological_order",
    "validate",
    "value_matches",
]
