"""The MCP client against real server processes: the tests' own server (MCPServer, the SDK's
FastMCP) over stdio and over streamable HTTP, and the published ``mcp-server-time``."""

from __future__ import annotations

import logging
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from flowloom.integrations.mcp import (
    McpConnection,
    McpServerSpec,
    McpServerUnavailable,
    McpTimeout,
    McpToolFailed,
    McpToolUnknown,
    call_tool,
    list_tools,
)

SERVER = str(Path(__file__).with_name("mcp_test_server.py"))
TIME_SERVER = str(Path(sys.executable).with_name("mcp-server-time"))
SECRET = "tok-0123456789-very-secret"


def stdio(**overrides: object) -> McpServerSpec:
    values: dict[str, object] = {
        "transport": "stdio",
        "command": sys.executable,
        "args": (SERVER,),
        "connect_timeout_s": 20.0,
    }
    values.update(overrides)
    return McpServerSpec(**values)  # type: ignore[arg-type]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def http_url() -> Iterator[str]:
    """The test server over streamable HTTP, in its own process on a free port."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, SERVER, "http", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("the MCP test server did not start") from None
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        process.terminate()
        process.wait(timeout=10)


async def test_stdio_lists_tools_and_calls_them_over_one_connection() -> None:
    async with McpConnection(stdio(env={"MCP_TEST_TOKEN": SECRET})) as connection:
        tools = {tool.name: tool for tool in await connection.list_tools()}
        added = await connection.call_tool("add", {"a": 2, "b": 40})
        weather = await connection.call_tool("weather", {"city": "Oslo"})
        shouted = await connection.call_tool("shout", {"text": "quiet"})
        env = await connection.call_tool("read_env", {"name": "MCP_TEST_TOKEN"})
        leaked = await connection.call_tool("read_env", {"name": "FLOWLOOM_SECRET_KEY"})

    assert {"add", "weather", "shout", "read_env", "fail", "sleep", "whoami"} <= set(tools)
    assert tools["add"].description == "Add two integers."
    assert tools["add"].input_schema["required"] == ["a", "b"]
    assert (added.value, added.text, added.is_error) == (42, "42", False)
    assert weather.value == {"city": "Oslo", "temp_c": 21, "sky": "clear"}
    assert (shouted.value, shouted.structured) == ("QUIET", None)
    assert env.value == SECRET
    assert leaked.value == ""  # the child gets a small default environment, not flowloom's


async def test_streamable_http_sends_the_headers(http_url: str) -> None:
    spec = McpServerSpec(
        transport="http", url=http_url, headers={"Authorization": f"Bearer {SECRET}"}
    )
    tools = await list_tools(spec)
    whoami = await call_tool(spec, "whoami", {})
    added = await call_tool(spec, "add", {"a": 1, "b": 2})
    assert "add" in {tool.name for tool in tools}
    assert whoami.value == f"Bearer {SECRET}"
    assert added.value == 3


async def test_the_published_time_server_converts_a_time() -> None:
    spec = McpServerSpec(transport="stdio", command=TIME_SERVER, args=("--local-timezone", "UTC"))
    async with McpConnection(spec) as connection:
        names = {tool.name for tool in await connection.list_tools()}
        result = await connection.call_tool(
            "convert_time",
            {"source_timezone": "UTC", "time": "12:00", "target_timezone": "Asia/Tokyo"},
        )
        bad = await connection.call_tool("get_current_time", {"timezone": "Nowhere/Bad"})
    assert names == {"get_current_time", "convert_time"}
    assert result.is_error is False
    assert result.value["target"]["timezone"] == "Asia/Tokyo"
    assert result.value["target"]["datetime"].endswith("T21:00:00+09:00")
    assert result.value["time_difference"] == "+9.0h"
    assert bad.is_error is True
    assert "Nowhere/Bad" in bad.text


async def test_a_command_that_does_not_exist_is_unavailable() -> None:
    with pytest.raises(McpServerUnavailable) as caught:
        await list_tools(stdio(command="/no/such/mcp-server", args=()))
    assert str(caught.value) == (
        "MCP server `/no/such/mcp-server` could not be started: No such file or directory"
    )


async def test_a_server_that_dies_at_start_shows_its_stderr_without_the_secret(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    spec = stdio(env={"MCP_TEST_LEAK": SECRET}, label="leaky")
    with pytest.raises(McpServerUnavailable) as caught:
        await list_tools(spec)
    message = str(caught.value)
    assert message.startswith("MCP server 'leaky' closed the connection while connecting")
    assert "cannot log in with token ***" in message
    assert SECRET not in message
    assert SECRET not in repr(spec)
    assert SECRET not in caplog.text


async def test_an_unknown_tool_names_the_close_ones() -> None:
    with pytest.raises(McpToolUnknown) as caught:
        await call_tool(stdio(label="test"), "ad", {})
    assert str(caught.value) == "MCP server 'test' has no tool 'ad'; did you mean 'add'?"


async def test_a_tool_error_raises_with_the_tools_message_or_comes_back_flagged() -> None:
    with pytest.raises(McpToolFailed) as caught:
        await call_tool(stdio(label="test"), "fail", {"message": "disk full"})
    assert str(caught.value) == (
        "tool 'fail' of MCP server 'test' reported an error: Error executing tool fail: disk full"
    )
    assert caught.value.result is not None
    assert caught.value.result.is_error

    flagged = await call_tool(stdio(), "fail", {"message": "x"}, raise_on_error=False)
    assert flagged.is_error
    assert flagged.text == "Error executing tool fail: x"


async def test_a_slow_tool_times_out_and_the_connection_still_works() -> None:
    async with McpConnection(stdio(label="test")) as connection:
        started = time.monotonic()
        with pytest.raises(McpTimeout) as caught:
            await connection.call_tool("sleep", {"seconds": 30}, timeout_s=0.5)
        waited = time.monotonic() - started
        after = await connection.call_tool("add", {"a": 1, "b": 1})
    assert str(caught.value) == "MCP server 'test' gave no answer for tool 'sleep' within 0.5 s"
    assert waited < 5
    assert after.value == 2


async def test_a_server_that_never_answers_times_out_while_connecting() -> None:
    spec = stdio(args=("-c", "import time; time.sleep(60)"), connect_timeout_s=1.0, label="mute")
    with pytest.raises(McpTimeout) as caught:
        await list_tools(spec)
    assert str(caught.value) == "MCP server 'mute' gave no answer for starting up within 1 s"


async def test_an_unreachable_url_is_unavailable_and_its_query_is_not_shown() -> None:
    spec = McpServerSpec(transport="http", url=f"http://127.0.0.1:{free_port()}/mcp?key={SECRET}")
    with pytest.raises(McpServerUnavailable) as caught:
        await list_tools(spec)
    assert str(caught.value).startswith(f"MCP server {spec.url.split('?')[0]} failed")  # type: ignore[union-attr]
    assert SECRET not in str(caught.value)
