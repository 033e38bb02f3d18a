"""Workflows: create, read, update, delete, list, export, import, validate; their versions.

Every save of a changed definition is a new numbered version, validated, with the result
logged against that version (seed 003's validation_logs). An invalid definition is saved as a
draft flagged ``valid: false`` with its problems, so a half-drawn canvas is never lost; with
``?strict=true`` it is refused instead (422 naming every problem, nothing written).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response, status
from pydantic import ValidationError as PydanticValidationError

from flowloom.api.deps import DatabaseDep, RegistryDep, SettingsDep, WorkflowReader, WorkflowWriter
from flowloom.api.deps import client_ip as _client_ip
from flowloom.api.limits import check_definition_size
from flowloom.api.schemas.common import Page, VersionNumber
from flowloom.api.schemas.workflows import (
    ImportCheck,
    ImportPreview,
    NodesMoved,
    ProblemPublic,
    TemplateList,
    TemplatePublic,
    TemplateUsed,
    ValidationLogPublic,
    ValidationPublic,
    VersionPublic,
    VersionSummary,
    WorkflowCreate,
    WorkflowExport,
    WorkflowPublic,
    WorkflowSummary,
    WorkflowUpdate,
    WorkflowValidate,
    problems_public,
    validation_log_public,
    version_in_range,
    version_public,
    workflow_public,
)
from flowloom.example_workflows import Example, install_example, read_examples
from flowloom.exceptions import InputError, NotFound, Problem, ValidationFailed
from flowloom.graph import parse_definition, validate
from flowloom.nodes.registry import NodeRegistry
from flowloom.settings import Settings
from flowloom.storage.repos.audit import AuditRepo
from flowloom.storage.repos.workflows import UNSET, WorkflowRepo
from flowloom.storage.tables import Workflow

__all__ = ["check_definition", "router"]

router = APIRouter(prefix="/workflows", tags=["workflows"])

Strict = Annotated[
    bool, Query(description="Refuse an invalid definition (422) instead of saving a draft.")
]
Limit = Annotated[int, Query(ge=1, le=100)]


def check_definition(
    definition: dict[str, Any], registry: NodeRegistry, settings: Settings
) -> list[Problem]:
    """Every problem of ``definition`` (shape, types, configs, edges, cycles); [] when valid.

    InputError (422) at once for a definition over the node limit: that is not a draft.
    """
    check_definition_size(definition, max_nodes=settings.max_nodes_per_workflow)
    try:
        parsed = parse_definition(definition)
    except ValidationFailed as exc:
        return exc.problems
    return validate(parsed, registry)


def _problem_rows(problems: list[Problem]) -> list[dict[str, Any]]:
    return [p.model_dump() for p in problems_public(problems)]


async def _log(repo: WorkflowRepo, workflow: Workflow, problems: list[Problem]) -> None:
    await repo.log_validation(
        workflow_id=workflow.id,
        version=workflow.version,
        valid=not problems,
        problems=_problem_rows(problems),
    )


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_workflow(
    body: WorkflowCreate,
    caller: WorkflowWriter,
    db: DatabaseDep,
    registry: RegistryDep,
    settings: SettingsDep,
    response: Response,
    strict: Strict = False,
) -> WorkflowPublic:
    """Save a new workflow at version 1 (a draft flagged invalid if it has problems)."""
    problems = check_definition(body.definition, registry, settings)
    if problems and strict:
        raise ValidationFailed(problems)
    async with db.write() as session:
        repo = WorkflowRepo(session, owner_id=caller.user_id)
        workflow = await repo.create(
            name=body.name,
            definition=body.definition,
            description=body.description,
            nl_description=body.nl_description,
            is_valid=not problems,
        )
        await _log(repo, workflow, problems)
    response.headers["Location"] = f"/api/v1/workflows/{workflow.id}"
    return workflow_public(workflow, problems_public(problems))


@router.get("")
async def list_workflows(
    caller: WorkflowReader,
    db: DatabaseDep,
    search: Annotated[str | None, Query(max_length=200)] = None,
    cursor: str | None = None,
    limit: Limit = 20,
) -> Page[WorkflowSummary]:
    """The caller's workflows, newest first; ``search`` matches name or description."""
    async with db.read() as session:
        page = await WorkflowRepo(session, owner_id=caller.user_id).list(
            cursor=cursor, limit=limit, search=search
        )
    return Page(
        items=[WorkflowSummary.model_validate(w) for w in page.items],
        next_cursor=page.next_cursor,
    )


