"""``flowloom validate FILE.json [--json]``: every problem of a definition file, nothing run.

It checks what ``flowloom run`` and the engine would refuse: JSON syntax and shape, unknown
node types, bad configs, dangling edges, incompatible ports, missing required inputs, cycles,
and each node's ``retry`` policy and ``timeout_s``. Every problem is printed, one a line, as
``FILE: node.port: message``; with ``--json``, exactly one JSON object goes out instead::

    {"file": "...", "valid": false, "nodes": 3, "edges": 2,
     "problems": [{"node_id": "crop", "port": null, "field": "width", "message": "..."}]}

Exit codes: 0 valid; 2 invalid, malformed or unreadable.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console

from flowloom.engine.retry import node_timeout_s, retry_policy
from flowloom.exceptions import Problem, ValidationFailed
from flowloom.graph import WorkflowDefinition, parse_definition_json, validate
from flowloom.nodes.registry import NodeRegistry, default_registry

__all__ = ["EXIT_INVALID", "EXIT_VALID", "definition_problems", "validate_file"]

EXIT_VALID, EXIT_INVALID = 0, 2


def definition_problems(definition: WorkflowDefinition, registry: NodeRegistry) -> list[Problem]:
    """Every problem of a parsed definition, the engine's per-node settings included."""
    problems = validate(definition, registry)
    for node in definition.nodes:
        for check in (retry_policy, node_timeout_s):
            try:
                check(node)
            except ValidationFailed as exc:
                problems.extend(exc.problems)
    return problems


def validate_file(
    path: Path, console: Console, as_json: bool, *, registry: NodeRegistry | None = None
) -> int:
    """Check the definition at ``path`` and print what is wrong; the process exit code."""
    registry = registry or default_registry()
    definition: WorkflowDefinition | None = None
    try:
        text = path.read_bytes()
    except OSError as exc:
        problems = [Problem(f"cannot read the file: {exc.strerror or exc}")]
    else:
        try:
            definition = parse_definition_json(text)
        except ValidationFailed as exc:
            problems = exc.problems
        else:
            problems = definition_problems(definition, registry)
    if as_json:
        console.out(json.dumps(_report(path, definition, problems), ensure_ascii=False))
    elif problems:
        for problem in problems:
            console.print(
                f"{path}: {problem}", style="red", markup=False, highlight=False, soft_wrap=True
            )
        console.print(f"{len(problems)} problem(s)", markup=False, highlight=False)
    else:
        assert definition is not None
        console.print(
            f"{path}: valid ({len(definition.nodes)} nodes, {len(definition.edges)} edges)",
            style="green",
            markup=False,
            highlight=False,
        )
    return EXIT_INVALID if problems else EXIT_VALID


def _report(
    path: Path, definition: WorkflowDefinition | None, problems: list[Problem]
) -> dict[str, Any]:
    return {
        "file": str(path),
        "valid": not problems,
        "nodes": None if definition is None else len(definition.nodes),
        "edges": None if definition is None else len(definition.edges),
        "problems": [
            {
                "node_id": problem.node_id,
                "port": problem.port,
                "field": problem.field,
                "message": problem.message,
            }
            for problem in problems
        ],
    }
