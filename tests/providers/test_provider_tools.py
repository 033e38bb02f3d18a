"""Tool calling on Anthropic and Gemini: each real SDK against the local fake server, which
answers scripted tool calls in the provider's own wire shape and records what came back."""

from __future__ import annotations

import base64
import dataclasses
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from providers.fake_servers import API_KEY, FakeServer, running_server

from flowloom.integrations.mcp import StaticMcpServers
from flowloom.nodes.base import RunContext
from flowloom.providers import (
    ChatMessage,
    ChatRequest,
    ChatResponse,
    ProviderClient,
    ProviderConfig,
    RetryPolicy,
    SettingsProviderResolver,
    ToolCall,
    ToolSpec,
    make_backend,
)
from flowloom.testing import make_context, run_node

MCP_SERVER = str(Path(__file__).parents[1] / "integrations" / "mcp_test_server.py")
WEATHER = ToolSpec(
    "weather",
    "Weather of a city",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)
ADD = ToolSpec(
    "add",
    "Add two integers",
    {
        "type": "object",
        "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
        "required": ["a", "b"],
    },
)
SIGNATURE = b"\x01opaque-thought\xff"


@pytest.fixture(scope="module")
def server() -> Iterator[FakeServer]:
    with running_server() as running:
        yield running


@pytest.fixture(autouse=True)
def _fresh_script(server: FakeServer) -> None:
    server.reset()


def client(server: FakeServer, provider: str) -> ProviderClient:
    return ProviderClient(
        make_backend(provider, API_KEY, server.base_url),
        retry=RetryPolicy(attempts=1),
        timeout_s=5.0,
    )


def ask(*messages: ChatMessage) -> ChatRequest:
    return ChatRequest(
        model="test-model",
        system_prompt="Use the tools.",
        messages=(ChatMessage("user", "Weather in Oslo, and 2 + 3?"), *messages),
        tools=(WEATHER, ADD),
    )


def answers(response: ChatResponse, *results: str) -> tuple[ChatMessage, ...]:
    """The assistant's turn of calls, then one tool turn per call with its result."""
    return (
        ChatMessage("assistant", response.text, tool_calls=response.tool_calls),
        *(
            ChatMessage("tool", result, tool_call_id=call.id, tool_name=call.name)
            for call, result in zip(response.tool_calls, results, strict=True)
        ),
    )


async def test_anthropic_tool_calls_go_out_and_their_results_come_back_as_blocks(
    server: FakeServer,
) -> None:
    server.script_replies(
        {
            "text": "Let me look.",
            "tool_calls": [
                {"name": "weather", "arguments": {"city": "Oslo"}},
                {"name": "add", "arguments": {"a": 2, "b": 3}},
            ],
            "tokens_in": 40,
            "tokens_out": 15,
        },
        {"text": "Oslo is clear; 2 + 3 = 5.", "tokens_in": 70, "tokens_out": 9},
    )
    anthropic = client(server, "anthropic")

    first = await anthropic.chat(ask())

    assert first.tool_calls == (
        ToolCall("toolu_0", "weather", {"city": "Oslo"}),
        ToolCall("toolu_1", "add", {"a": 2, "b": 3}),
    )
    assert first.text == "Let me look."
    assert first.finish_reason == "tool_use"
    assert (first.usage.tokens_in, first.usage.tokens_out) == (40, 15)
    assert server.requests[0].body["tools"] == [
        {
            "name": "weather",
            "description": "Weather of a city",
            "input_schema": dict(WEATHER.parameters),
        },
        {"name": "add", "description": "Add two integers", "input_schema": dict(ADD.parameters)},
    ]

    final = await anthropic.chat(ask(*answers(first, '{"sky": "clear"}', "5")))

    assert final.text == "Oslo is clear; 2 + 3 = 5."
    assert final.tool_calls == ()
    assert final.finish_reason == "end_turn"
    assert (final.usage.tokens_in, final.usage.tokens_out) == (70, 9)
    sent = server.requests[1].body
    assert sent["system"] == "Use the tools."
    assert sent["messages"][1:] == [
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Let me look."},
                {"type": "tool_use", "id": "toolu_0", "name": "weather", "input": {"city": "Oslo"}},
                {"type": "tool_use", "id": "toolu_1", "name": "add", "input": {"a": 2, "b": 3}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_0", "content": '{"sky": "clear"}'},
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "5"},
            ],
        },
    ]


def declared(declaration: dict[str, Any]) -> tuple[str, str, Any]:
    """A function declaration as sent: the SDK writes the schema's key as the proto field name
    (``parameters_json_schema``), which the API's JSON parser accepts as well as camelCase."""
    schema = declaration.get("parametersJsonSchema", declaration.get("parameters_json_schema"))
    return declaration["name"], declaration["description"], schema


