"""Workflows: create, read, update, delete, list, export, import, validate; their versions.

Every save of a changed definition is a new numbered version, validated, with the result
logged against that version (seed 003's validation_logs). An invalid definition is saved as a
draft flagged ``valid: false`` with its problems, so a half-drawn canvas is never lost; with
``?strict=true`` it is refused instead (422 naming every problem, nothing written).
"""

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status

from flowloom.api.deps import (
    Caller,
    DatabaseDep,
    RegistryDep,
    SettingsDep,
    WorkflowReader,
    WorkflowWriter,
    actor,
)
from flowloom.api.schemas.common import Page, VersionNumber
from flowloom.api.schemas.workflows import (
    ImportCheck,
    ImportPreview,
    NodesMoved,
    TemplateList,
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
    preview_import,
    problems_public,
    template_public,
    validation_log_public,
    version_in_range,
    version_public,
    workflow_public,
)
from flowloom.example_workflows import install_example, read_examples
from flowloom.exceptions import NotFound
from flowloom.nodes.registry import NodeRegistry
from flowloom.services.workflows import WorkflowService, check_definition
from flowloom.settings import Settings
from flowloom.storage.database import Database
from flowloom.storage.repos.workflows import UNSET, WorkflowRepo

__all__ = ["router"]

router = APIRouter(prefix="/workflows", tags=["workflows"])

Strict = Annotated[
    bool, Query(description="Refuse an invalid definition (422) instead of saving a draft.")
]
Limit = Annotated[int, Query(ge=1, le=100)]


def _service(
    caller: Caller, db: Database, registry: NodeRegistry, settings: Settings
) -> WorkflowService:
    return WorkflowService(
        db,
        owner_id=caller.user_id,
        registry=registry,
        max_nodes=settings.max_nodes_per_workflow,
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
    workflow, problems = await _service(caller, db, registry, settings).create(
        name=body.name,
        definition=body.definition,
        description=body.description,
        nl_description=body.nl_description,
        strict=strict,
    )
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


@router.post("/import/check")
async def check_import(
    body: ImportCheck, caller: WorkflowReader, registry: RegistryDep, settings: SettingsDep
) -> ImportPreview:
    """Read a workflow file without saving anything: the file's shape and its definition are
    both checked, and every problem is listed (200 either way)."""
    return preview_import(
        body.document,
        name=body.name,
        check=lambda definition: check_definition(
            definition, registry, max_nodes=settings.max_nodes_per_workflow
        ),
    )


@router.post("/validate")
async def validate_definition(
    body: WorkflowValidate, caller: WorkflowReader, registry: RegistryDep, settings: SettingsDep
) -> ValidationPublic:
    """Check a definition without saving it: every problem at once."""
    problems = check_definition(
        body.definition, registry, max_nodes=settings.max_nodes_per_workflow
    )
    return ValidationPublic(valid=not problems, problems=problems_public(problems))


@router.get("/templates")
async def list_templates(caller: WorkflowReader) -> TemplateList:
    """The example workflows, offered to every account as starting points."""
    return TemplateList(items=[template_public(e) for e in read_examples() if not e.problems])


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
    workflow_id: str,
    caller: WorkflowReader,
    db: DatabaseDep,
    registry: RegistryDep,
    settings: SettingsDep,
) -> WorkflowPublic:
    """The workflow with its current definition and, if it is invalid, its problems."""
    workflow, problems = await _service(caller, db, registry, settings).read(
        workflow_id=workflow_id
    )
    return workflow_public(workflow, problems_public(problems))


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
    sent = body.model_fields_set
    workflow, problems = await _service(caller, db, registry, settings).update(
        workflow_id=workflow_id,
        name=body.name,
        description=body.description if "description" in sent else UNSET,
        nl_description=body.nl_description if "nl_description" in sent else UNSET,
        definition=body.definition,
        active=body.active,
        expected_version=body.expected_version,
        note=body.note,
        strict=strict,
    )
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
    workflow_id: str,
    caller: WorkflowWriter,
    request: Request,
    db: DatabaseDep,
    registry: RegistryDep,
    settings: SettingsDep,
) -> None:
    """Delete the workflow (softly: its runs and versions stay readable in the history)."""
    await _service(caller, db, registry, settings).delete(
        workflow_id=workflow_id, actor=actor(caller, request)
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
    version, problems = await _service(caller, db, registry, settings).revalidate(
        workflow_id=workflow_id
    )
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
    workflow, problems = await _service(caller, db, registry, settings).restore(
        workflow_id=workflow_id, version=version, expected_version=expected_version
    )
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