@router.post("/import", status_code=status.HTTP_201_CREATED)
async def import_workflow(
    body: WorkflowExport,
    caller: WorkflowWriter,
    db: DatabaseDep,
    registry: RegistryDep,
    settings: SettingsDep,
    response: Response,
    strict: Strict = False,
) -> WorkflowPublic:
    """Save an exported workflow file as a new workflow of the caller."""
    create = WorkflowCreate(
        name=body.name,
        definition=body.definition,
        description=body.description,
        nl_description=body.nl_description,
    )
    return await create_workflow(create, caller, db, registry, settings, response, strict)


def _bare_definition(document: dict[str, Any]) -> bool:
    return "definition" not in document and "nodes" in document


@router.post("/import/check")
async def check_import(
    body: ImportCheck, caller: WorkflowReader, registry: RegistryDep, settings: SettingsDep
) -> ImportPreview:
    """Read a workflow file without saving anything: the file's shape and its definition are
    both checked, and every problem is listed (200 either way)."""
    document = dict(body.document)
    if _bare_definition(document):
        document = {"definition": document}
    if body.name is not None and body.name.strip():
        document["name"] = body.name.strip()
    elif "name" not in document:
        document["name"] = None
    problems: list[ProblemPublic] = []
    export: WorkflowExport | None = None
    try:
        export = WorkflowExport.model_validate(document)
    except PydanticValidationError as exc:
        for error in exc.errors():
            where = ".".join(str(part) for part in error["loc"]) or None
            message = error["msg"]
            if where == "name" and document.get("name") is None:
                message = "the file has no name: give the workflow one"
            problems.append(ProblemPublic(message=message, field=where))
    definition = document.get("definition")
    nodes = edges = 0
    if isinstance(definition, dict):
        if isinstance(definition.get("nodes"), list):
            nodes = len(definition["nodes"])
        if isinstance(definition.get("edges"), list):
            edges = len(definition["edges"])
        try:
            problems += problems_public(check_definition(definition, registry, settings))
        except InputError as exc:
            problems.append(ProblemPublic(message=str(exc), field="definition"))
    return ImportPreview(
        valid=not problems, problems=problems, export=export, nodes=nodes, edges=edges
    )


@router.post("/validate")
async def validate_definition(
    body: WorkflowValidate, caller: WorkflowReader, registry: RegistryDep, settings: SettingsDep
) -> ValidationPublic:
    """Check a definition without saving it: every problem at once."""
    problems = check_definition(body.definition, registry, settings)
    return ValidationPublic(valid=not problems, problems=problems_public(problems))


def _template_public(example: Example) -> TemplatePublic:
    nodes = [n for n in example.definition.get("nodes", []) if isinstance(n, dict)]
    types = list(dict.fromkeys(str(n.get("type")) for n in nodes))
    return TemplatePublic(
        id=example.slug,
        name=example.name,
        summary=example.summary,
        node_types=types,
        nodes=len(nodes),
        calls=example.called_names(),
    )


@router.get("/templates")
async def list_templates(caller: WorkflowReader) -> TemplateList:
    """The example workflows, offered to every account as starting points."""
    return TemplateList(items=[_template_public(e) for e in read_examples() if not e.problems])


@router.post("/templates/{template_id}", status_code=status.HTTP_201_CREATED)
async def use_template(
    template_id: str,
    caller: WorkflowWriter,
    db: DatabaseDep,
    response: Response,
) -> TemplateUsed:
    """A new workflow of the caller, copied from the template (again on every call), with the
    workflows it calls by name when the caller has none of that name. 404 for an unknown id."""
    async with db.write() as session:
        workflow, called = await install_example(session, owner_id=caller.user_id, slug=template_id)
    response.headers["Location"] = f"/api/v1/workflows/{workflow.id}"
    return TemplateUsed(
        workflow=workflow_public(workflow, []),
        also_saved=[WorkflowSummary.model_validate(w) for w in called],
    )


