"""Workflow memory, as a person sees it: which workflows remember things, the entries of one
(the whole workflow's and each thread's scope), and deleting one entry or clearing a scope.

Owner-scoped: another user's workflow answers 404. Expired entries are never shown, and the
daily maintenance pass removes them.
"""

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from flowloom.api.deps import DatabaseDep, WorkflowReader, WorkflowWriter
from flowloom.api.schemas.common import Page
from flowloom.api.schemas.memory import MemoryCleared, MemoryEntryPublic, WorkflowMemorySummary
from flowloom.storage.repos.memory import MemoryRepo, memory_overview
from flowloom.storage.tables import WorkflowMemory

__all__ = ["router"]

router = APIRouter(tags=["memory"])

ScopeQuery = Annotated[str | None, Query(max_length=40)]


def _public(entry: WorkflowMemory) -> MemoryEntryPublic:
    return MemoryEntryPublic(
        id=entry.id,
        key=entry.key,
        scope=entry.scope,
        value=entry.value,
        value_type=entry.value_type,
        expires_at=entry.expires_at,
        created_at=entry.created_at,
        updated_at=entry.updated_at,
    )


@router.get("/memory")
async def list_workflows_with_memory(
    caller: WorkflowReader, db: DatabaseDep
) -> Page[WorkflowMemorySummary]:
    """The caller's workflows that hold memory, most recently written first."""
    async with db.read() as session:
        rows = await memory_overview(session, owner_id=caller.user_id)
    return Page(
        items=[
            WorkflowMemorySummary(
                workflow_id=r.workflow_id,
                workflow_name=r.workflow_name,
                entries=r.entries,
                scopes=r.scopes,
                last_updated_at=r.last_updated_at,
            )
            for r in rows
        ]
    )


@router.get("/workflows/{workflow_id}/memory")
async def list_memory_entries(
    workflow_id: str, caller: WorkflowReader, db: DatabaseDep, scope: ScopeQuery = None
) -> Page[MemoryEntryPublic]:
    """The workflow's entries (at most 500), by scope then key; ``scope`` keeps one scope
    (``scope=`` empty: the whole workflow's)."""
    async with db.read() as session:
        repo = MemoryRepo(session, owner_id=caller.user_id, workflow_id=workflow_id)
        entries = await repo.list_every_scope() if scope is None else await repo.list(scope=scope)
    return Page(items=[_public(e) for e in entries])


@router.delete("/workflows/{workflow_id}/memory/{key}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_memory_entry(
    workflow_id: str, key: str, caller: WorkflowWriter, db: DatabaseDep, scope: str = ""
) -> Response:
    """Forget one entry (of ``scope``, default the whole workflow's); 404 if there is none."""
    async with db.write() as session:
        await MemoryRepo(session, owner_id=caller.user_id, workflow_id=workflow_id).delete(
            key=key, scope=scope
        )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.delete("/workflows/{workflow_id}/memory")
async def clear_memory(
    workflow_id: str, caller: WorkflowWriter, db: DatabaseDep, scope: ScopeQuery = None
) -> MemoryCleared:
    """Forget every entry of the workflow, or of one ``scope``; how many there were."""
    async with db.write() as session:
        deleted = await MemoryRepo(session, owner_id=caller.user_id, workflow_id=workflow_id).clear(
            scope=scope
        )
    return MemoryCleared(deleted=deleted)
