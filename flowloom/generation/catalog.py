"""The node types as a model should see them: compact, every field documented, nothing else.

The registry's schemas are written for the UI (titles, ``$defs``); here the titles go, since
they repeat the field names, and each port is ``name: type``. Nodes whose ports follow their
config say so, because that is where drafts most often go wrong.
"""

from __future__ import annotations

from typing import Any

from flowloom.nodes.registry import NodeRegistry

__all__ = ["node_catalog"]


def node_catalog(registry: NodeRegistry) -> list[dict[str, Any]]:
    """One entry per node type: type, category, description, config schema, ports."""
    catalog = []
    for schema in registry.schemas():
        entry: dict[str, Any] = {
            "type": schema["type"],
            "category": schema["category"],
            "description": schema.get("description", ""),
            "config": _untitled(schema.get("config_schema", {})),
            "inputs": [_port(port) for port in schema.get("inputs", [])],
            "outputs": [_port(port) for port in schema.get("outputs", [])],
        }
        if schema.get("dynamic_ports"):
            entry["ports_follow_config"] = True
        catalog.append(entry)
    return catalog


def _port(port: dict[str, Any]) -> str:
    kind = f"list of {port['type']}" if port.get("is_list") else port["type"]
    optional = "" if port.get("required", True) else " (optional)"
    return f"{port['name']}: {kind}{optional}"


def _untitled(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _untitled(v) for k, v in value.items() if k != "title"}
    if isinstance(value, list):
        return [_untitled(v) for v in value]
    return value
