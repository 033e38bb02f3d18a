"""The draft-validate-repair loop: ask for a workflow, validate it, feed the problems back.

Every call to the model is one attempt, reported as it ends (so the history keeps attempts
even when a later call fails). The loop stops at the first valid draft, or after
``max_repairs`` repairs with the last draft's problems.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from flowloom.exceptions import Problem, ValidationFailed
from flowloom.generation.catalog import node_catalog
from flowloom.generation.prompting import ANSWER_SCHEMA, repair_message, system_prompt
from flowloom.graph import SCHEMA_VERSION, parse_definition, validate
from flowloom.nodes.registry import NodeRegistry
from flowloom.providers import (
    ChatMessage,
    ChatProvider,
    ChatRequest,
    MalformedResponse,
    UsageEvent,
    UsageSink,
)

__all__ = ["Attempt", "Generated", "WorkflowGenerator"]

Outcome = Literal["valid", "invalid", "error"]


@dataclass(frozen=True, slots=True)
class Attempt:
    """One call to the model and what validation made of its answer."""

    number: int
    outcome: Outcome
    definition: dict[str, Any] | None
    """The drafted definition (``schema_version``, ``nodes``, ``edges``), if the answer had one."""
    problems: list[Problem]
    tokens_in: int
    tokens_out: int
    name: str | None = None
    description: str | None = None


@dataclass(frozen=True, slots=True)
class Generated:
    """Where the loop ended: the last attempt decides."""

    attempts: list[Attempt] = field(default_factory=list)

    @property
    def last(self) -> Attempt:
        return self.attempts[-1]

    @property
    def valid(self) -> bool:
        return bool(self.attempts) and self.last.outcome == "valid"


class WorkflowGenerator:
    """Drafts workflows with any chat provider, validated against ``registry``."""

    def __init__(self, registry: NodeRegistry, *, max_repairs: int = 2) -> None:
        if not 0 <= max_repairs <= 10:
            raise ValueError("max_repairs must be between 0 and 10")
        self.registry = registry
        self.max_repairs = max_repairs
        self._system = system_prompt(node_catalog(registry))

    async def generate(
        self,
        client: ChatProvider,
        *,
        prompt: str,
        model: str,
        temperature: float | None = None,
        usage: UsageSink | None = None,
        on_attempt: Callable[[Attempt], Awaitable[None]] | None = None,
    ) -> Generated:
        """Draft, validate, repair. Provider errors propagate (after the attempts before
        them were reported); a bad answer is an attempt like any other."""
        messages: list[ChatMessage] = [ChatMessage("user", prompt)]
        attempts: list[Attempt] = []
        for number in range(1, self.max_repairs + 2):
            try:
                response = await client.chat(
                    ChatRequest(
                        model=model,
                        messages=tuple(messages),
                        system_prompt=self._system,
                        temperature=temperature,
                        response_schema=ANSWER_SCHEMA,
                    )
                )
            except MalformedResponse as exc:
                # The model answered, but not JSON: an attempt to repair like any other.
                problem = Problem(f"the answer is not a JSON object ({exc})")
                attempt = Attempt(number, "invalid", None, [problem], 0, 0)
                attempts.append(attempt)
                if on_attempt is not None:
                    await on_attempt(attempt)
                messages.append(ChatMessage("user", repair_message(attempt.problems)))
                continue
            if usage is not None:
                await usage.record(
                    UsageEvent(
                        provider=client.name,
                        model=model,
                        tokens_in=response.usage.tokens_in,
                        tokens_out=response.usage.tokens_out,
                        type="generation",
                        metadata={"attempt": number},
                    )
                )
            attempt = dataclasses.replace(
                self._judge(number, response.json, response.text),
                tokens_in=response.usage.tokens_in,
                tokens_out=response.usage.tokens_out,
            )
            attempts.append(attempt)
            if on_attempt is not None:
                await on_attempt(attempt)
            if attempt.outcome == "valid":
                break
            messages.append(ChatMessage("assistant", response.text))
            messages.append(ChatMessage("user", repair_message(attempt.problems)))
        return Generated(attempts)

    def _judge(self, number: int, answer: Any, text: str) -> Attempt:
        """The answer as an attempt (its tokens are filled in by the caller)."""
        if answer is None:
            try:
                answer = json.loads(text)
            except ValueError:
                answer = None
        if not isinstance(answer, dict):
            problem = Problem("the answer is not a JSON object with name, nodes and edges")
            return Attempt(number, "invalid", None, [problem], 0, 0)
        name = answer.get("name") if isinstance(answer.get("name"), str) else None
        description = answer.get("description")
        definition = {
            "schema_version": SCHEMA_VERSION,
            "nodes": answer.get("nodes", []),
            "edges": answer.get("edges", []),
        }
        try:
            problems = validate(parse_definition(definition), self.registry)
        except ValidationFailed as exc:
            problems = exc.problems
        if not definition["nodes"]:
            problems = [Problem("the workflow has no nodes"), *problems]
        return Attempt(
            number,
            "invalid" if problems else "valid",
            definition,
            problems,
            0,
            0,
            name=name[:200] if name else None,
            description=description if isinstance(description, str) else None,
        )
