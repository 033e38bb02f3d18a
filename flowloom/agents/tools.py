"""What an agent may call: the toolbox built from its tools.

The tool shapes (:class:`McpTools`, :class:`HttpTool`, :class:`WorkflowTool`) are ``ai.agent``'s
config models, a public contract that stored agents hold too; they live in
:mod:`flowloom.nodes.agent_tools`, which does not import the node, so the loop and the node do
not import each other. :func:`open_toolbox`
turns them into the tools a model sees and a handler per tool, within a :class:`RunContext`'s
rules: MCP servers resolved as ``mcp.tool`` does, HTTP requests within the address policy,
workflows as sub-runs. This module imports neither storage nor the API, so nodes may use it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AsyncExitStack, suppress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from flowloom.exceptions import ExecutionError
from flowloom.nodes.agent_tools import AgentTool, HttpTool, McpTools, WorkflowTool
from flowloom.nodes.base import RunContext, WorkflowRef
from flowloom.nodes.mcp import render_value, resolve_server

if TYPE_CHECKING:
    from flowloom.integrations.mcp import McpConnection
    from flowloom.providers import ToolCall, ToolSpec

__all__ = [
    "AgentTool",
    "HttpTool",
    "McpTools",
    "ToolOutcome",
    "Toolbox",
    "WorkflowTool",
    "as_text",
    "open_toolbox",
]

_UNSAFE_NAME_CHARS = re.compile(r"[^A-Za-z0-9_-]")
_EMPTY_OBJECT: dict[str, Any] = {"type": "object", "properties": {}}


@dataclass(frozen=True, slots=True)
class ToolOutcome:
    """What one tool call gave."""

    value: Any
    """What the step records as the tool's result."""
    for_model: str
    """What the model reads."""
    is_error: bool = False


Handler = Callable[[dict[str, Any], str], Awaitable[ToolOutcome]]
"""Runs one call: its arguments, and the call's place in the loop (``"3.1"``: step 3, second
call), which keeps the idempotency keys of two calls of one tool apart."""


@dataclass(slots=True)
class Toolbox:
    """The tools as the model sees them, and the handler of each by name."""

    specs: list[ToolSpec] = field(default_factory=list)
    handlers: dict[str, Handler] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.specs)

    async def call(self, call: ToolCall, place: str = "1.0") -> ToolOutcome:
        """Run one call; a failing or unknown tool is an error outcome, never an exception.

        ``place`` is where the call stands in the loop (step and index), so that each call of
        a node's agent has an idempotency key of its own that a retry of the node repeats."""
        handler = self.handlers.get(call.name)
        if handler is None:
            known = ", ".join(sorted(self.handlers)) or "none"
            return _error(f"there is no tool {call.name!r}; the tools are: {known}")
        if not isinstance(call.arguments, dict):
            return _error("the arguments must be a JSON object")
        try:
            return await handler(call.arguments, place)
        except (ExecutionError, ValueError) as exc:
            # NodeFailed, RetryNode and MCP errors alike: the tool failed, the agent goes on.
            return _error(_reason(exc))


def as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)


def _error(message: str) -> ToolOutcome:
    return ToolOutcome({"error": message}, f"error: {message}", is_error=True)


def _reason(exc: Exception) -> str:
    text = str(exc)
    # NodeFailed's text starts with the node and attempt; the model needs only the reason.
    return text.split("): ", 1)[-1] if text.startswith("node ") else text


async def open_toolbox(
    ctx: RunContext, tools: Sequence[McpTools | HttpTool | WorkflowTool], stack: AsyncExitStack
) -> Toolbox:
    """The toolbox for ``tools``; MCP servers are connected here and stay open until ``stack``
    closes. Raises ``ctx.fail`` when a server cannot be used or lacks a named tool, and when
    two tools end up with the same name."""
    from flowloom.providers import ToolSpec

    toolbox = Toolbox()

    def add(name: str, description: str, parameters: dict[str, Any], handler: Handler) -> None:
        if name in toolbox.handlers:
            raise ctx.fail(
                f"two tools are called {name!r}; give one MCP server a prefix to tell them apart"
            )
        toolbox.specs.append(ToolSpec(name, description, parameters))
        toolbox.handlers[name] = handler

    for entry in tools:
        if isinstance(entry, McpTools):
            await _add_mcp(ctx, entry, stack, add)
        elif isinstance(entry, HttpTool):
            add(entry.name, entry.description, entry.parameters, _http_handler(ctx, entry))
        else:
            add(entry.name, entry.description, entry.parameters, _workflow_handler(ctx, entry))
    return toolbox


async def _add_mcp(
    ctx: RunContext,
    entry: McpTools,
    stack: AsyncExitStack,
    add: Callable[[str, str, dict[str, Any], Handler], None],
) -> None:
    from flowloom.integrations.mcp import McpConnection, McpError

    spec = await resolve_server(ctx, entry.server)
    try:
        connection = await stack.enter_async_context(McpConnection(spec))
        listed = await connection.list_tools()
    except McpError as exc:
        raise ctx.fail(str(exc), retryable=True) from None
    wanted = set(entry.tools)
    missing = sorted(wanted - {tool.name for tool in listed})
    if missing:
        raise ctx.fail(f"{spec.describe()} has no tool {', '.join(map(repr, missing))}")
    for tool in listed:
        if wanted and tool.name not in wanted:
            continue
        name = (entry.prefix + _UNSAFE_NAME_CHARS.sub("_", tool.name))[:64]
        add(
            name,
            tool.description,
            tool.input_schema or dict(_EMPTY_OBJECT),
            _mcp_handler(connection, tool.name, entry.timeout_s),
        )


def _mcp_handler(connection: McpConnection, tool: str, timeout_s: float) -> Handler:
    async def handle(arguments: dict[str, Any], place: str) -> ToolOutcome:
        result = await connection.call_tool(tool, arguments, timeout_s=timeout_s)
        text = result.text or as_text(result.value)
        if result.is_error:
            return ToolOutcome(result.value, f"error: {text}", is_error=True)
        return ToolOutcome(result.value, text)

    return handle


def _http_handler(ctx: RunContext, tool: HttpTool) -> Handler:
    from flowloom.nodes._net import fetch

    async def handle(arguments: dict[str, Any], place: str) -> ToolOutcome:
        url = str(await render_value(ctx, tool.url, arguments, f"tool {tool.name} url"))
        body = arguments if tool.method in ("POST", "PUT", "PATCH") else None
        headers = dict(tool.headers)
        if tool.method != "GET":
            headers.setdefault("Idempotency-Key", f"{ctx.idempotency_key}:{place}:{tool.name}")
        fetched = await fetch(
            ctx, tool.method, url, headers=headers, body=body, timeout_s=tool.timeout_s
        )
        content = fetched.content.decode(fetched.charset or "utf-8", "replace")
        value: Any = content
        if fetched.content_type == "application/json" or fetched.content_type.endswith("+json"):
            with suppress(ValueError):
                value = json.loads(content)
        result = {"status": fetched.status, "body": value}
        if fetched.status >= 400:
            return ToolOutcome(result, f"error: {as_text(result)}", is_error=True)
        return ToolOutcome(result, as_text(result))

    return handle


def _workflow_handler(ctx: RunContext, tool: WorkflowTool) -> Handler:
    async def handle(arguments: dict[str, Any], place: str) -> ToolOutcome:
        outputs = await ctx.subruns.start_and_wait(
            WorkflowRef(id=tool.workflow_id), tool.version, arguments
        )
        return ToolOutcome(outputs, as_text(outputs))

    return handle
