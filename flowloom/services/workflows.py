"""Workflows as their owner saves them: every saved definition validated, and the result
logged against its version in the same transaction as the save.

An invalid definition is saved as a draft flagged ``is_valid = false`` with its problems, so a
half-drawn canvas is never lost; ``strict`` refuses it instead (ValidationFailed naming every
problem, nothing written). A definition over the instance's node limit is no draft: InputError
at once. A change that makes no new version (the same definition, or none sent) answers the
problems logged for the current version.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from flowloom.exceptions import InputError, Problem, ValidationFailed
from flowloom.graph import parse_definition, validate
from flowloom.nodes.registry import NodeRegistry
from flowloom.services.actor import Actor
from flowloom.storage.database import Database
from flowloom.storage.repos.workflows import UNSET, Unset, WorkflowRepo
from flowloom.storage.tables import Workflow

__all__ = ["WorkflowService", "check_definition", "check_definition_size"]


def check_definition_size(definition: dict[str, Any], *, max_nodes: int) -> None:
    """InputError naming ``definition.nodes`` when the definition holds too many nodes."""
    nodes = definition.get("nodes")
    if isinstance(nodes, list) and len(nodes) > max_nodes:
        raise InputError(
            f"a workflow may hold at most {max_nodes} nodes; this one has {len(nodes)}",
            field="definition.nodes",
        )


def check_definition(
    definition: dict[str, Any], registry: NodeRegistry, *, max_nodes: int
) -> list[Problem]:
    """Every problem of ``definition`` (shape, types, configs, edges, cycles); [] when valid.

    InputError at once for a definition over ``max_nodes``: that is not a draft.
    """
    check_definition_size(definition, max_nodes=max_nodes)
    try:
        parsed = parse_definition(definition)
    except ValidationFailed as exc:
        return exc.problems
    return validate(parsed, registry)


class WorkflowService:
    """One owner's workflows: saved, changed, validated again, restored and deleted, each in
    one write transaction with its validation log."""

    def __init__(
        self, db: Database, *, owner_id: str, registry: NodeRegistry, max_nodes: int
    ) -> None:
        self._db = db
        self._owner_id = owner_id
        self._registry = registry
        self._max_nodes = max_nodes

    def check(self, definition: dict[str, Any]) -> list[Problem]:
        """Every problem of ``definition``, nothing saved (see :func:`check_definition`)."""
        return check_definition(definition, self._registry, max_nodes=self._max_nodes)

    async def create(
        self,
        *,
        name: str,
        definition: dict[str, Any],
        description: str | None = None,
        nl_description: str | None = None,
        strict: bool = False,
    ) -> tuple[Workflow, list[Problem]]:
        """A new workflow at version 1 (a draft flagged invalid if it has problems, unless
        ``strict``), and its problems."""
        problems = self._checked(definition, strict=strict)
        async with self._db.write() as session:
            repo = WorkflowRepo(session, owner_id=self._owner_id)
            workflow = await repo.create(
                name=name,
                definition=definition,
                description=description,
                nl_description=nl_description,
                is_valid=not problems,
            )
            await _log(repo, workflow, problems)
        return workflow, problems

    async def read(self, *, workflow_id: str) -> tuple[Workflow, list[Problem]]:
        """The workflow and, if its current version is invalid, the problems logged for it."""
        async with self._db.read() as session:
            repo = WorkflowRepo(session, owner_id=self._owner_id)
            workflow = await repo.get(workflow_id=workflow_id)
            return workflow, await _logged_problems(repo, workflow)

    async def update(
        self,
        *,
        workflow_id: str,
        name: str | None = None,
        description: str | Unset | None = UNSET,
        nl_description: str | Unset | None = UNSET,
        definition: dict[str, Any] | None = None,
        active: bool | None = None,
        expected_version: int | None = None,
        note: str | None = None,
        strict: bool = False,
    ) -> tuple[Workflow, list[Problem]]:
        """Change what is given (None: unchanged; ``UNSET`` where None clears). A changed
        definition becomes the next version, validated and logged; Conflict unless the
        workflow is still at ``expected_version`` when one is given."""
        problems = None if definition is None else self._checked(definition, strict=strict)
        async with self._db.write() as session:
            repo = WorkflowRepo(session, owner_id=self._owner_id)
            before = (await repo.get(workflow_id=workflow_id, lock=True)).version
            workflow = await repo.update(
                workflow_id=workflow_id,
                name=name,
                description=description,
                nl_description=nl_description,
                definition=definition,
                is_valid=None if problems is None else not problems,
                active=active,
                expected_version=expected_version,
                note=note,
            )
            if problems is None or workflow.version == before:
                return workflow, await _logged_problems(repo, workflow)
            await _log(repo, workflow, problems)
            return workflow, problems

    async def revalidate(self, *, workflow_id: str) -> tuple[int, list[Problem]]:
        """Validate the current version again (node types may have changed since), log the
        result and flag the workflow to match; the version and its problems."""
        async with self._db.write() as session:
            repo = WorkflowRepo(session, owner_id=self._owner_id)
            workflow = await repo.get(workflow_id=workflow_id, lock=True)
            problems = self.check(workflow.definition)
            await _log(repo, workflow, problems)
            if workflow.is_valid != (not problems):
                await repo.update(workflow_id=workflow_id, is_valid=not problems)
            return workflow.version, problems

    async def restore(
        self, *, workflow_id: str, version: int, expected_version: int | None = None
    ) -> tuple[Workflow, list[Problem]]:
        """Make an old version current again, as a new version (the history keeps both),
        validated and logged."""
        async with self._db.write() as session:
            repo = WorkflowRepo(session, owner_id=self._owner_id)
            workflow = await repo.restore_version(
                workflow_id=workflow_id, version=version, expected_version=expected_version
            )
            problems = self.check(workflow.definition)
            if workflow.is_valid != (not problems):
                workflow = await repo.update(workflow_id=workflow_id, is_valid=not problems)
            await _log(repo, workflow, problems)
        return workflow, problems

    async def delete(self, *, workflow_id: str, actor: Actor) -> None:
        """Delete the workflow softly (its runs and versions stay readable in the history),
        with its ``workflow.delete`` audit entry."""
        async with self._db.write() as session:
            repo = WorkflowRepo(session, owner_id=self._owner_id)
            name = (await repo.get(workflow_id=workflow_id)).name
            await repo.soft_delete(workflow_id=workflow_id)
            await actor.record(session, "workflow.delete", "workflow", workflow_id, {"name": name})

    def _checked(self, definition: dict[str, Any], *, strict: bool) -> list[Problem]:
        problems = self.check(definition)
        if problems and strict:
            raise ValidationFailed(problems)
        return problems


async def _log(repo: WorkflowRepo, workflow: Workflow, problems: list[Problem]) -> None:
    await repo.log_validation(
        workflow_id=workflow.id,
        version=workflow.version,
        valid=not problems,
        problems=[asdict(problem) for problem in problems],
    )


async def _logged_problems(repo: WorkflowRepo, workflow: Workflow) -> list[Problem]:
    """The problems logged for the workflow's current version; [] when it is valid."""
    if workflow.is_valid:
        return []
    logs = await repo.list_validation_logs(
        workflow_id=workflow.id, version=workflow.version, limit=1
    )
    if not logs.items:
        return []
    return [
        Problem(
            message=row["message"],
            node_id=row.get("node_id"),
            port=row.get("port"),
            field=row.get("field"),
        )
        for row in logs.items[0].problems
    ]
