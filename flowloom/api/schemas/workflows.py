"""Workflows, their versions, validation results, export files and templates."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Final, Literal

from pydantic import AliasChoices, Field, ValidationError

from flowloom.api.schemas.common import INT32_MAX, ApiModel, FromRow, RequestBody, VersionNumber
from flowloom.example_workflows import Example
from flowloom.exceptions import InputError, Problem
from flowloom.storage.tables import ValidationLog, Workflow, WorkflowVersion

EXPORT_FORMAT: Final = "flowloom.workflow"


def version_in_range(version: int) -> bool:
    """Whether ``version`` could number a stored version at all."""
    return 1 <= version <= INT32_MAX


class ProblemPublic(ApiModel):
    message: str
    node_id: str | None = None
    port: str | None = None
    field: str | None = None


def problems_public(problems: list[Problem]) -> list[ProblemPublic]:
    return [
        ProblemPublic(message=p.message, node_id=p.node_id, port=p.port, field=p.field)
        for p in problems
    ]


class WorkflowCreate(RequestBody):
    name: str = Field(min_length=1, max_length=200)
    definition: dict[str, Any]
    """React Flow's document: ``{"schema_version": 1, "nodes": [...], "edges": [...]}``."""
    description: str | None = Field(default=None, max_length=10_000)
    nl_description: str | None = Field(default=None, max_length=10_000)


class WorkflowUpdate(RequestBody):
    """Only the fields sent change; ``description: null`` clears it."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    definition: dict[str, Any] | None = None
    description: str | None = Field(default=None, max_length=10_000)
    nl_description: str | None = Field(default=None, max_length=10_000)
    active: bool | None = None
    expected_version: VersionNumber | None = None
    """Refuse (409) unless the workflow is still at this version: no lost updates."""
    note: str | None = Field(default=None, max_length=500)
    """Saved with the new version, when the definition changes."""


class WorkflowValidate(RequestBody):
    definition: dict[str, Any]


class ValidationPublic(ApiModel):
    valid: bool
    problems: list[ProblemPublic]
    version: int | None = None


class WorkflowSummary(FromRow):
    id: str
    name: str
    description: str | None
    version: int
    valid: bool = Field(validation_alias=AliasChoices("valid", "is_valid"))
    active: bool
    created_at: datetime
    updated_at: datetime


class WorkflowPublic(WorkflowSummary):
    nl_description: str | None
    definition: dict[str, Any]
    problems: list[ProblemPublic] = Field(default_factory=list)
    """What is wrong with the current version, when ``valid`` is false."""


def workflow_public(workflow: Workflow, problems: list[ProblemPublic]) -> WorkflowPublic:
    public = WorkflowPublic.model_validate(workflow)
    public.problems = problems
    return public


class WorkflowExport(RequestBody):
    """A workflow as a portable file: what ``export`` writes and ``import`` reads."""

    format: Literal["flowloom.workflow"] = EXPORT_FORMAT
    format_version: Literal[1] = 1
    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=10_000)
    nl_description: str | None = Field(default=None, max_length=10_000)
    definition: dict[str, Any]


class VersionSummary(FromRow):
    version: int
    note: str | None
    created_by: str | None
    created_at: datetime


class VersionPublic(VersionSummary):
    definition: dict[str, Any]


def version_public(row: WorkflowVersion) -> VersionPublic:
    return VersionPublic.model_validate(row)


class ValidationLogPublic(FromRow):
    id: str
    version: int
    valid: bool
    problems: list[dict[str, Any]]
    created_at: datetime


def validation_log_public(row: ValidationLog) -> ValidationLogPublic:
    return ValidationLogPublic.model_validate(row)


class ImportCheck(RequestBody):
    """A file to import, as read: an export (``format: "flowloom.workflow"``) or a bare
    definition (``{"schema_version": 1, "nodes": [...], "edges": [...]}``)."""

    document: dict[str, Any]
    name: str | None = Field(default=None, max_length=200)
    """The new workflow's name, instead of the file's (a bare definition has none)."""


class ImportPreview(ApiModel):
    """What importing the file would save, and every problem that stops it."""

    valid: bool
    problems: list[ProblemPublic]
    """The file's own problems (``field`` names the key) and its definition's (``node_id``,
    ``port``), all at once."""
    export: WorkflowExport | None
    """The file as ``POST /workflows/import`` takes it (the name applied); null when the file
    is not one."""
    nodes: int
    edges: int


class TemplatePublic(ApiModel):
    """An example workflow every account may start from."""

    id: str
    """The template's id (``sort_numbers``): ``POST /workflows/templates/{id}`` uses it."""
    name: str
    summary: str
    node_types: list[str]
    """The kinds of node it shows, in the order they first appear."""
    nodes: int
    calls: list[str]
    """The other workflows it runs by name (saved with it when missing)."""


class TemplateUsed(ApiModel):
    workflow: WorkflowPublic
    """The new workflow, a copy of the template."""
    also_saved: list[WorkflowSummary]
    """Workflows it calls that were saved with it, because the account lacked them."""


class TemplateList(ApiModel):
    items: list[TemplatePublic]


class Position(ApiModel):
    x: float = Field(allow_inf_nan=False)
    y: float = Field(allow_inf_nan=False)


class NodesMoved(RequestBody):
    positions: dict[Annotated[str, Field(min_length=1, max_length=100)], Position] = Field(
        min_length=1, max_length=5000
    )
    """Node id -> its new position on the canvas."""
    expected_version: VersionNumber | None = None
    """The version the canvas shows: 409 if another save made a newer one meanwhile."""


def template_public(example: Example) -> TemplatePublic:
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


def _bare_definition(document: dict[str, Any]) -> bool:
    return "definition" not in document and "nodes" in document


def preview_import(
    document: dict[str, Any], *, name: str | None, check: Callable[[dict[str, Any]], list[Problem]]
) -> ImportPreview:
    """What importing ``document`` (an export, or a bare definition) would save, named
    ``name`` if given, and every problem of the file's shape and of its definition (``check``)
    at once."""
    document = dict(document)
    if _bare_definition(document):
        document = {"definition": document}
    if name is not None and name.strip():
        document["name"] = name.strip()
    elif "name" not in document:
        document["name"] = None
    problems: list[ProblemPublic] = []
    export: WorkflowExport | None = None
    try:
        export = WorkflowExport.model_validate(document)
    except ValidationError as exc:
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
            problems += problems_public(check(definition))
        except InputError as exc:
            problems.append(ProblemPublic(message=str(exc), field="definition"))
    return ImportPreview(
        valid=not problems, problems=problems, export=export, nodes=nodes, edges=edges
    )
