"""What the model is told: the instructions with the node catalog, the JSON Schema its answer
must follow, and the message that asks it to repair a draft."""

from __future__ import annotations

import json
from typing import Any, Final

from flowloom.exceptions import Problem

__all__ = ["ANSWER_SCHEMA", "repair_message", "system_prompt"]

ANSWER_SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "description": "A short name for the workflow."},
        "description": {"type": "string", "description": "One sentence on what it does."},
        "nodes": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "id": {"type": "string"},
                    "type": {"type": "string"},
                    "position": {
                        "type": "object",
                        "properties": {"x": {"type": "number"}, "y": {"type": "number"}},
                        "required": ["x", "y"],
                    },
                    "data": {
                        "type": "object",
                        "properties": {
                            "label": {"type": "string"},
                            "config": {"type": "object"},
                        },
                        "required": ["config"],
                    },
                },
                "required": ["id", "type", "data"],
            },
        },
        "edges": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "id": {"type": "string"},
                    "source": {"type": "string"},
                    "sourceHandle": {"type": "string"},
                    "target": {"type": "string"},
                    "targetHandle": {"type": "string"},
                },
                "required": ["id", "source", "sourceHandle", "target", "targetHandle"],
            },
        },
    },
    "required": ["name", "nodes", "edges"],
}
"""The answer: a name, a description, and the definition's nodes and edges."""

_INSTRUCTIONS = """\
You design workflows for flowloom, an AI workflow engine. A workflow is a directed acyclic graph:
nodes of the types listed below, and edges from one node's output port (sourceHandle) to another
node's input port (targetHandle). Answer with JSON only, following the given schema.

Rules:
- Use only the node types listed. Each node's data.config must satisfy that type's config schema.
- Node ids are short snake_case words, unique. Edge ids are unique too.
- An edge goes from an output port of its source to an input port of its target, and the port
  types must fit (any fits everything). Every required input port needs an edge or a value.
- Where a type's ports follow its config (ports_follow_config), declare the config first: for
  example text.template has one input port per name in config.variables, trigger.manual one
  output port per field in config.fields.
- Start with a trigger.manual node when the workflow takes inputs from the person running it.
- Lay nodes out left to right: position.x grows by 300 per step, branches differ in position.y.

Node types:
"""


def system_prompt(catalog: list[dict[str, Any]]) -> str:
    """The instructions and the catalog of node types."""
    return _INSTRUCTIONS + json.dumps(catalog, separators=(",", ":"), ensure_ascii=False)


def repair_message(problems: list[Problem]) -> str:
    """Ask for a corrected definition, naming every problem validation found."""
    lines = [f"- {problem}" for problem in problems[:50]]
    more = len(problems) - len(lines)
    if more > 0:
        lines.append(f"- ... and {more} more")
    return (
        "The workflow you answered is not valid. flowloom's validation found:\n"
        + "\n".join(lines)
        + "\nAnswer again with the whole corrected workflow, following the same schema."
    )
