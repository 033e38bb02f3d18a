"""The example workflows a new user can run at once, and loading them into an account.

They live in ``examples/`` at the top of the source tree and ship inside the wheel as
``flowloom/examples/``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from flowloom.exceptions import NotFound, Problem, ValidationFailed
from flowloom.graph import parse_definition, validate
from flowloom.nodes.registry import NodeRegistry, default_registry
from flowloom.storage.repos.workflows import WorkflowRepo
from flowloom.storage.tables import Workflow

__all__ = [
    "Example",
    "example_dir",
    "install_example",
    "install_examples",
    "read_examples",
]

_SUMMARIES: dict[str, str] = {
    "approval_gate": "A draft waits for a person to approve it, then is published or sent back.",
    "branch_on_score": "A score decides which of two messages runs; the branch not taken is "
    "skipped.",
    "fan_out_merge": "Four branches run side by side and are merged into one text.",
    "hello_template": "A name typed at the start fills a greeting template, one line per topic.",
    "image_crop": "A bundled picture is cropped to its centre and doubled in size.",
    "shout_each_word": "Each word goes through another workflow (Shout item), three at a time.",
    "shout_item": "One text in, the same text shouted out: called by Shout each word.",
    "sort_numbers": "A list of numbers typed as text is split and sorted.",
}


@dataclass(frozen=True, slots=True)
class Example:
    name: str
    definition: dict[str, Any]
    problems: list[Problem]
    slug: str = ""
    """The file's stem (``sort_numbers``): the example's id as a template."""
    summary: str = ""
    """What it shows, in one sentence."""

    def called_names(self) -> list[str]:
        """The workflows its ``workflow.call`` nodes run by name."""
        names = []
        for node in self.definition.get("nodes", []):
            config = node.get("data", {}).get("config", {}) if isinstance(node, dict) else {}
            name = config.get("workflow_name") if isinstance(config, dict) else None
            if node.get("type") == "workflow.call" and isinstance(name, str):
                names.append(name)
        return names


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
    return [_read_example(path, registry) for path in _example_paths(folder)]


def _example_paths(folder: Path | None) -> list[Path]:
    return sorted((folder or example_dir()).glob("*.json"))


def _example_name(path: Path) -> str:
    return path.stem.replace("_", " ").capitalize()


def _read_example(path: Path, registry: NodeRegistry) -> Example:
    raw = json.loads(path.read_text(encoding="utf-8"))
    try:
        problems = validate(parse_definition(raw), registry)
    except ValidationFailed as exc:
        problems = exc.problems
    return Example(
        name=_example_name(path),
        definition=raw,
        problems=problems,
        slug=path.stem,
        summary=_SUMMARIES.get(path.stem, ""),
    )


async def install_examples(session: AsyncSession, *, owner_id: str) -> list[Workflow]:
    """Save each example the owner does not have yet (matched by name) as a workflow.

    Each new workflow's validation result is logged against its first version. Only the
    examples it lacks are read and validated: a restart, which has them all, validates none
    (validating templates loads Jinja2).
    """
    repo = WorkflowRepo(session, owner_id=owner_id)
    installed = []
    registry = default_registry()
    for path in _example_paths(None):
        if await repo.find_by_name(name=_example_name(path)) is not None:
            continue
        installed.append(await _save(repo, _read_example(path, registry)))
    return installed


async def install_example(
    session: AsyncSession, *, owner_id: str, slug: str
) -> tuple[Workflow, list[Workflow]]:
    """Save the example ``slug`` as a new workflow of the owner (a copy each time), and any
    example it calls by name that the owner lacks, so that it runs at once.

    Returns the new workflow and the called ones saved with it; NotFound for an unknown slug.
    """
    examples = {example.slug: example for example in read_examples()}
    example = examples.get(slug)
    if example is None:
        raise NotFound("template", slug)
    repo = WorkflowRepo(session, owner_id=owner_id)
    called: list[Workflow] = []
    for name in example.called_names():
        needed = examples.get(name)
        if needed is None or await repo.find_by_reference(name=name) is not None:
            continue
        called.append(await _save(repo, needed))
    return await _save(repo, example), called


async def _save(repo: WorkflowRepo, example: Example) -> Workflow:
    workflow = await repo.create(
        name=example.name,
        definition=example.definition,
        description=example.summary or "An example that ships with flowloom.",
        is_valid=not example.problems,
    )
    await repo.log_validation(
        workflow_id=workflow.id,
        version=workflow.version,
        valid=not example.problems,
        problems=[asdict(p) for p in example.problems],
    )
    return workflow
