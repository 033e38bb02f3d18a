"""Node types: what the canvas palette and config forms are built from."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from flowloom.api.deps import AppStateDep, WorkflowReader
from flowloom.api.schemas import Page
from flowloom.exceptions import NotFound

__all__ = ["router"]

router = APIRouter(prefix="/node-types", tags=["node types"])


@router.get("")
async def list_node_types(caller: WorkflowReader, state: AppStateDep) -> Page[dict[str, Any]]:
    """Every node type with its category, ports and the JSON Schema of its config."""
    return Page(items=list(state.node_types.values()))


@router.get("/{type_name}")
async def read_node_type(
    type_name: str, caller: WorkflowReader, state: AppStateDep
) -> dict[str, Any]:
    schema = state.node_types.get(type_name)
    if schema is None:
        raise NotFound("node type", type_name)
    return schema
