"""A small MCP server for the tests, written with the SDK's MCPServer (FastMCP in mcp 1.x).

    python mcp_test_server.py                 # over stdio
    python mcp_test_server.py http PORT       # streamable HTTP on 127.0.0.1:PORT/mcp

Tools: ``add`` (structured int), ``weather`` (a dict, answered as JSON text), ``shout`` (text),
``read_env`` (the value of an environment variable: proves env reaches the child), ``fail``
(an error result carrying the message), ``sleep`` (for timeouts), ``whoami`` (an HTTP
header's value, to prove headers reach the server). With ``MCP_TEST_LEAK`` set, the server
prints that value to stderr and exits at once (a server that dies while starting).
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError

server = MCPServer("flowloom-test", log_level="WARNING")


@server.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@server.tool()
def weather(city: str) -> dict[str, Any]:
    """The (made up) weather of a city."""
    return {"city": city, "temp_c": 21, "sky": "clear"}


@server.tool(structured_output=False)
def shout(text: str) -> str:
    """The text in capitals."""
    return text.upper()


@server.tool()
def read_env(name: str) -> str:
    """The value of an environment variable of this server process ('' when unset)."""
    return os.environ.get(name, "")


@server.tool()
def fail(message: str) -> str:
    """Always fails, with ``message``."""
    raise ToolError(message)


@server.tool()
async def sleep(seconds: float) -> str:
    """Sleeps, then answers."""
    await asyncio.sleep(seconds)
    return "awake"


@server.tool()
def whoami(ctx: Context) -> str:
    """The Authorization header this request came with ('' over stdio)."""
    request = ctx.request_context.request
    headers = getattr(request, "headers", None)
    return "" if headers is None else str(headers.get("authorization", ""))


if __name__ == "__main__":
    leak = os.environ.get("MCP_TEST_LEAK")
    if leak:
        print(f"fatal: cannot log in with token {leak}", file=sys.stderr)
        sys.exit(3)
    if len(sys.argv) > 2 and sys.argv[1] == "http":
        server.run("streamable-http", port=int(sys.argv[2]))
    else:
        server.run()