@router.get("/{workflow_id}")
async def read_workflow(
    workflow_id: str, caller: WorkflowReader, db: DatabaseDep
) -> WorkflowPublic:
    """The workflow with its current definition and, if it is invalid, its problems."""
    async with db.read() as session:
        repo = WorkflowRepo(session, owner_id=caller.user_id)
        workflow = await repo.get(workflow_id=workflow_id)
        problems: list[ProblemPublic] = []
        if not workflow.is_valid:
            logs = await repo.list_validation_logs(
                workflow_id=workflow_id, version=workflow.version, limit=1
            )
            if logs.items:
                problems = [ProblemPublic.model_validate(p) for p in logs.items[0].problems]
    return workflow_public(workflow, problems)


@router.patch("/{workflow_id}")
async def update_workflow(
    workflow_id: str,
    body: WorkflowUpdate,
    caller: WorkflowWriter,
    db: DatabaseDep,
    registry: RegistryDep,
    settings: SettingsDep,
    strict: Strict = False,
) -> WorkflowPublic:
    """Change what is sent. A changed definition becomes the next version, validated."""
    problems: list[Problem] | None = None
    if body.definition is not None:
        problems = check_definition(body.definition, registry, settings)
        if problems and strict:
            raise ValidationFailed(problems)
    sent = body.model_fields_set
    async with db.write() as session:
        repo = WorkflowRepo(session, owner_id=caller.user_id)
        before = (await repo.get(workflow_id=workflow_id)).version
        workflow = await repo.update(
            workflow_id=workflow_id,
            name=body.name,
            description=body.description if "description" in sent else UNSET,
            nl_description=body.nl_description if "nl_description" in sent else UNSET,
            definition=body.definition,
            is_valid=None if problems is None else not problems,
            active=body.active,
            expected_version=body.expected_version,
            note=body.note,
        )
        if problems is not None and workflow.version != before:
            await _log(repo, workflow, problems)
    if problems is None or workflow.version == before:
        return await read_workflow(workflow_id, caller, db)
    return workflow_public(workflow, problems_public(problems))


@router.patch("/{workflow_id}/positions")
async def move_nodes(
    workflow_id: str, body: NodesMoved, caller: WorkflowWriter, db: DatabaseDep
) -> dict[str, int]:
    """Save where nodes sit as they are dragged, without sending the graph and without a new
    version (layout changes no run); answers the version it changed in place."""
    async with db.write() as session:
        workflow = await WorkflowRepo(session, owner_id=caller.user_id).move_nodes(
            workflow_id=workflow_id,
            positions={node: (at.x, at.y) for node, at in body.positions.items()},
            expected_version=body.expected_version,
        )
        return {"version": workflow.version}


@router.delete("/{workflow_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_workflow(
    workflow_id: str, caller: WorkflowWriter, request: Request, db: DatabaseDep
) -> None:
    """Delete the workflow (softly: its runs and versions stay readable in the history)."""
    async with db.write() as session:
        repo = WorkflowRepo(session, owner_id=caller.user_id)
        workflow = await repo.get(workflow_id=workflow_id)
        name = workflow.name
        await repo.soft_delete(workflow_id=workflow_id)
        await AuditRepo(session).record(
            user_id=caller.user_id,
            action="workflow.delete",
            object_type="workflow",
            object_id=workflow_id,
            ip=_client_ip(request),
            user_agent=request.headers.get("user-agent"),
            details={"name": name},
        )


