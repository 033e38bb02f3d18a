"""Generation for an account: resolve the provider, run the loop, keep every attempt in the
generation history, and save the workflow only when the last draft is valid.

Shared by ``POST /api/v1/workflows/generate`` and ``flowloom generate``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from flowloom.exceptions import ConfigurationError, InputError, NotFound, Problem
from flowloom.generation.generator import Attempt, Generated, WorkflowGenerator
from flowloom.integrations.usage import DatabaseUsageSink
from flowloom.nodes.registry import NodeRegistry
from flowloom.providers import ProviderResolver
from flowloom.storage.database import Database
from flowloom.storage.repos.generations import GenerationRepo
from flowloom.storage.repos.workflows import WorkflowRepo

__all__ = ["GenerationOutcome", "GenerationRequest", "generate_for_owner"]

_DEFAULT_NAME = "Generated workflow"


@dataclass(frozen=True, slots=True, kw_only=True)
class GenerationRequest:
    prompt: str
    provider: str
    model: str
    credential: str | None = None
    max_repairs: int = 2
    name: str | None = None
    """The saved workflow's name; the model's suggestion when empty."""
    temperature: float | None = None


@dataclass(slots=True)
class GenerationOutcome:
    generated: Generated
    generation_ids: list[str] = field(default_factory=list)
    workflow_id: str | None = None
    workflow_name: str | None = None


def problem_json(problem: Problem) -> dict[str, str | None]:
    return {
        "message": problem.message,
        "node_id": problem.node_id,
        "port": problem.port,
        "field": problem.field,
    }


async def generate_for_owner(
    db: Database,
    resolver: ProviderResolver,
    registry: NodeRegistry,
    request: GenerationRequest,
    *,
    owner_id: str,
    api_key_id: str | None = None,
    on_attempt: Callable[[Attempt], Awaitable[None]] | None = None,
) -> GenerationOutcome:
    """Generate and keep the history. InputError for an unknown provider, a provider without
    a key, or a stored credential that does not exist; provider failures propagate."""
    try:
        client = await resolver.resolve(
            request.provider, credential=request.credential, owner_id=owner_id
        )
    except ConfigurationError as exc:
        raise InputError(str(exc), field="provider") from None
    except NotFound:
        raise InputError(
            f"you have no stored credential named {request.credential!r}", field="credential"
        ) from None
    outcome = GenerationOutcome(Generated())

    async def keep(attempt: Attempt) -> None:
        async with db.write() as session:
            row = await GenerationRepo(session, owner_id=owner_id).record(
                prompt=request.prompt,
                provider=request.provider,
                model=request.model,
                attempt=attempt.number,
                outcome=attempt.outcome,
                definition=attempt.definition,
                problems=[problem_json(p) for p in attempt.problems],
                tokens_in=attempt.tokens_in,
                tokens_out=attempt.tokens_out,
            )
            outcome.generation_ids.append(row.id)
        if on_attempt is not None:
            await on_attempt(attempt)

    generator = WorkflowGenerator(registry, max_repairs=request.max_repairs)
    outcome.generated = await generator.generate(
        client,
        prompt=request.prompt,
        model=request.model,
        temperature=request.temperature,
        usage=DatabaseUsageSink(db, owner_id=owner_id, api_key_id=api_key_id),
        on_attempt=keep,
    )
    if not outcome.generated.valid:
        return outcome
    last = outcome.generated.last
    assert last.definition is not None
    name = (request.name or last.name or _DEFAULT_NAME).strip()[:200] or _DEFAULT_NAME
    async with db.write() as session:
        workflows = WorkflowRepo(session, owner_id=owner_id)
        workflow = await workflows.create(
            name=name,
            definition=last.definition,
            description=last.description,
            nl_description=request.prompt,
        )
        await workflows.log_validation(
            workflow_id=workflow.id, version=workflow.version, valid=True, problems=[]
        )
        await GenerationRepo(session, owner_id=owner_id).link_workflow(
            generation_ids=outcome.generation_ids, workflow_id=workflow.id
        )
        outcome.workflow_id, outcome.workflow_name = workflow.id, workflow.name
    return outcome
