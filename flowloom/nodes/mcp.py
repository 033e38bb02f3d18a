"""``mcp.tool``: call one tool of an MCP server, its arguments mapped from the node's inputs.

The server is written inline (a stdio command or a streamable HTTP URL) or names one of the
owner's registered integrations, reached through ``ctx.integrations``; the node never touches
storage. Two rules guard the host: a stdio server is a command run on this machine, so it starts
only when ``ctx.integrations`` says the owner may start commands (admins); an HTTP server on a
private, loopback or link-local address is refused unless the instance allows private targets,
like ``http.request``.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from flowloom.exceptions import InputError, NotFound
from flowloom.field_docs import describe_fields
from flowloom.nodes.base import Category, Node, NodeConfig, NodeResult, Port, PortType, RunContext
from flowloom.nodes.text import sandbox

if TYPE_CHECKING:
    from flowloom.integrations.mcp import McpServerSpec

__all__ = [
    "McpInlineServer",
    "McpToolCall",
    "McpToolCallConfig",
    "check_variables",
    "render_value",
    "resolve_server",
]


class McpInlineServer(BaseModel):
    """An MCP server written into the workflow. Prefer a registered integration for servers
    that need secrets: values written here are part of the workflow definition."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=describe_fields)

    transport: Literal["stdio", "http"]
    """``stdio``: flowloom starts ``command``; ``http``: a streamable HTTP ``url``."""
    command: str | None = Field(default=None, min_length=1)
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)
    cwd: str | None = None
    url: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    timeout_s: float = Field(default=30.0, gt=0, le=600)
    """How long starting or reaching the server may take."""

    def spec(self) -> McpServerSpec:
        from flowloom.integrations.mcp import McpServerSpec

        return McpServerSpec(
            transport=self.transport,
            command=self.command,
            args=tuple(self.args),
            env=dict(self.env),
            cwd=self.cwd,
            url=self.url,
            headers=dict(self.headers),
            connect_timeout_s=self.timeout_s,
        )


def check_variables(names: list[str], reserved: set[str]) -> list[str]:
    """``names`` if each is a valid, unreserved, unique identifier (they become input ports)."""
    for name in names:
        if not name.isidentifier():
            raise ValueError(f"variable {name!r} is not a valid name (letters, digits, _)")
        if name in reserved:
            raise ValueError(f"variable {name!r} clashes with the setting of that name")
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"variables declared twice: {', '.join(duplicates)}")
    return names


class McpToolCallConfig(NodeConfig):
    server: McpInlineServer | str
    """The server: the id of one of your MCP integrations (``intg_...``), or written inline as
    ``{transport, command, args, env}`` or ``{transport, url, headers}``."""
    tool: str = Field(min_length=1, max_length=200)
    """The tool's name, as the server lists it."""
    arguments: dict[str, Any] = Field(default_factory=dict)
    """The tool's arguments: fixed values, and text templates over the variables
    (``"{{ city }}"`` alone passes the input's value unchanged, number or object alike)."""
    variables: list[str] = Field(default_factory=list)
    """Inputs the arguments' templates read; each becomes an input port of the same name."""
    timeout_s: float = Field(default=60.0, gt=0, le=3600)
    """How long the tool may take to answer."""
    fail_on_error: bool = True
    """Fail the node when the tool reports an error; otherwise output it with is_error true."""

    @field_validator("variables")
    @classmethod
    def _check_variables(cls, names: list[str]) -> list[str]:
        return check_variables(names, set(cls.model_fields))

    @model_validator(mode="after")
    def _check_templates(self) -> McpToolCallConfig:
        undeclared = sorted(_template_names(self.arguments) - set(self.variables))
        if undeclared:
            names = ", ".join(repr(name) for name in undeclared)
            raise ValueError(f"arguments use {names}, not declared in variables")
        return self


def _template_names(value: Any) -> set[str]:
    """The variables the templates in ``value`` read (nested in objects and lists too)."""
    if isinstance(value, dict):
        return set().union(*(_template_names(item) for item in value.values()))
    if isinstance(value, list):
        return set().union(*(_template_names(item) for item in value))
    if not isinstance(value, str) or "{{" not in value:
        return set()
    from jinja2 import TemplateSyntaxError, meta

    env = sandbox()
    try:
        parsed = env.parse(value)
    except TemplateSyntaxError as exc:
        raise ValueError(f"arguments: template syntax error: {exc.message}") from None
    return set(meta.find_undeclared_variables(parsed)) - set(env.globals)