@router.get("/{workflow_id}/export")
async def export_workflow(
    workflow_id: str, caller: WorkflowReader, db: DatabaseDep, response: Response
) -> WorkflowExport:
    """The workflow as a file that ``POST /workflows/import`` reads back."""
    async with db.read() as session:
        workflow = await WorkflowRepo(session, owner_id=caller.user_id).get(workflow_id=workflow_id)
    response.headers["Content-Disposition"] = f'attachment; filename="{workflow.id}.json"'
    return WorkflowExport(
        name=workflow.name,
        description=workflow.description,
        nl_description=workflow.nl_description,
        definition=workflow.definition,
    )


@router.post("/{workflow_id}/validate")
async def validate_workflow(
    workflow_id: str,
    caller: WorkflowWriter,
    db: DatabaseDep,
    registry: RegistryDep,
    settings: SettingsDep,
) -> ValidationPublic:
    """Validate the current version again (node types may have changed) and log the result."""
    async with db.write() as session:
        repo = WorkflowRepo(session, owner_id=caller.user_id)
        workflow = await repo.get(workflow_id=workflow_id)
        problems = check_definition(workflow.definition, registry, settings)
        await _log(repo, workflow, problems)
        if workflow.is_valid != (not problems):
            await repo.update(workflow_id=workflow_id, is_valid=not problems)
        version = workflow.version
    return ValidationPublic(valid=not problems, problems=problems_public(problems), version=version)


@router.get("/{workflow_id}/versions")
async def list_versions(
    workflow_id: str,
    caller: WorkflowReader,
    db: DatabaseDep,
    cursor: str | None = None,
    limit: Limit = 20,
) -> Page[VersionSummary]:
    """Every saved version, newest first."""
    async with db.read() as session:
        page = await WorkflowRepo(session, owner_id=caller.user_id).list_versions(
            workflow_id=workflow_id, cursor=cursor, limit=limit
        )
    return Page(
        items=[VersionSummary.model_validate(v) for v in page.items], next_cursor=page.next_cursor
    )


def _check_version(workflow_id: str, version: int) -> None:
    """NotFound, as for any missing version, for a number no version can have: the database
    would refuse it instead of finding nothing."""
    if not version_in_range(version):
        raise NotFound("workflow version", f"{workflow_id}@{version}")


@router.get("/{workflow_id}/versions/{version}")
async def read_version(
    workflow_id: str, version: int, caller: WorkflowReader, db: DatabaseDep
) -> VersionPublic:
    _check_version(workflow_id, version)
    async with db.read() as session:
        row = await WorkflowRepo(session, owner_id=caller.user_id).get_version(
            workflow_id=workflow_id, version=version
        )
    return version_public(row)


@router.post("/{workflow_id}/versions/{version}/restore")
async def restore_version(
    workflow_id: str,
    version: int,
    caller: WorkflowWriter,
    db: DatabaseDep,
    registry: RegistryDep,
    settings: SettingsDep,
    expected_version: VersionNumber | None = None,
) -> WorkflowPublic:
    """Make an old version current again, as a new version (the history keeps both)."""
    _check_version(workflow_id, version)
    async with db.write() as session:
        repo = WorkflowRepo(session, owner_id=caller.user_id)
        workflow = await repo.restore_version(
            workflow_id=workflow_id, version=version, expected_version=expected_version
        )
        problems = check_definition(workflow.definition, registry, settings)
        if workflow.is_valid != (not problems):
            workflow = await repo.update(workflow_id=workflow_id, is_valid=not problems)
        await _log(repo, workflow, problems)
    return workflow_public(workflow, problems_public(problems))


@router.get("/{workflow_id}/validation-logs")
async def list_validation_logs(
    workflow_id: str,
    caller: WorkflowReader,
    db: DatabaseDep,
    version: VersionNumber | None = None,
    cursor: str | None = None,
    limit: Limit = 20,
) -> Page[ValidationLogPublic]:
    """The validation result of each saved version, newest first."""
    async with db.read() as session:
        page = await WorkflowRepo(session, owner_id=caller.user_id).list_validation_logs(
            workflow_id=workflow_id, version=version, cursor=cursor, limit=limit
        )
    return Page(items=[validation_log_public(v) for v in page.items], next_cursor=page.next_cursor)
