"""Node templates: save a configured node as a preset, list them for the palette, use one.

A template's config is checked against its node type exactly as a node of a workflow would
be, so a preset dropped on the canvas is valid on its own; problems answer 422 naming the
field. ``GET /node-templates/{id}/node`` gives a node ready to insert in a definition.
"""

import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response, status

from flowloom.api.deps import DatabaseDep, RegistryDep, WorkflowReader, WorkflowWriter
from flowloom.api.schemas.common import Page
from flowloom.api.schemas.node_templates import (
    NodeTemplateCreate,
    NodeTemplatePublic,
    NodeTemplateUpdate,
)
from flowloom.exceptions import ValidationFailed
from flowloom.graph.definition import NodeDefinition
from flowloom.graph.validation import node_problems
from flowloom.nodes.registry import NodeRegistry
from flowloom.storage.repos.node_templates import NodeTemplateRepo
from flowloom.storage.tables import NodeTemplate

__all__ = ["router"]

router = APIRouter(prefix="/node-templates", tags=["node templates"])

Coordinate = Annotated[float, Query(allow_inf_nan=False)]
"""Where on the canvas: a finite number (``inf`` or ``nan`` could not be answered as JSON)."""


def _public(row: NodeTemplate) -> NodeTemplatePublic:
    return NodeTemplatePublic(
        id=row.id,
        name=row.name,
        node_type=row.node_type,
        config=dict(row.config or {}),
        description=row.description,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _check(registry: NodeRegistry, node_type: str, config: dict[str, Any]) -> None:
    node = NodeDefinition.model_validate(
        {"id": "template", "type": node_type, "data": {"config": config}}
    )
    problems = node_problems(node, registry)
    if problems:
        raise ValidationFailed(problems)


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_node_template(
    body: NodeTemplateCreate, caller: WorkflowWriter, db: DatabaseDep, registry: RegistryDep
) -> NodeTemplatePublic:
    """Save a preset; 422 for an unknown type or a config its type refuses, 409 for a name
    the caller already uses."""
    _check(registry, body.node_type, body.config)
    async with db.write() as session:
        row = await NodeTemplateRepo(session, owner_id=caller.user_id).create(
            name=body.name,
            node_type=body.node_type,
            config=body.config,
            description=body.description,
        )
        return _public(row)


@router.get("")
async def list_node_templates(
    caller: WorkflowReader,
    db: DatabaseDep,
    node_type: str | None = None,
    search: Annotated[str | None, Query(max_length=200)] = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
) -> Page[NodeTemplatePublic]:
    """The caller's presets, newest first; filter by node type or by a piece of the name."""
    async with db.read() as session:
        page = await NodeTemplateRepo(session, owner_id=caller.user_id).list(
            node_type=node_type, search=search, cursor=cursor, limit=limit
        )
        items = [_public(row) for row in page.items]
    return Page(items=items, next_cursor=page.next_cursor)


@router.get("/{template_id}")
async def read_node_template(
    template_id: str, caller: WorkflowReader, db: DatabaseDep
) -> NodeTemplatePublic:
    async with db.read() as session:
        row = await NodeTemplateRepo(session, owner_id=caller.user_id).get(template_id=template_id)
        return _public(row)


@router.get("/{template_id}/node")
async def use_node_template(
    template_id: str,
    caller: WorkflowReader,
    db: DatabaseDep,
    x: Coordinate = 0.0,
    y: Coordinate = 0.0,
) -> dict[str, Any]:
    """A node for a definition, made from the preset: a fresh id, the type and config, the
    template's name as its label, at (x, y)."""
    async with db.read() as session:
        row = await NodeTemplateRepo(session, owner_id=caller.user_id).get(template_id=template_id)
        node_type, config, name = row.node_type, dict(row.config or {}), row.name
    short = node_type.rsplit(".", 1)[-1]
    return {
        "id": f"{short}_{secrets.token_hex(4)}",
        "type": node_type,
        "position": {"x": x, "y": y},
        "data": {"label": name, "config": config, "template_id": template_id},
    }


@router.patch("/{template_id}")
async def update_node_template(
    template_id: str,
    body: NodeTemplateUpdate,
    caller: WorkflowWriter,
    db: DatabaseDep,
    registry: RegistryDep,
) -> NodeTemplatePublic:
    async with db.write() as session:
        repo = NodeTemplateRepo(session, owner_id=caller.user_id)
        if body.config is not None:
            row = await repo.get(template_id=template_id)
            _check(registry, row.node_type, body.config)
        row = await repo.update(
            template_id=template_id,
            name=body.name,
            config=body.config,
            description=body.description,
        )
        return _public(row)


@router.delete("/{template_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_node_template(
    template_id: str, caller: WorkflowWriter, db: DatabaseDep
) -> Response:
    async with db.write() as session:
        await NodeTemplateRepo(session, owner_id=caller.user_id).delete(template_id=template_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
