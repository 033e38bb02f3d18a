"""Workflows from plain language: ``POST /workflows/generate`` and the generation history.

The model receives the node types' schemas and answers with a definition, which is validated;
validation's problems go back to it for up to ``max_repairs`` repairs. Every attempt is kept
in the history. A valid result is saved as a new workflow (201); one still invalid after the
repairs saves nothing and answers 422 with the last problems and the attempts.
"""

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status

from flowloom.api.deps import DatabaseDep, EngineDep, RegistryDep, WorkflowReader, WorkflowWriter
from flowloom.api.errors import problem_response
from flowloom.api.schemas.common import Page
from flowloom.api.schemas.generation import (
    AttemptPublic,
    GenerateCreate,
    GenerationEntry,
    GenerationPublic,
)
from flowloom.exceptions import InputError
from flowloom.generation.service import GenerationRequest, generate_for_owner, problem_json
from flowloom.storage.repos.generations import GenerationRepo
from flowloom.storage.tables import AiGeneration

__all__ = ["router"]

router = APIRouter(tags=["generation"])


def _entry(row: AiGeneration) -> GenerationEntry:
    return GenerationEntry(
        id=row.id,
        attempt=row.attempt,
        outcome=row.outcome,  # a CHECK constraint keeps it to the three
        problems=list(row.problems or []),
        tokens_in=row.tokens_in,
        tokens_out=row.tokens_out,
        prompt=row.prompt,
        provider=row.provider,
        model=row.model,
        workflow_id=row.workflow_id,
        definition=row.definition,
        created_at=row.created_at,
    )


@router.post(
    "/workflows/generate",
    status_code=status.HTTP_201_CREATED,
    response_model=GenerationPublic,
    responses={422: {"description": "Still invalid after the repairs; nothing saved"}},
)
async def generate_workflow(
    body: GenerateCreate,
    request: Request,
    caller: WorkflowWriter,
    db: DatabaseDep,
    engine: EngineDep,
    registry: RegistryDep,
) -> GenerationPublic | Response:
    """Draft a workflow from ``prompt`` with the given model, validated and repaired."""
    if engine.providers is None:
        raise InputError("no LLM providers are configured on this instance", field="provider")
    outcome = await generate_for_owner(
        db,
        engine.providers,
        registry,
        GenerationRequest(**body.model_dump()),
        owner_id=caller.user_id,
        api_key_id=caller.api_key_id,
    )
    attempts = [
        AttemptPublic(
            id=generation_id,
            attempt=attempt.number,
            outcome=attempt.outcome,
            problems=[problem_json(p) for p in attempt.problems],
            tokens_in=attempt.tokens_in,
            tokens_out=attempt.tokens_out,
        )
        for generation_id, attempt in zip(
            outcome.generation_ids, outcome.generated.attempts, strict=True
        )
    ]
    last = outcome.generated.last
    if outcome.workflow_id is None:
        tries = len(attempts)
        return problem_response(
            422,
            f"the model's workflow is still invalid after {tries} attempt(s); nothing was saved",
            instance=request.url.path,
            problems=[problem_json(p) for p in last.problems],
            attempts=[a.model_dump() for a in attempts],
        )
    assert last.definition is not None
    assert outcome.workflow_name is not None
    return GenerationPublic(
        workflow_id=outcome.workflow_id,
        name=outcome.workflow_name,
        definition=last.definition,
        attempts=attempts,
    )


@router.get("/generations")
async def list_generations(
    caller: WorkflowReader,
    db: DatabaseDep,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> Page[GenerationEntry]:
    """The generation history: every attempt, newest first."""
    async with db.read() as session:
        page = await GenerationRepo(session, owner_id=caller.user_id).list(
            cursor=cursor, limit=limit
        )
        items = [_entry(row) for row in page.items]
    return Page(items=items, next_cursor=page.next_cursor)
