"""The example workflows a new user can run at once, and loading them into an account.

They live in ``examples/`` at the top of the source tree and ship inside the wheel as
``flowloom/examples/``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from flowloom.exceptions import Problem, ValidationFailed
from flowloom.graph import parse_definition, validate
from flowloom.nodes.registry import default_registry
from flowloom.storage.repos.workflows import WorkflowRepo
from flowloom.storage.tables import Workflow

__all__ = ["Example", "example_dir", "install_examples", "read_examples"]


@dataclass(frozen=True, slots=True)
class Example:
    name: str
    definition: dict[str, Any]
    problems: list[Problem]


def example_dir() -> Path:
    """Where the example JSON files are: inside the installed package, or the source tree."""
    package = Path(__file__).resolve().parent
    for candidate in (package / "examples", package.parent / "examples"):
        if candidate.is_dir():
            return candidate
    return package / "examples"


def read_examples(folder: Path | None = None) -> list[Example]:
    """Every ``*.json`` example, named from its file name, with its validation problems."""
    registry = default_registry()
    examples = []
    for path in sorted((folder or example_dir()).glob("*.json")):
        raw = json.loads(path.read_text(encoding="utf-8"))
        try:
            problems = validate(parse_definition(raw), registry)
        except ValidationFailed as exc:
            problems = exc.problems
        name = path.stem.replace("_", " ").capitalize()
        examples.append(Example(name=name, definition=raw, problems=problems))
    return examples


async def install_examples(session: AsyncSession, *, owner_id: str) -> list[Workflow]:
    """Save each example the owner does not have yet (matched by name) as a workflow.

    Each new workflow's validation result is logged against its first version.
    """
    repo = WorkflowRepo(session, owner_id=owner_id)
    installed = []
    for example in read_examples():
        if await repo.find_by_name(name=example.name) is not None:
            continue
        workflow = await repo.create(
            name=example.name,
            definition=example.definition,
            description="An example that ships with flowloom.",
            is_valid=not example.problems,
        )
        await repo.log_validation(
            workflow_id=workflow.id,
            version=workflow.version,
            valid=not example.problems,
            problems=[_problem_json(p) for p in example.problems],
        )
        installed.append(workflow)
    return installed


def _problem_json(problem: Problem) -> dict[str, Any]:
    return {
        "message": problem.message,
        "node_id": problem.node_id,
        "port": problem.port,
        "field": problem.field,
    }