async def test_gemini_function_calls_get_ids_and_their_responses_come_back_as_parts(
    server: FakeServer,
) -> None:
    signature = base64.b64encode(SIGNATURE).decode()
    server.script_replies(
        {
            "tool_calls": [
                {"name": "weather", "arguments": {"city": "Oslo"}, "signature": signature},
                {"name": "add", "arguments": {"a": 2, "b": 3}},
            ],
            "tokens_in": 40,
            "tokens_out": 15,
        },
        {"text": "Oslo is clear; 2 + 3 = 5.", "tokens_in": 70, "tokens_out": 9},
    )
    gemini = client(server, "gemini")

    first = await gemini.chat(ask())

    # The API gave no ids, so they are made up, one per call in order.
    assert first.tool_calls == (
        ToolCall("call_0", "weather", {"city": "Oslo"}, signature=SIGNATURE),
        ToolCall("call_1", "add", {"a": 2, "b": 3}),
    )
    assert first.text == ""
    assert (first.usage.tokens_in, first.usage.tokens_out) == (40, 15)
    [tool] = server.requests[0].body["tools"]
    assert [declared(d) for d in tool["functionDeclarations"]] == [
        ("weather", "Weather of a city", dict(WEATHER.parameters)),
        ("add", "Add two integers", dict(ADD.parameters)),
    ]

    final = await gemini.chat(ask(*answers(first, '{"sky": "clear"}', "5")))

    assert final.text == "Oslo is clear; 2 + 3 = 5."
    assert final.tool_calls == ()
    assert (final.usage.tokens_in, final.usage.tokens_out) == (70, 9)
    sent = server.requests[1].body
    # The made-up ids are not sent back (the API never issued them); the signature is.
    assert sent["contents"][1:] == [
        {
            "role": "model",
            "parts": [
                {
                    "functionCall": {"name": "weather", "args": {"city": "Oslo"}},
                    # The same bytes, in the URL-safe base64 the SDK writes.
                    "thoughtSignature": base64.urlsafe_b64encode(SIGNATURE).decode(),
                },
                {"functionCall": {"name": "add", "args": {"a": 2, "b": 3}}},
            ],
        },
        {
            "role": "user",
            "parts": [
                {
                    "functionResponse": {
                        "name": "weather",
                        "response": {"result": '{"sky": "clear"}'},
                    }
                },
                {"functionResponse": {"name": "add", "response": {"result": "5"}}},
            ],
        },
    ]


async def test_gemini_ids_the_api_gives_are_kept_and_sent_back(server: FakeServer) -> None:
    server.script_replies(
        {"tool_calls": [{"id": "fc-7f3a", "name": "add", "arguments": {"a": 1, "b": 1}}]},
        {"text": "2"},
    )
    gemini = client(server, "gemini")

    first = await gemini.chat(ask())
    assert first.tool_calls == (ToolCall("fc-7f3a", "add", {"a": 1, "b": 1}),)
    await gemini.chat(ask(*answers(first, "2")))

    call_turn, result_turn = server.requests[1].body["contents"][1:]
    assert call_turn["parts"] == [
        {"functionCall": {"id": "fc-7f3a", "name": "add", "args": {"a": 1, "b": 1}}}
    ]
    assert result_turn["parts"] == [
        {"functionResponse": {"id": "fc-7f3a", "name": "add", "response": {"result": "2"}}}
    ]


def agent_context(server: FakeServer) -> RunContext:
    providers = SettingsProviderResolver(
        {
            "anthropic": ProviderConfig(API_KEY, server.base_url),
            "gemini": ProviderConfig(API_KEY, server.base_url),
        },
        retry=RetryPolicy(attempts=1),
    )
    return dataclasses.replace(
        make_context(), providers=providers, integrations=StaticMcpServers(allow_commands=True)
    )


@pytest.mark.parametrize("provider", ["anthropic", "gemini"])
async def test_an_agent_calls_an_mcp_tool_through_the_provider_and_answers(
    server: FakeServer, provider: str
) -> None:
    server.script_replies(
        {
            "tool_calls": [{"name": "add", "arguments": {"a": 2, "b": 3}}],
            "tokens_in": 30,
            "tokens_out": 10,
        },
        {"text": "2 + 3 = 5.", "tokens_in": 45, "tokens_out": 6},
    )
    config = {
        "provider": provider,
        "model": "agent-model",
        "instructions": "Use the tools.",
        "user_message": "What is 2 + 3?",
        "tools": [
            {
                "kind": "mcp",
                "server": {"transport": "stdio", "command": sys.executable, "args": [MCP_SERVER]},
                "tools": ["add"],
            }
        ],
    }

    result = await run_node("ai.agent", config, ctx=agent_context(server))

    outputs = result.outputs
    assert outputs["text"] == "2 + 3 = 5."
    assert outputs["stop_reason"] == "answer"
    assert [
        (s["step"], s["tool"], s["arguments"], s["result"], s["is_error"]) for s in outputs["steps"]
    ] == [
        (1, "add", {"a": 2, "b": 3}, 5, False),
        (2, None, None, "2 + 3 = 5.", False),
    ]
    assert (outputs["usage"]["tokens_in"], outputs["usage"]["tokens_out"]) == (75, 16)
    assert outputs["usage"]["calls"] == 2
    assert len(server.requests) == 2
    # The tool's answer went back to the model in the provider's own shape.
    sent = server.requests[1].body
    if provider == "anthropic":
        assert sent["messages"][-1] == {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "toolu_0", "content": "5"}],
        }
    else:
        assert sent["contents"][-1] == {
            "role": "user",
            "parts": [{"functionResponse": {"name": "add", "response": {"result": "5"}}}],
        }
