"""``mcp.tool`` against the tests' MCP server process (stdio), run as the engine would."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any

import pytest

from flowloom.exceptions import NodeFailed
from flowloom.integrations.mcp import McpServerSpec, StaticMcpServers
from flowloom.nodes.base import RunContext
from flowloom.nodes.registry import default_registry
from flowloom.testing import make_context, run_node

SERVER = str(Path(__file__).parents[1] / "integrations" / "mcp_test_server.py")
INLINE: dict[str, Any] = {"transport": "stdio", "command": sys.executable, "args": [SERVER]}
SECRET = "env-secret-4242-abcdef"


def context(*, allow_commands: bool = True, **servers: McpServerSpec) -> RunContext:
    return dataclasses.replace(
        make_context(), integrations=StaticMcpServers(dict(servers), allow_commands)
    )


async def test_arguments_map_fixed_values_and_inputs_keeping_their_types() -> None:
    result = await run_node(
        "mcp.tool",
        {
            "server": INLINE,
            "tool": "add",
            "arguments": {"a": "{{ first }}", "b": 5},
            "variables": ["first"],
        },
        {"first": 37},
        ctx=context(),
    )
    assert result.outputs == {"result": 42, "text": "42", "is_error": False}


async def test_a_template_inside_text_renders_to_text() -> None:
    result = await run_node(
        "mcp.tool",
        {
            "server": INLINE,
            "tool": "shout",
            "arguments": {"text": "hello {{ who }}"},
            "variables": ["who"],
        },
        {"who": "ada"},
        ctx=context(),
    )
    assert result.outputs["result"] == "HELLO ADA"


async def test_a_registered_integration_is_reached_by_id_with_its_env() -> None:
    spec = McpServerSpec(
        transport="stdio",
        command=sys.executable,
        args=(SERVER,),
        env={"TOKEN": SECRET},
        label="mine",
    )
    result = await run_node(
        "mcp.tool",
        {"server": "intg_mine", "tool": "read_env", "arguments": {"name": "TOKEN"}},
        ctx=context(intg_mine=spec),
    )
    assert result.outputs["result"] == SECRET


async def test_the_ports_follow_the_variables() -> None:
    node = default_registry().get("mcp.tool")
    config = node.parse_config({"server": "intg_x", "tool": "t", "variables": ["city", "when"]})
    assert [port.name for port in node.inputs(config)] == ["city", "when"]
    assert [port.name for port in node.outputs(config)] == ["result", "text", "is_error"]


async def test_arguments_may_only_read_declared_variables() -> None:
    node = default_registry().get("mcp.tool")
    with pytest.raises(ValueError, match="arguments use 'city', not declared in variables"):
        node.parse_config({"server": "intg_x", "tool": "t", "arguments": {"q": "{{ city }}"}})


async def test_a_tool_error_fails_the_node_unless_asked_to_pass_it_on() -> None:
    config = {"server": INLINE, "tool": "fail", "arguments": {"message": "no such city"}}
    with pytest.raises(NodeFailed) as caught:
        await run_node("mcp.tool", config, ctx=context())
    assert "reported an error: Error executing tool fail: no such city" in str(caught.value)
    assert caught.value.retryable is False

    passed = await run_node("mcp.tool", {**config, "fail_on_error": False}, ctx=context())
    assert passed.outputs == {
        "result": "Error executing tool fail: no such city",
        "text": "Error executing tool fail: no such city",
        "is_error": True,
    }


async def test_unknown_tool_timeout_and_missing_integration_fail_clearly() -> None:
    with pytest.raises(NodeFailed, match="has no tool 'ad'; did you mean 'add'"):
        await run_node("mcp.tool", {"server": INLINE, "tool": "ad"}, ctx=context())
    with pytest.raises(NodeFailed, match=r"gave no answer for tool 'sleep' within 0\.3 s") as slow:
        await run_node(
            "mcp.tool",
            {"server": INLINE, "tool": "sleep", "arguments": {"seconds": 20}, "timeout_s": 0.3},
            ctx=context(),
        )
    assert slow.value.retryable is True
    with pytest.raises(NodeFailed, match="you have no integration 'intg_gone'"):
        await run_node("mcp.tool", {"server": "intg_gone", "tool": "add"}, ctx=context())


async def test_commands_are_refused_unless_the_owner_may_start_them() -> None:
    with pytest.raises(NodeFailed, match="allowed for administrators only"):
        await run_node(
            "mcp.tool", {"server": INLINE, "tool": "add"}, ctx=context(allow_commands=False)
        )
    # Without any integrations source (a bare context) commands are refused too.
    with pytest.raises(NodeFailed, match="allowed for administrators only"):
        await run_node("mcp.tool", {"server": INLINE, "tool": "add"}, ctx=make_context())


async def test_a_private_url_is_refused_before_connecting() -> None:
    with pytest.raises(NodeFailed, match="loopback addresses are not allowed"):
        await run_node(
            "mcp.tool",
            {"server": {"transport": "http", "url": "http://127.0.0.1:9/mcp"}, "tool": "add"},
            ctx=context(),
        )
