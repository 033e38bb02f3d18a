"""``ai.agent``: a model that may call tools, in a loop, until it answers or runs out of steps.

Each step is one call to the model with the conversation so far and the tools on offer. When the
model asks for tools, each is run (MCP tools over one connection per server, HTTP requests within
the instance's address policy, other workflows as sub-runs like ``workflow.call``), its result
goes back into the conversation, and the next step begins. A tool that fails does not fail the
node: the model is told, and may try something else. The loop itself is
:func:`flowloom.agents.loop.run_agent_loop`, which threads use too; the tool shapes
(:mod:`flowloom.nodes.agent_tools`) are shared with stored agents.

Every step streams: what the model says goes out as ``node.delta`` pieces while it comes, each
tool call as a ``node.step`` once it has run. The deltas are the whole loop's transcript (see
``run_agent_loop``); the ``text`` output is the final answer only.

Every provider call writes a usage row (type ``agent``) as ``ai.llm`` does. A retried attempt
runs the whole loop again (at-least-once, like every node): tools with effects should be
idempotent, and HTTP tools send the step's ``Idempotency-Key``.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, field_validator, model_validator

from flowloom.exceptions import ConfigurationError, ExecutionError, NotFound, RetryNode
from flowloom.nodes._provider_call import record_usage
from flowloom.nodes.agent_tools import AgentTool, HttpTool, McpTools, WorkflowTool
from flowloom.nodes.ai import text_progress
from flowloom.nodes.base import (
    Category,
    Node,
    NodeConfig,
    NodeResult,
    Port,
    PortType,
    RunContext,
)
from flowloom.nodes.mcp import check_variables, render_value
from flowloom.providers.model_names import ModelName

if TYPE_CHECKING:
    from flowloom.agents.loop import StepFailed
    from flowloom.providers import ChatResponse

__all__ = ["Agent", "AgentConfig", "AgentTool", "HttpTool", "McpTools", "WorkflowTool"]


class AgentConfig(NodeConfig):
    provider: Literal["openai", "gemini", "anthropic"] = "openai"
    """Who runs the model: ``openai`` (or any OpenAI-compatible server), ``gemini``,
    ``anthropic``; all three call tools."""
    model: ModelName = Field(default="", json_schema_extra={"x-model-kind": "chat"})
    """The model's name at the provider, e.g. ``gpt-4o-mini``."""
    instructions: str = ""
    """What the agent is for and how it should behave (the system prompt)."""
    user_message: str = ""
    """The task: a Jinja2 template over the variables, rendered in a sandbox."""
    variables: list[str] = Field(default_factory=list)
    """The task's variables; each becomes an input port of the same name."""
    tools: list[AgentTool] = Field(default_factory=list)
    """What the agent may call: ``{"kind": "mcp", "server": ...}``, ``{"kind": "http", ...}``,
    ``{"kind": "workflow", "workflow_id": ...}``."""
    max_steps: int = Field(default=10, ge=1, le=100)
    """The most model calls; at the limit the node stops with ``stop_reason`` ``max_steps``."""
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int | None = Field(default=None, ge=1, le=1_000_000)
    """Longest answer per step, in tokens; empty leaves the provider's default."""
    credential: str | None = Field(default=None, min_length=1, max_length=200)
    """The name of one of your stored credentials holding the API key; empty uses the
    instance's key."""
    tool_result_max_chars: int = Field(default=20_000, ge=100, le=1_000_000)
    """A tool's result is cut to this many characters before the model reads it."""

    @field_validator("variables")
    @classmethod
    def _check_variables(cls, names: list[str]) -> list[str]:
        return check_variables(names, set(cls.model_fields))

    @model_validator(mode="after")
    def _check_names(self) -> AgentConfig:
        named = [tool.name for tool in self.tools if not isinstance(tool, McpTools)]
        duplicates = sorted({name for name in named if named.count(name) > 1})
        if duplicates:
            raise ValueError(f"tools named twice: {', '.join(duplicates)}")
        return self


