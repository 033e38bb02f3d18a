"""An MCP client on the official ``mcp`` SDK: connect to a server, list its tools, call one.

A server is reached by a stdio command (``command`` + ``args`` + ``env``: flowloom starts it as a
child process and talks over its stdin and stdout) or by a streamable HTTP ``url`` (+
``headers``). Errors come back as one small branch of flowloom's tree::

    ExecutionError
    └── McpError                    something went wrong talking to an MCP server
        ├── McpServerUnavailable    it would not start, refused the connection, or hung up
        ├── McpToolUnknown          it has no tool of that name (close names are suggested)
        ├── McpToolFailed           the tool answered with an error result
        └── McpTimeout              no answer within the time allowed

Values of ``env`` and ``headers`` are secrets: they are never logged, never shown in a repr, and
cut out of every error message (a server's stderr may echo them). A stdio child gets only the
SDK's small default environment (PATH, HOME, ...) plus ``env``, never flowloom's own.

The SDK (and its HTTP client) are imported on the first connection: importing this module is
cheap, so start-up never pays for MCP.
"""

from __future__ import annotations

import contextlib
import difflib
import json
import math
import tempfile
from collections.abc import Iterable, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any, Final, Literal, Protocol
from urllib.parse import urlsplit, urlunsplit

from flowloom.exceptions import ExecutionError
from flowloom.providers.errors import redact

if TYPE_CHECKING:
    from mcp import Client

__all__ = [
    "McpConnection",
    "McpError",
    "McpServerSpec",
    "McpServerUnavailable",
    "McpServers",
    "McpTimeout",
    "McpTool",
    "McpToolFailed",
    "McpToolResult",
    "McpToolUnknown",
    "StaticMcpServers",
    "call_tool",
    "list_tools",
    "safe_url",
    "tool_failed",
]

_STDERR_TAIL_CHARS: Final = 400
_MAX_TOOL_PAGES: Final = 50


# ---- errors


class McpError(ExecutionError):
    """Talking to an MCP server failed; ``server`` names it (never with its secrets)."""

    def __init__(self, message: str, *, server: str) -> None:
        self.server = server
        super().__init__(message)


class McpServerUnavailable(McpError):
    """The server would not start, could not be reached, or closed the connection."""


class McpToolUnknown(McpError):
    """The server lists no tool of that name."""

    def __init__(self, tool: str, *, server: str, known: Iterable[str]) -> None:
        self.tool = tool
        self.known = sorted(known)
        message = f"{server} has no tool {tool!r}"
        close = difflib.get_close_matches(tool, self.known, n=3)
        if close:
            message += f"; did you mean {', '.join(repr(name) for name in close)}?"
        elif self.known:
            message += f"; its tools are {', '.join(repr(name) for name in self.known[:20])}"
        super().__init__(message, server=server)


class McpToolFailed(McpError):
    """The tool ran and reported an error (``result`` holds its answer, when there is one)."""

    def __init__(
        self, message: str, *, server: str, tool: str, result: McpToolResult | None = None
    ) -> None:
        self.tool = tool
        self.result = result
        super().__init__(message, server=server)


