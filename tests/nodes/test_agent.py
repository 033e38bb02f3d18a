"""``ai.agent``: the real openai SDK against the local fake server scripting tool calls, real MCP
server processes as tools, and (in the engine test) real usage rows on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from providers.fake_servers import API_KEY, FakeServer, running_server
from sqlalchemy import select

from flowloom.engine import Engine
from flowloom.exceptions import NodeFailed
from flowloom.ids import new_id
from flowloom.integrations.mcp import StaticMcpServers
from flowloom.integrations.mcp_store import DatabaseMcpServers
from flowloom.nodes.base import NodeSettings, RunContext
from flowloom.providers import ProviderConfig, RetryPolicy, SettingsProviderResolver
from flowloom.storage.database import Database
from flowloom.storage.enums import IntegrationKind, RunStatus, UserRole
from flowloom.storage.repos.ai_models import AiModelRepo
from flowloom.storage.repos.integrations import IntegrationRepo, IntegrationSecrets
from flowloom.storage.repos.users import UserRepo
from flowloom.storage.repos.workflows import WorkflowRepo
from flowloom.storage.tables import NodeExecution, Usage
from flowloom.storage.vault import Vault
from flowloom.testing import make_context, run_node

SERVER = str(Path(__file__).parents[1] / "integrations" / "mcp_test_server.py")
SECRET = "mcp-env-secret-31337-xyz"
PRICE_IN, PRICE_OUT = Decimal("0.15"), Decimal("0.60")


@pytest.fixture(scope="module")
def server() -> Iterator[FakeServer]:
    with running_server() as running:
        yield running


def resolver(server: FakeServer) -> SettingsProviderResolver:
    return SettingsProviderResolver(
        {
            "openai": ProviderConfig(API_KEY, server.openai_base_url),
            "anthropic": ProviderConfig(API_KEY, server.base_url),
            "gemini": ProviderConfig(API_KEY, server.base_url),
        },
        retry=RetryPolicy(attempts=1),
    )


def cost(tokens_in: int, tokens_out: int) -> Decimal:
    exact = (tokens_in * PRICE_IN + tokens_out * PRICE_OUT) / Decimal(1_000_000)
    return exact.quantize(Decimal("0.000000001"))


def step_usage(tokens_in: int, tokens_out: int) -> dict[str, Any]:
    return {
        "tokens_in": tokens_in,
        "tokens_out": tokens_out,
        "tokens_total": tokens_in + tokens_out,
        "cost": str(cost(tokens_in, tokens_out)),
    }


async def test_an_agent_run_with_two_tool_calls_records_every_step_and_usage_row(
    db: Database, server: FakeServer
) -> None:
    server.reset()
    vault = Vault(b"k" * 32)
    async with db.write() as session:
        owner = (
            await UserRepo(session).create(
                email=f"{new_id('usr')}@example.com", role=UserRole.ADMIN
            )
        ).id
        await AiModelRepo(session).upsert(
            provider="openai",
            model="gpt-agent",
            input_price_per_mtok=PRICE_IN,
            output_price_per_mtok=PRICE_OUT,
        )
        integration = await IntegrationRepo(session, owner_id=owner, vault=vault).create(
            name="test tools",
            kind=IntegrationKind.MCP_STDIO,
            config={"command": sys.executable, "args": [SERVER]},
            secrets=IntegrationSecrets(env={"CITY_TOKEN": SECRET}),
        )
        graph = {
            "schema_version": 1,
            "nodes": [
                {
                    "id": "agent",
                    "type": "ai.agent",
                    "data": {
                        "config": {
                            "model": "gpt-agent",
                            "instructions": "Use the tools.",
                            "user_message": "Add {{ a }} and 3, then find the weather.",
                            "variables": ["a"],
                            "a": 2,
                            "tools": [
                                {
                                    "kind": "mcp",
                                    "server": integration.id,
                                    "tools": ["add", "weather", "read_env"],
                                }
                            ],
                        }
                    },
                }
            ],
            "edges": [],
        }
        workflow = await WorkflowRepo(session, owner_id=owner).create(name="a", definition=graph)
    server.script_replies(
        {
            "tool_calls": [{"name": "add", "arguments": {"a": 2, "b": 3}}],
            "tokens_in": 30,
            "tokens_out": 10,
        },
        {
            "tool_calls": [{"name": "weather", "arguments": {"city": "Oslo"}}],
            "tokens_in": 45,
            "tokens_out": 12,
        },
        {"text": "2 + 3 = 5; Oslo is clear at 21 C.", "tokens_in": 60, "tokens_out": 20},
    )
    engine = Engine(db, providers=resolver(server), integrations=DatabaseMcpServers(db, vault))
    try:
        result = await engine.run_to_end(owner_id=owner, workflow_id=workflow.id)
    finally:
        await engine.close()

    assert result.status is RunStatus.COMPLETED, result.error
    assert result.outputs is not None
    outputs = result.outputs["agent"]
    assert outputs["text"] == "2 + 3 = 5; Oslo is clear at 21 C."
    assert outputs["stop_reason"] == "answer"
    assert outputs["steps"] == [
        {
            "step": 1,
            "tool": "add",
            "arguments": {"a": 2, "b": 3},
            "result": 5,
            "is_error": False,
            "usage": step_usage(30, 10),
        },
        {
            "step": 2,
            "tool": "weather",
            "arguments": {"city": "Oslo"},
            "result": {"city": "Oslo", "temp_c": 21, "sky": "clear"},
            "is_error": False,
            "usage": step_usage(45, 12),
        },
        {
            "step": 3,
            "tool": None,
            "arguments": None,
            "result": "2 + 3 = 5; Oslo is clear at 21 C.",
            "is_error": False,
            "usage": step_usage(60, 20),
        },
    ]
    total_cost = cost(30, 10) + cost(45, 12) + cost(60, 20)
    assert outputs["usage"] == {
        "tokens_in": 135,
        "tokens_out": 42,
        "tokens_total": 177,
        "cost": str(total_cost),
        "calls": 3,
    }

    # What the model was sent: the tools on offer, then each tool's answer in turn.
    sent = [request.body for request in server.requests]
    assert len(sent) == 3
    assert [tool["function"]["name"] for tool in sent[0]["tools"]] == ["add", "weather", "read_env"]
    assert sent[0]["messages"][0] == {"role": "system", "content": "Use the tools."}
    assert sent[0]["messages"][1]["content"] == "Add 2 and 3, then find the weather."
    assert sent[1]["messages"][-1] == {"role": "tool", "tool_call_id": "call_0", "content": "5"}
    assert json.loads(sent[2]["messages"][-1]["content"])["city"] == "Oslo"

    async with db.read() as session:
        rows = (
            await session.scalars(
                select(Usage).where(Usage.run_id == result.run_id).order_by(Usage.id)
            )
        ).all()
        node = await session.scalar(
            select(NodeExecution).where(NodeExecution.run_id == result.run_id)
        )
    assert node is not None
    assert [
        (r.type, r.tokens_in, r.tokens_out, r.tokens_total, r.cost, r.node_execution_id)
        for r in rows
    ] == [
        ("agent", 30, 10, 40, cost(30, 10), node.id),
        ("agent", 45, 12, 57, cost(45, 12), node.id),
        ("agent", 60, 20, 80, cost(60, 20), node.id),
    ]
    assert [(r.meta or {})["step"] for r in rows] == [1, 2, 3]
    assert [(r.meta or {})["tool_calls"] for r in rows] == [["add"], ["weather"], []]
    # The integration's secret reached the server (read_env was offered) but is stored nowhere.
    assert SECRET not in json.dumps(result.outputs)
    assert SECRET not in json.dumps([r.meta for r in rows])


def agent_context(server: FakeServer, handler: Any = None) -> RunContext:
    ctx = make_context(settings=NodeSettings(allow_private_http=True))
    factory = ctx.http_client
    if handler is not None:

        def factory() -> httpx.AsyncClient:
            return httpx.AsyncClient(transport=httpx.MockTransport(handler))

    return dataclasses.replace(
        ctx,
        providers=resolver(server),
        integrations=StaticMcpServers(allow_commands=True),
        http_client=factory,
    )


async def test_http_tools_template_their_url_and_failures_go_back_to_the_model(
    server: FakeServer,
) -> None:
    server.reset()
    seen: list[str] = []

    def weather_api(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        if "Atlantis" in str(request.url):
            return httpx.Response(404, json={"error": "no such city"})
        return httpx.Response(200, json={"temp_c": 7})

    server.script_replies(
        {
            "tool_calls": [
                {"name": "weather", "arguments": {"city": "Atlantis"}},
                {"name": "weather", "arguments": {"city": "Bergen"}},
            ]
        },
        {"tool_calls": [{"name": "teleport", "arguments": {}}]},
        {"text": "Bergen: 7 C."},
    )
    config = {
        "model": "gpt-agent",
        "user_message": "Weather?",
        "tools": [
            {
                "kind": "http",
                "name": "weather",
                "description": "Weather of a city",
                "url": "https://weather.example.test/now?city={{ city }}",
                "parameters": {
                    "type": "object",
                    "properties": {"city": {"type": "string"}},
                    "required": ["city"],
                },
            }
        ],
    }
    result = await run_node("ai.agent", config, ctx=agent_context(server, weather_api))

    assert seen == [
        "https://weather.example.test/now?city=Atlantis",
        "https://weather.example.test/now?city=Bergen",
    ]
    steps = result.outputs["steps"]
    assert [(s["step"], s["tool"], s["is_error"]) for s in steps] == [
        (1, "weather", True),
        (1, "weather", False),
        (2, "teleport", True),
        (3, None, False),
    ]
    assert steps[0]["result"] == {"status": 404, "body": {"error": "no such city"}}
    assert steps[1]["result"] == {"status": 200, "body": {"temp_c": 7}}
    # Usage sits on the first tool call of a model call, so the steps sum to the totals.
    assert steps[0]["usage"] is not None
    assert steps[1]["usage"] is None
    assert steps[2]["result"] == {"error": "there is no tool 'teleport'; the tools are: weather"}
    assert result.outputs["text"] == "Bergen: 7 C."
    assert result.outputs["usage"]["calls"] == 3
    assert result.outputs["usage"]["tokens_in"] == 3 * server.tokens_in
    second = server.requests[1].body["messages"]
    assert [m["role"] for m in second[-3:]] == ["assistant", "tool", "tool"]
    assert second[-2]["content"].startswith("error: ")


async def test_each_tool_call_has_its_own_idempotency_key_and_a_retry_repeats_them(
    server: FakeServer,
) -> None:
    keys: list[str] = []

    def ticket_api(request: httpx.Request) -> httpx.Response:
        keys.append(request.headers["idempotency-key"])
        return httpx.Response(201, json={"ok": True})

    config = {
        "model": "gpt-agent",
        "user_message": "Open two tickets",
        "tools": [
            {
                "kind": "http",
                "name": "ticket",
                "description": "Open a ticket",
                "method": "POST",
                "url": "https://tickets.example.test/new",
                "parameters": {"type": "object", "properties": {"title": {"type": "string"}}},
            }
        ],
    }
    calls = {
        "tool_calls": [
            {"name": "ticket", "arguments": {"title": "one"}},
            {"name": "ticket", "arguments": {"title": "two"}},
        ]
    }
    ctx = agent_context(server, ticket_api)
    for attempt in (1, 2):
        server.reset()
        server.script_replies(calls, {"tool_calls": [calls["tool_calls"][0]]}, {"text": "Done."})
        await run_node("ai.agent", config, ctx=dataclasses.replace(ctx, attempt=attempt))

    first, retried = keys[:3], keys[3:]
    assert len(set(first)) == 3, "two calls of one tool in one step, and a third later"
    assert first == [
        f"{ctx.idempotency_key}:1.0:ticket",
        f"{ctx.idempotency_key}:1.1:ticket",
        f"{ctx.idempotency_key}:2.0:ticket",
    ]
    assert retried == first, "the node's second attempt sends the keys the first one sent"


async def test_the_step_limit_stops_the_loop(server: FakeServer) -> None:
    server.reset()
    call = {"tool_calls": [{"name": "add", "arguments": {"a": 1, "b": 1}}]}
    server.script_replies(call, call)
    config = {
        "model": "gpt-agent",
        "user_message": "Loop forever.",
        "max_steps": 2,
        "tools": [
            {
                "kind": "mcp",
                "server": {"transport": "stdio", "command": sys.executable, "args": [SERVER]},
                "tools": ["add"],
                "prefix": "calc_",
            }
        ],
    }
    # With a prefix the model sees calc_add; the scripted "add" is then unknown to it.
    result = await run_node("ai.agent", config, ctx=agent_context(server))
    assert result.outputs["stop_reason"] == "max_steps"
    assert len(server.requests) == 2
    assert [t["function"]["name"] for t in server.requests[0].body["tools"]] == ["calc_add"]
    assert [s["is_error"] for s in result.outputs["steps"]] == [True, True]


async def test_a_missing_tool_on_the_server_fails_before_any_model_call(
    server: FakeServer,
) -> None:
    from flowloom.exceptions import NodeFailed

    server.reset()
    config = {
        "model": "gpt-agent",
        "user_message": "x",
        "tools": [
            {
                "kind": "mcp",
                "server": {"transport": "stdio", "command": sys.executable, "args": [SERVER]},
                "tools": ["divide"],
            }
        ],
    }
    with pytest.raises(NodeFailed, match="has no tool 'divide'"):
        await run_node("ai.agent", config, ctx=agent_context(server))
    assert server.requests == []


async def test_an_agent_reports_each_tool_call_and_its_answer_as_progress(
    server: FakeServer,
) -> None:
    server.reset()
    server.script_replies(
        {"tool_calls": [{"name": "weather", "arguments": {"city": "Bergen"}}]},
        {"text": "Bergen: 7 C."},
    )
    config = {
        "model": "gpt-agent",
        "user_message": "Weather?",
        "tools": [
            {
                "kind": "http",
                "name": "weather",
                "url": "https://weather.example.test/now?city={{ city }}",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            }
        ],
    }
    progress: list[tuple[str, dict[str, Any]]] = []
    ctx = dataclasses.replace(
        agent_context(server, lambda request: httpx.Response(200, json={"temp_c": 7})),
        progress=lambda kind, data: progress.append((kind, dict(data))),
    )
    result = await run_node("ai.agent", config, ctx=ctx)

    assert result.outputs["text"] == "Bergen: 7 C."
    assert progress[0] == ("step", {"step": 1, "tool": "weather", "is_error": False})
    deltas = [data for kind, data in progress[1:] if kind == "delta"]
    assert len(deltas) == len(progress) - 1 >= 2, "the answer after the tool streamed in pieces"
    assert "".join(d["text"] for d in deltas) == "Bergen: 7 C."
    assert deltas[0]["offset"] == 0


WEATHER_TOOL = {
    "kind": "http",
    "name": "weather",
    "url": "https://weather.example.test/now?city={{ city }}",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}


@pytest.mark.parametrize("provider", ["openai", "anthropic", "gemini"])
async def test_an_agent_with_tools_streams_every_step_on_every_provider(
    server: FakeServer, provider: str
) -> None:
    """Each step through the provider's streaming API: the words before a tool call and the
    final answer go out in pieces as they come, the call (put together from its streamed
    fragments) runs with its arguments, and the usage of both streams is counted once each."""
    server.reset()
    server.stream_piece_chars = 4
    server.script_replies(
        {
            "text": "Let me check.",
            "tool_calls": [{"name": "weather", "arguments": {"city": "Bergen", "days": 2}}],
            "tokens_in": 40,
            "tokens_out": 11,
        },
        {"text": "Bergen: 7 C, and dry.", "tokens_in": 70, "tokens_out": 9},
    )
    asked: list[str] = []

    def weather_api(request: httpx.Request) -> httpx.Response:
        asked.append(str(request.url))
        return httpx.Response(200, json={"temp_c": 7})

    progress: list[tuple[str, dict[str, Any]]] = []
    ctx = dataclasses.replace(
        agent_context(server, weather_api),
        progress=lambda kind, data: progress.append((kind, dict(data))),
    )
    config = {
        "provider": provider,
        "model": "m",
        "user_message": "Weather?",
        "tools": [WEATHER_TOOL],
    }
    result = await run_node("ai.agent", config, ctx=ctx)

    assert result.outputs["text"] == "Bergen: 7 C, and dry."
    assert asked == ["https://weather.example.test/now?city=Bergen"]
    kinds = [kind for kind, _ in progress]
    turn = kinds.index("step")
    before = [data["text"] for kind, data in progress[:turn]]
    after = [data["text"] for kind, data in progress[turn + 1 :]]
    assert set(kinds) == {"delta", "step"}
    assert before == ["Let ", "me c", "heck", "."], "the words before the call, as they came"
    assert after[0] == "\n\n", "the next step's words start a paragraph"
    assert len(after) >= 3
    assert "".join(after[1:]) == "Bergen: 7 C, and dry."
    offsets = [data["offset"] for kind, data in progress if kind == "delta"]
    texts = [data["text"] for kind, data in progress if kind == "delta"]
    assert offsets == [sum(map(len, texts[:i])) for i in range(len(texts))]
    assert progress[turn] == ("step", {"step": 1, "tool": "weather", "is_error": False})
    steps = result.outputs["steps"]
    assert [(st["tool"], st["arguments"]) for st in steps] == [
        ("weather", {"city": "Bergen", "days": 2}),
        (None, None),
    ]
    assert result.outputs["usage"]["tokens_in"] == 40 + 70
    assert result.outputs["usage"]["tokens_out"] == 11 + 9
    assert result.outputs["usage"]["calls"] == 2
    first, second = server.requests
    if provider == "gemini":
        assert first.path.endswith(":streamGenerateContent")
        assert second.path.endswith(":streamGenerateContent")
        turns = second.body["contents"]
    else:
        assert first.body["stream"] is second.body["stream"] is True
        turns = second.body["messages"]
    assert '\\"temp_c\\": 7' in json.dumps(turns[-1]), "the tool's result went back"


class _Usage:
    def __init__(self) -> None:
        self.steps: list[int] = []

    async def record(self, event: Any) -> Decimal:
        self.steps.append(event.metadata["step"])
        return Decimal(0)


@pytest.mark.parametrize(("how", "says"), [("end", "cut short"), ("drop", "lost mid-answer")])
@pytest.mark.parametrize("provider", ["openai", "anthropic", "gemini"])
async def test_a_step_cut_mid_stream_fails_the_node_retryably_and_records_only_whole_steps(
    server: FakeServer, provider: str, how: str, says: str
) -> None:
    """The first step (a tool call) streams whole; the second is cut after its first piece."""
    server.reset()
    server.script_replies(
        {"tool_calls": [{"name": "weather", "arguments": {"city": "Bergen"}}]},
        {"text": "Bergen: 7 C, and dry."},
    )
    usage = _Usage()
    shown: list[str] = []

    def weather_api(request: httpx.Request) -> httpx.Response:
        # Armed while the tool runs: only the second step's stream is cut.
        server.cut_streams, server.cut_how = 1, how  # type: ignore[assignment]
        return httpx.Response(200, json={"temp_c": 7})

    ctx = dataclasses.replace(
        agent_context(server, weather_api),
        usage=usage,
        progress=lambda kind, data: shown.append(data["text"]) if kind == "delta" else None,
    )
    config = {"provider": provider, "model": "m", "user_message": "?", "tools": [WEATHER_TOOL]}

    with pytest.raises(NodeFailed, match=says) as caught:
        await run_node("ai.agent", config, ctx=ctx)

    assert caught.value.retryable
    assert provider in str(caught.value)
    assert usage.steps == [1], "the whole first step was recorded, the cut second was not"
    assert len(shown) == 1, "the second step's first piece went out before the cut"
    assert "Bergen: 7 C, and dry.".startswith(shown[0])


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
async def test_streamed_tool_arguments_that_are_not_json_go_to_the_tool_as_text(
    server: FakeServer, provider: str
) -> None:
    server.reset()
    server.script_replies(
        {"tool_calls": [{"name": "weather", "arguments": "{city: Bergen"}]},
        {"text": "Could not ask."},
    )
    ctx = agent_context(server, lambda request: httpx.Response(200, json={}))
    config = {"provider": provider, "model": "m", "user_message": "?", "tools": [WEATHER_TOOL]}
    result = await run_node("ai.agent", config, ctx=ctx)

    step = result.outputs["steps"][0]
    assert step["arguments"] == "{city: Bergen"
    assert step["is_error"], "the tool refuses arguments that are not an object"
    assert result.outputs["text"] == "Could not ask."


async def test_an_agent_without_tools_streams_its_answer(server: FakeServer) -> None:
    server.reset()
    pieces: list[dict[str, Any]] = []
    ctx = dataclasses.replace(
        agent_context(server),
        progress=lambda kind, data: pieces.append(dict(data)) if kind == "delta" else None,
    )
    result = await run_node("ai.agent", {"model": "gpt-agent", "user_message": "Hi"}, ctx=ctx)

    assert result.outputs["text"] == server.reply_text
    assert len(pieces) >= 2
    assert "".join(p["text"] for p in pieces) == server.reply_text
    assert result.outputs["usage"]["tokens_in"] == server.tokens_in  # from the stream's end