class Agent(Node[AgentConfig]):
    """A model that calls tools in a loop until it gives a final answer.

    Outputs ``text`` (the final answer), ``steps`` (each tool call in order: ``tool``,
    ``arguments``, ``result``, ``is_error``, ``step`` (the model call that asked for it) and
    ``usage`` of that model call, on the first tool call it asked for; the final answer is the
    last step, with ``tool`` null), ``usage`` (totals over every model call) and
    ``stop_reason`` (``answer``, or ``max_steps`` when the limit came first).
    """

    type_name = "ai.agent"
    display_name = "Agent"
    icon = "agent"
    category = Category.AI_AGENT
    deterministic = False
    dynamic_ports = True
    Config = AgentConfig
    # Tool URLs are templates over the model's arguments, not over the node's inputs.
    raw_template_fields = frozenset({"tools"})

    def inputs(self, config: AgentConfig) -> list[Port]:
        return [Port(name, PortType.ANY) for name in config.variables]

    def outputs(self, config: AgentConfig) -> list[Port]:
        return [
            Port("text", PortType.STRING),
            Port("steps", PortType.LIST),
            Port(
                "usage",
                PortType.OBJECT,
                description="tokens_in, tokens_out, tokens_total, cost (decimal string), calls",
            ),
            Port("stop_reason", PortType.STRING),
        ]

    def concurrency_key(self, config: AgentConfig) -> str | None:
        return f"llm:{config.provider}/{config.model}"

    async def run(self, ctx: RunContext, config: AgentConfig, inputs: dict[str, Any]) -> NodeResult:
        from flowloom.agents.loop import LoopOptions, StepFailed, run_agent_loop
        from flowloom.agents.tools import open_toolbox
        from flowloom.providers import ChatMessage

        if ctx.providers is None:
            raise ctx.fail("no LLM providers are configured on this instance")
        scope = {name: inputs[name] for name in config.variables if name in inputs}
        task = await render_value(ctx, config.user_message, scope, "user_message")
        try:
            provider = await ctx.providers.resolve(
                config.provider, credential=config.credential, owner_id=ctx.owner_id
            )
        except ConfigurationError as exc:
            raise ctx.fail(str(exc)) from None
        except NotFound:
            raise ctx.fail(f"you have no stored credential named {config.credential!r}") from None

        async with AsyncExitStack() as stack:
            toolbox = await open_toolbox(ctx, config.tools, stack)
            options = LoopOptions(
                model=config.model,
                instructions=config.instructions or None,
                max_steps=config.max_steps,
                temperature=config.temperature,
                max_tokens=config.max_tokens,
                tool_result_max_chars=config.tool_result_max_chars,
                idempotency_key=ctx.idempotency_key,
            )
            try:
                outcome = await run_agent_loop(
                    provider,
                    [ChatMessage("user", str(task))],
                    toolbox,
                    options,
                    record=functools.partial(_record, ctx, config),
                    on_step=functools.partial(_step_progress, ctx),
                    on_delta=_as_listener(text_progress(ctx)),
                )
            except StepFailed as failed:
                raise _step_failure(ctx, failed) from None
        return NodeResult(
            {
                "text": outcome.text,
                "steps": outcome.steps,
                "usage": outcome.totals.to_json(),
                "stop_reason": outcome.stop_reason,
            }
        )


async def _step_progress(ctx: RunContext, entry: dict[str, Any]) -> None:
    """A tool call of the agent, as it finishes, for whoever follows the run (the step's
    result is in the node's ``steps`` output when the node ends)."""
    ctx.progress(
        "step",
        {
            "step": entry["step"],
            "tool": entry["tool"],
            "is_error": entry["is_error"],
        },
    )


def _as_listener(publish: Callable[[str], None]) -> Callable[[str], Awaitable[None]]:
    async def listener(text: str) -> None:
        publish(text)

    return listener


def _step_failure(ctx: RunContext, failed: StepFailed) -> ExecutionError:
    from flowloom.providers import ProviderUnavailable

    error = failed.error
    if isinstance(error, ProviderUnavailable):
        if error.retry_after_s is not None:
            return RetryNode(after_s=error.retry_after_s, reason=str(error))
        return ctx.fail(str(error), retryable=True)
    return ctx.fail(f"step {failed.step}: {error}", retryable=error.retryable)


async def _record(
    ctx: RunContext, config: AgentConfig, response: ChatResponse, step: int
) -> Decimal | None:
    """Write the usage row of one model call; its exact cost, or None when it was not written."""
    from flowloom.providers import UsageEvent

    event = UsageEvent(
        provider=config.provider,
        model=config.model,
        tokens_in=response.usage.tokens_in,
        tokens_out=response.usage.tokens_out,
        type="agent",
        run_id=ctx.run_id,
        node_id=ctx.node_id,
        attempt=ctx.attempt,
        metadata={
            "node_type": Agent.type_name,
            "step": step,
            "answered_by": response.model,
            "finish_reason": response.finish_reason,
            "tool_calls": [call.name for call in response.tool_calls],
            "credential": config.credential,
        },
    )
    return await record_usage(ctx, event)