class McpToolCall(Node[McpToolCallConfig]):
    """Call one tool of an MCP server and output its answer.

    ``result`` is the tool's structured content when it has one, else its text parsed as JSON,
    else the text; ``text`` is the text content; ``is_error`` says whether the tool reported an
    error (which fails the node unless ``fail_on_error`` is off). A server that will not start,
    an unknown tool and a timeout fail the node with a message saying which.
    """

    type_name = "mcp.tool"
    display_name = "MCP tool"
    icon = "plug"
    category = Category.TOOL
    deterministic = False
    dynamic_ports = True
    Config = McpToolCallConfig
    raw_template_fields = frozenset({"arguments"})

    def inputs(self, config: McpToolCallConfig) -> list[Port]:
        return [Port(name, PortType.ANY) for name in config.variables]

    def outputs(self, config: McpToolCallConfig) -> list[Port]:
        return [
            Port("result", PortType.ANY),
            Port("text", PortType.STRING),
            Port("is_error", PortType.BOOLEAN),
        ]

    def concurrency_key(self, config: McpToolCallConfig) -> str | None:
        if isinstance(config.server, str):
            return f"mcp:{config.server}"
        return f"mcp:{config.server.command or config.server.url}"

    async def run(
        self, ctx: RunContext, config: McpToolCallConfig, inputs: dict[str, Any]
    ) -> NodeResult:
        from flowloom.integrations.mcp import McpConnection, McpError, tool_failed

        scope = {name: inputs[name] for name in config.variables if name in inputs}
        arguments = await render_value(ctx, config.arguments, scope, "arguments")
        spec = await resolve_server(ctx, config.server)
        try:
            async with McpConnection(spec) as connection:
                result = await connection.call_tool(
                    config.tool, arguments, timeout_s=config.timeout_s
                )
        except McpError as exc:
            raise ctx.fail(str(exc), retryable=_retryable(exc)) from None
        if result.is_error and config.fail_on_error:
            raise ctx.fail(str(tool_failed(spec, config.tool, result)))
        return NodeResult(
            {"result": result.value, "text": result.text, "is_error": result.is_error}
        )


def _retryable(exc: Exception) -> bool:
    from flowloom.integrations.mcp import McpServerUnavailable, McpTimeout

    return isinstance(exc, McpServerUnavailable | McpTimeout)


async def resolve_server(ctx: RunContext, server: McpInlineServer | str) -> McpServerSpec:
    """The server to connect to, after the host's rules: NodeFailed when it is not the owner's,
    when a command may not be started, or when the URL is a refused address."""
    if isinstance(server, str):
        if ctx.integrations is None:
            raise ctx.fail(f"integration {server!r}: no registered integrations here")
        try:
            spec = await ctx.integrations.server(server, owner_id=ctx.owner_id)
        except NotFound:
            raise ctx.fail(f"you have no integration {server!r}") from None
        except InputError as exc:
            raise ctx.fail(str(exc)) from None
    else:
        try:
            spec = server.spec()
        except ValueError as exc:
            raise ctx.fail(f"server: {exc}") from None
    if spec.transport == "stdio":
        allowed = ctx.integrations is not None and await ctx.integrations.may_run_commands(
            owner_id=ctx.owner_id
        )
        if not allowed:
            raise ctx.fail(
                f"{spec.describe()}: starting commands (stdio MCP servers) on this host is "
                "allowed for administrators only; use an http server"
            )
    elif not ctx.settings.allow_private_http:
        await _check_public_url(ctx, spec)
    return spec


async def _check_public_url(ctx: RunContext, spec: McpServerSpec) -> None:
    from flowloom.nodes._net import resolve_checked

    parts = urlsplit(spec.url or "")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ctx.fail(f"{spec.describe()}: the url must be http:// or https:// and name a host")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        await resolve_checked(parts.hostname, port)
    except ValueError as exc:
        raise ctx.fail(f"{spec.describe()}: {exc}") from None


async def render_value(ctx: RunContext, value: Any, scope: dict[str, Any], path: str) -> Any:
    """``value`` with every string template rendered over ``scope``, in the sandbox.

    A string that is one template and nothing else (``"{{ n }}"``) yields the value itself, so
    numbers and objects keep their type; any other template renders to text (off the event
    loop, under the sandbox's time limit, when it can loop).
    """
    if isinstance(value, dict):
        return {k: await render_value(ctx, v, scope, f"{path}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [await render_value(ctx, v, scope, f"{path}[{i}]") for i, v in enumerate(value)]
    if not isinstance(value, str) or "{{" not in value:
        return value
    from jinja2 import TemplateError
    from jinja2.exceptions import SecurityError

    from flowloom.nodes._sandbox import render

    try:
        single = _single_expression(value)
        if single is not None:
            # One expression cannot loop; the sandbox bounds what it can build.
            return single(**scope)
        return await render(_compile(value), scope)
    except SecurityError as exc:
        raise ctx.fail(f"{path}: the template did something the sandbox forbids: {exc}") from None
    except TemplateError as exc:
        raise ctx.fail(f"{path}: template error: {exc}") from None


@functools.lru_cache(maxsize=256)
def _compile(source: str) -> Any:
    return sandbox().from_string(source)


@functools.lru_cache(maxsize=256)
def _single_expression(source: str) -> Any:
    """A callable giving the value of ``source`` when it is exactly ``{{ expression }}``."""
    text = source.strip()
    if not (text.startswith("{{") and text.endswith("}}")) or text.count("{{") != 1:
        return None
    expression = text[2:-2].strip()
    if not expression:
        return None
    compiled = sandbox().compile_expression(expression, undefined_to_none=False)

    def evaluate(**scope: Any) -> Any:
        from jinja2 import StrictUndefined, UndefinedError

        value = compiled(**scope)
        if isinstance(value, StrictUndefined):
            # Touching it raises UndefinedError naming the missing variable.
            str(value)
        if type(value).__name__.endswith("Undefined"):
            raise UndefinedError(f"{expression!r} is undefined")
        return value

    return evaluate