class McpTimeout(McpError):
    """No answer within ``timeout_s``."""

    def __init__(self, message: str, *, server: str, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        super().__init__(message, server=server)


# ---- what a server is and what it answers


@dataclass(frozen=True, slots=True, kw_only=True)
class McpServerSpec:
    """How to reach one MCP server. ``env`` and ``headers`` values are secrets."""

    transport: Literal["stdio", "http"]
    command: str | None = None
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: str | None = None
    url: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    connect_timeout_s: float = 30.0
    """How long starting (or reaching) the server and the protocol handshake may take."""
    label: str | None = None
    """A name for messages (the integration's name); the command or URL when None."""

    def __post_init__(self) -> None:
        if self.transport == "stdio" and not self.command:
            raise ValueError("a stdio MCP server needs a command")
        if self.transport == "http" and not self.url:
            raise ValueError("an http MCP server needs a url")
        if not (self.connect_timeout_s > 0 and math.isfinite(self.connect_timeout_s)):
            raise ValueError("connect_timeout_s must be a positive number of seconds")

    def __repr__(self) -> str:
        # The values of env and headers never appear, only their names.
        return (
            f"McpServerSpec(transport={self.transport!r}, {self.describe()}, "
            f"env={sorted(self.env)!r}, headers={sorted(self.headers)!r})"
        )

    def describe(self) -> str:
        """The server for a message: its label, or its command or URL (without credentials)."""
        if self.label:
            return f"MCP server {self.label!r}"
        if self.transport == "stdio":
            return f"MCP server `{self.command}`"
        return f"MCP server {safe_url(self.url or '')}"

    def secrets(self) -> tuple[str, ...]:
        """Every value to cut out of messages: env and header values, URL credentials."""
        values = [*self.env.values(), *self.headers.values()]
        for value in self.headers.values():
            # "Bearer abc": the token alone may be echoed too.
            values.extend(part for part in value.split() if len(part) >= 8)
        if self.url:
            parts = urlsplit(self.url)
            values.extend(v for v in (parts.password, parts.query) if v)
        return tuple(sorted({v for v in values if len(v) >= 3}, key=len, reverse=True))

    def redact(self, text: str) -> str:
        return redact(text, self.secrets())


def safe_url(url: str) -> str:
    """``url`` without user info, query or fragment (where tokens hide)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


@dataclass(frozen=True, slots=True)
class McpTool:
    """A tool as the server lists it."""

    name: str
    description: str
    input_schema: dict[str, Any]
    """A JSON Schema of the arguments object."""

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "input_schema": self.input_schema,
        }


@dataclass(frozen=True, slots=True)
class McpToolResult:
    """A tool's answer, as JSON-ready values."""

    content: list[dict[str, Any]]
    """The content blocks (``{"type": "text", "text": ...}``, images, resources)."""
    structured: Any
    """The structured content the tool returned, or None."""
    is_error: bool

    @property
    def text(self) -> str:
        """Every text block, joined by newlines."""
        return "\n".join(
            str(block.get("text", "")) for block in self.content if block.get("type") == "text"
        )

    @property
    def value(self) -> Any:
        """The structured content; else the text parsed as JSON; else the text itself.

        Servers built with the SDK wrap a plain return value as ``{"result": value}``; that
        wrapper is taken off, so a tool returning 5 gives 5.
        """
        if self.structured is not None:
            if isinstance(self.structured, dict) and list(self.structured) == ["result"]:
                return self.structured["result"]
            return self.structured
        text = self.text
        try:
            return json.loads(text)
        except ValueError:
            return text

    def to_json(self) -> dict[str, Any]:
        return {"result": self.value, "text": self.text, "is_error": self.is_error}


class McpServers(Protocol):
    """The MCP servers a run may use: the owner's registered integrations, and whether the
    owner may start local commands (stdio servers) at all."""

    async def server(self, integration_id: str, *, owner_id: str | None) -> McpServerSpec:
        """The owner's MCP integration ``integration_id``, secrets included.

        NotFound when the owner has none of that id (or it is another user's); InputError when
        it is disabled or is not an MCP server.
        """
        ...

    async def may_run_commands(self, *, owner_id: str | None) -> bool:
        """Whether stdio servers (commands on this host) may be started for ``owner_id``."""
        ...


@dataclass(slots=True)
class StaticMcpServers:
    """McpServers from a fixed table: for tests and for embedding flowloom in a program."""

    servers: dict[str, McpServerSpec] = field(default_factory=dict)
    allow_commands: bool = True

    async def server(self, integration_id: str, *, owner_id: str | None) -> McpServerSpec:
        from flowloom.exceptions import NotFound

        try:
            return self.servers[integration_id]
        except KeyError:
            raise NotFound("integration", integration_id) from None

    async def may_run_commands(self, *, owner_id: str | None) -> bool:
        return self.allow_commands


# ---- the connection


class McpConnection:
    """One open session with one server; use it as ``async with McpConnection(spec) as c:``.

    Enter and leave it in the same task (the SDK holds task groups across the block).
    """

    def __init__(self, spec: McpServerSpec) -> None:
        self.spec = spec
        self._stack: AsyncExitStack | None = None
        self._client: Client | None = None
        self._stderr: IO[str] | None = None
        self._tools: dict[str, McpTool] | None = None

    def __repr__(self) -> str:
        return f"McpConnection({self.spec!r})"

    async def __aenter__(self) -> McpConnection:
        stack = AsyncExitStack()
        try:
            # No outer time limit here: the SDK's task groups, entered in this block, must not
            # sit inside a cancel scope that ends with it. The handshake is a request, so the
            # client's read timeout (connect_timeout_s) bounds it, and httpx bounds connecting.
            self._client = await stack.enter_async_context(await self._new_client(stack))
        except Exception as exc:
            # The process or connection is already gone; the first error is the news.
            with contextlib.suppress(Exception):
                await stack.aclose()
            error = self._connect_error(exc)
            self._close_stderr()
            raise error from None
        except BaseException:
            await stack.aclose()
            self._close_stderr()
            raise
        self._stack = stack
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        stack, self._stack, self._client = self._stack, None, None
        try:
            if stack is not None:
                # A server that dies while we hang up has done its work already.
                with contextlib.suppress(Exception):
                    await stack.aclose()
        finally:
            self._close_stderr()

    async def list_tools(self) -> list[McpTool]:
        """Every tool the server offers (all pages), in its order."""
        return list((await self._tool_table()).values())

    async def call_tool(
        self, name: str, arguments: Mapping[str, Any] | None = None, *, timeout_s: float = 60.0
    ) -> McpToolResult:
        """Call tool ``name``. McpToolUnknown when the server lists no such tool; McpTimeout
        after ``timeout_s``. An error result is returned (``is_error``), not raised: callers
        decide (see :func:`call_tool` and :meth:`McpToolResult.value`)."""
        import anyio
        from mcp.shared.exceptions import MCPError

        tools = await self._tool_table()
        if name not in tools:
            raise McpToolUnknown(name, server=self.spec.describe(), known=tools)
        client = self._require_client()
        try:
            # The SDK's own read timeout cancels the request politely; the outer limit is a
            # backstop in case a transport does not honour it.
            with anyio.fail_after(timeout_s * 1.5 + 1):
                result = await client.call_tool(
                    name, dict(arguments or {}), read_timeout_seconds=timeout_s
                )
        except TimeoutError:
            raise self._timeout(f"tool {name!r}", timeout_s) from None
        except MCPError as exc:
            raise self._call_error(exc, name, timeout_s) from None
        except Exception as exc:
            raise self._unavailable(exc, f"calling tool {name!r}") from None
        return _result(result, self.spec)

    # ---- inside

    async def _new_client(self, stack: AsyncExitStack) -> Client:
        from mcp import Client, StdioServerParameters
        from mcp.client.stdio import stdio_client
        from mcp.client.streamable_http import streamable_http_client
        from mcp_types import Implementation

        import flowloom

        spec = self.spec
        info = Implementation(name="flowloom", version=flowloom.__version__)
        if spec.transport == "stdio":
            assert spec.command is not None
            params = StdioServerParameters(
                command=spec.command, args=list(spec.args), env=dict(spec.env), cwd=spec.cwd
            )
            # The child's stderr goes to a file we read back when it fails to start.
            self._stderr = tempfile.TemporaryFile(  # noqa: SIM115 - closed in __aexit__
                mode="w+", encoding="utf-8", errors="replace"
            )
            transport: Any = stdio_client(params, errlog=self._stderr)
        else:
            import httpx2

            assert spec.url is not None
            http = await stack.enter_async_context(
                httpx2.AsyncClient(
                    headers=dict(spec.headers),
                    timeout=httpx2.Timeout(spec.connect_timeout_s, read=300.0),
                    trust_env=False,
                )
            )
            transport = streamable_http_client(spec.url, http_client=http)
        return Client(
            transport,
            client_info=info,
            cache=None,
            read_timeout_seconds=spec.connect_timeout_s,
        )

    def _require_client(self) -> Client:
        if self._client is None:
            raise RuntimeError("use McpConnection as `async with McpConnection(spec) as c:`")
        return self._client

    async def _tool_table(self) -> dict[str, McpTool]:
        if self._tools is not None:
            return self._tools
        import anyio
        from mcp.shared.exceptions import MCPError

        client = self._require_client()
        tools: dict[str, McpTool] = {}
        cursor: str | None = None
        timeout_s = self.spec.connect_timeout_s
        try:
            with anyio.fail_after(timeout_s):
                for _ in range(_MAX_TOOL_PAGES):
                    page = await client.list_tools(cursor=cursor)
                    for tool in page.tools:
                        tools[tool.name] = McpTool(
                            tool.name, tool.description or "", dict(tool.input_schema or {})
                        )
                    cursor = page.next_cursor
                    if not cursor:
                        break
        except TimeoutError:
            raise self._timeout("the list of tools", timeout_s) from None
        except MCPError as exc:
            raise McpServerUnavailable(
                f"{self.spec.describe()} refused to list its tools: {self._clean(exc.message)}",
                server=self.spec.describe(),
            ) from None
        except Exception as exc:
            raise self._unavailable(exc, "listing its tools") from None
        self._tools = tools
        return tools

    def _connect_error(self, exc: BaseException) -> McpError:
        from mcp.shared.exceptions import MCPError
        from mcp_types import REQUEST_TIMEOUT

        spec = self.spec
        leaf = _leaf(exc)
        timed_out = isinstance(leaf, MCPError) and leaf.code == REQUEST_TIMEOUT
        if timed_out or isinstance(leaf, TimeoutError):
            return self._timeout("starting up" if spec.transport == "stdio" else "connecting", 0)
        if spec.transport == "stdio" and isinstance(leaf, OSError | ValueError):
            reason = leaf.strerror if isinstance(leaf, OSError) and leaf.strerror else str(leaf)
            return McpServerUnavailable(
                f"{spec.describe()} could not be started: {self._clean(reason)}"
                f"{self._stderr_tail()}",
                server=spec.describe(),
            )
        return self._unavailable(leaf, "connecting")

    def _unavailable(self, exc: BaseException, doing: str) -> McpServerUnavailable:
        from mcp.shared.exceptions import MCPError

        leaf = _leaf(exc)
        reason = leaf.message if isinstance(leaf, MCPError) else str(leaf) or type(leaf).__name__
        if self.spec.transport == "stdio":
            what = "closed the connection" if doing == "connecting" else "failed"
            message = f"{self.spec.describe()} {what} while {doing}: {self._clean(reason)}"
        else:
            message = f"{self.spec.describe()} failed while {doing}: {self._clean(reason)}"
        return McpServerUnavailable(message + self._stderr_tail(), server=self.spec.describe())

    def _call_error(self, exc: Any, name: str, timeout_s: float) -> McpError:
        from mcp_types import CONNECTION_CLOSED, INVALID_PARAMS, REQUEST_TIMEOUT

        if exc.code == REQUEST_TIMEOUT:
            return self._timeout(f"tool {name!r}", timeout_s)
        if exc.code == CONNECTION_CLOSED:
            return self._unavailable(exc, f"calling tool {name!r}")
        if exc.code == INVALID_PARAMS and "unknown tool" in str(exc.message).lower():
            return McpToolUnknown(name, server=self.spec.describe(), known=self._tools or {})
        return McpToolFailed(
            f"{self.spec.describe()} refused the call of {name!r}: {self._clean(exc.message)}",
            server=self.spec.describe(),
            tool=name,
        )

    def _timeout(self, what: str, timeout_s: float) -> McpTimeout:
        limit = timeout_s or self.spec.connect_timeout_s
        return McpTimeout(
            f"{self.spec.describe()} gave no answer for {what} within {limit:g} s",
            server=self.spec.describe(),
            timeout_s=limit,
        )

    def _clean(self, text: str) -> str:
        return self.spec.redact(" ".join(str(text).split()))

    def _stderr_tail(self) -> str:
        if self._stderr is None:
            return ""
        try:
            self._stderr.flush()
            self._stderr.seek(0)
            tail = self._stderr.read()[-_STDERR_TAIL_CHARS:].strip()
        except (OSError, ValueError):
            return ""
        if not tail:
            return ""
        return f" (its stderr ends: {self._clean(tail)})"

    def _close_stderr(self) -> None:
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None


def _leaf(exc: BaseException) -> BaseException:
    """The first real error inside (nested) exception groups, which the SDK's task groups make."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def _result(result: Any, spec: McpServerSpec) -> McpToolResult:
    blocks: list[dict[str, Any]] = []
    for block in result.content:
        dumped = block.model_dump(mode="json", by_alias=True, exclude_none=True)
        blocks.append(dumped)
    return McpToolResult(blocks, result.structured_content, bool(result.is_error))


# ---- one-shot helpers


async def list_tools(spec: McpServerSpec) -> list[McpTool]:
    """Connect, list the server's tools, hang up."""
    async with McpConnection(spec) as connection:
        return await connection.list_tools()


async def call_tool(
    spec: McpServerSpec,
    name: str,
    arguments: Mapping[str, Any] | None = None,
    *,
    timeout_s: float = 60.0,
    raise_on_error: bool = True,
) -> McpToolResult:
    """Connect, call one tool, hang up. With ``raise_on_error`` an error result raises
    McpToolFailed carrying the tool's own message."""
    async with McpConnection(spec) as connection:
        result = await connection.call_tool(name, arguments, timeout_s=timeout_s)
    if result.is_error and raise_on_error:
        raise tool_failed(spec, name, result)
    return result


def tool_failed(spec: McpServerSpec, name: str, result: McpToolResult) -> McpToolFailed:
    """The McpToolFailed for an error result, its message the tool's own (redacted)."""
    said = spec.redact(" ".join(result.text.split())) or "no message"
    return McpToolFailed(
        f"tool {name!r} of {spec.describe()} reported an error: {said}",
        server=spec.describe(),
        tool=name,
        result=result,
    )
