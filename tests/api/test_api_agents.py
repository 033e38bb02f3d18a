"""Agents and threads over HTTP, against the real OpenAI SDK and a local server speaking its
protocol, with a real MCP server process as a tool: conversations whose history reaches the
model, tool calls, streamed replies, failures that store nothing, soft deletes, exact usage
rows, and no secret in any answer."""

from __future__ import annotations

import json
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from apikit import Account, make_settings, sign_up
from providers.fake_servers import API_KEY, FakeServer
from sqlalchemy import select, update

from flowloom.settings import Settings
from flowloom.storage.database import Database
from flowloom.storage.enums import UserRole
from flowloom.storage.repos.agents import AgentRepo
from flowloom.storage.repos.ai_models import AiModelRepo
from flowloom.storage.tables import Agent, Message, Usage, User
from flowloom.storage.vault import Vault

SERVER = str(Path(__file__).parents[1] / "integrations" / "mcp_test_server.py")
ENV_SECRET = "env-value-agent-test-4411"
HEADER_SECRET = "Bearer header-value-agent-test-9902"
SECRETS = (ENV_SECRET, HEADER_SECRET, "header-value-agent-test-9902", API_KEY)
PRICE_IN, PRICE_OUT = Decimal("0.15"), Decimal("0.60")
HISTORY = 4
"""The module's ``thread_history_messages``: the model sees the last four messages."""


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory, fake: FakeServer) -> Settings:
    return make_settings(
        tmp_path_factory.mktemp("data"),
        openai_api_key=API_KEY,
        openai_base_url=fake.openai_base_url,
        provider_max_attempts=1,
        thread_history_messages=HISTORY,
    )


@pytest.fixture(scope="module", autouse=True)
async def prices(db: Database) -> None:
    async with db.write() as session:
        for model in ("gpt-thread", "gpt-agent"):
            await AiModelRepo(session).upsert(
                provider="openai",
                model=model,
                input_price_per_mtok=PRICE_IN,
                output_price_per_mtok=PRICE_OUT,
            )


def cost(tokens_in: int, tokens_out: int) -> Decimal:
    exact = (tokens_in * PRICE_IN + tokens_out * PRICE_OUT) / Decimal(1_000_000)
    return exact.quantize(Decimal("0.000000001"))


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text


async def make_admin(db: Database, account: Account) -> None:
    async with db.write() as session:
        await session.execute(
            update(User).where(User.id == account.user_id).values(role=UserRole.ADMIN)
        )


async def usage_rows(db: Database, user_id: str) -> list[Usage]:
    async with db.read() as session:
        rows = await session.scalars(
            select(Usage).where(Usage.user_id == user_id).order_by(Usage.id)
        )
        return list(rows)


def events(text: str) -> list[tuple[str, dict[str, Any]]]:
    """The Server-Sent Events of a whole stream, as (event, data) pairs."""
    parsed = []
    for block in text.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        parsed.append((fields["event"], json.loads(fields["data"])))
    return parsed


async def new_thread(client: httpx.AsyncClient, account: Account, **body: Any) -> str:
    created = await client.post("/api/v1/threads", json=body, headers=account.bearer)
    assert created.status_code == 201, created.text
    thread_id: str = created.json()["id"]
    return thread_id


async def test_a_conversation_carries_its_history_to_the_model_within_the_window(
    client: httpx.AsyncClient, fake: FakeServer, db: Database
) -> None:
    fake.reset()
    account = await sign_up(client)
    thread_id = await new_thread(
        client, account, name="chat", model="gpt-thread", instructions="Be brief."
    )
    shown = await client.get(f"/api/v1/threads/{thread_id}", headers=account.bearer)
    assert shown.json()["provider"] == "openai"
    assert shown.json()["model"] == "gpt-thread"
    fake.script_replies(
        {"text": "Hello Ada.", "tokens_in": 20, "tokens_out": 4},
        {"text": "Blue, you said.", "tokens_in": 31, "tokens_out": 6},
        {"text": "Ada.", "tokens_in": 45, "tokens_out": 2},
        {"text": "Sure.", "tokens_in": 50, "tokens_out": 2},
    )
    said = ["I am Ada.", "My colour is blue. Which is it?", "What is my name?", "Thanks."]
    replies = []
    for content in said:
        response = await client.post(
            f"/api/v1/threads/{thread_id}/messages",
            json={"content": content},
            headers=account.bearer,
        )
        assert response.status_code == 201, response.text
        replies.append(response.json())

    assert [r["message"]["content"] for r in replies] == [
        "Hello Ada.",
        "Blue, you said.",
        "Ada.",
        "Sure.",
    ]
    third = replies[2]
    assert third["user_message"]["role"] == "user"
    assert third["message"]["role"] == "assistant"
    assert third["message"]["tool_calls"] is None
    assert (third["message"]["tokens_in"], third["message"]["tokens_out"]) == (45, 2)
    assert third["usage"] == {
        "tokens_in": 45,
        "tokens_out": 2,
        "tokens_total": 47,
        "cost": str(cost(45, 2)),
        "calls": 1,
    }
    assert third["stop_reason"] == "answer"

    # The third call saw the whole conversation so far; the fourth only the last four messages.
    sent = [request.body["messages"] for request in fake.requests]
    assert sent[2] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "I am Ada."},
        {"role": "assistant", "content": "Hello Ada."},
        {"role": "user", "content": "My colour is blue. Which is it?"},
        {"role": "assistant", "content": "Blue, you said."},
        {"role": "user", "content": "What is my name?"},
    ]
    assert [m["content"] for m in sent[3]] == [
        "Be brief.",
        "My colour is blue. Which is it?",
        "Blue, you said.",
        "What is my name?",
        "Ada.",
        "Thanks.",
    ]

    # History: newest first by default, oldest first on request, paged either way.
    newest = await client.get(
        f"/api/v1/threads/{thread_id}/messages", params={"limit": 3}, headers=account.bearer
    )
    page = newest.json()
    assert [m["content"] for m in page["items"]] == ["Sure.", "Thanks.", "Ada."]
    rest = await client.get(
        f"/api/v1/threads/{thread_id}/messages",
        params={"limit": 100, "cursor": page["next_cursor"]},
        headers=account.bearer,
    )
    assert len(rest.json()["items"]) == 5
    assert rest.json()["next_cursor"] is None
    oldest = await client.get(
        f"/api/v1/threads/{thread_id}/messages",
        params={"order": "oldest", "limit": 2},
        headers=account.bearer,
    )
    assert [m["content"] for m in oldest.json()["items"]] == ["I am Ada.", "Hello Ada."]
    following = await client.get(
        f"/api/v1/threads/{thread_id}/messages",
        params={"order": "oldest", "limit": 2, "cursor": oldest.json()["next_cursor"]},
        headers=account.bearer,
    )
    assert [m["content"] for m in following.json()["items"]] == [said[1], "Blue, you said."]

    rows = await usage_rows(db, account.user_id)
    assert [(r.type, r.provider, r.model, r.tokens_in, r.tokens_out, r.cost) for r in rows] == [
        ("agent", "openai", "gpt-thread", 20, 4, cost(20, 4)),
        ("agent", "openai", "gpt-thread", 31, 6, cost(31, 6)),
        ("agent", "openai", "gpt-thread", 45, 2, cost(45, 2)),
        ("agent", "openai", "gpt-thread", 50, 2, cost(50, 2)),
    ]
    assert {(r.meta or {})["thread_id"] for r in rows} == {thread_id}
    assert all(r.run_id is None for r in rows)
    assert_no_secret(*(json.dumps(r) for r in replies), newest.text, rest.text)


async def test_an_agent_thread_calls_an_mcp_tool_and_then_answers(
    client: httpx.AsyncClient, fake: FakeServer, db: Database, settings: Settings
) -> None:
    fake.reset()
    account = await sign_up(client, "admin")
    await make_admin(db, account)
    integration = await client.post(
        "/api/v1/integrations",
        json={
            "name": "calc",
            "transport": "stdio",
            "command": sys.executable,
            "args": [SERVER],
            "env": {"CITY_TOKEN": ENV_SECRET},
        },
        headers=account.bearer,
    )
    assert integration.status_code == 201, integration.text
    weather_tool = {
        "kind": "http",
        "name": "forecast",
        "url": "https://weather.example.test/now?city={{ city }}",
        "headers": {"Authorization": HEADER_SECRET},
    }
    agent = await client.post(
        "/api/v1/agents",
        json={
            "name": "Calculator",
            "instructions": "Use the tools.",
            "context": "Numbers are integers.",
            "model": "gpt-agent",
            "tools": [
                {"kind": "mcp", "server": integration.json()["id"], "tools": ["add"]},
                weather_tool,
            ],
        },
        headers=account.bearer,
    )
    assert agent.status_code == 201, agent.text
    agent_id = agent.json()["id"]
    assert agent.json()["tools"][1]["headers"] == {"Authorization": "********"}
    thread_id = await new_thread(client, account, agent_id=agent_id, instructions="Say 'done'.")
    fake.script_replies(
        {
            "tool_calls": [{"name": "add", "arguments": {"a": 2, "b": 3}}],
            "tokens_in": 30,
            "tokens_out": 10,
        },
        {"text": "2 + 3 = 5, done.", "tokens_in": 60, "tokens_out": 20},
    )

    response = await client.post(
        f"/api/v1/threads/{thread_id}/messages",
        json={"content": "What is 2 + 3?"},
        headers=account.bearer,
    )

    assert response.status_code == 201, response.text
    reply = response.json()
    assert reply["message"]["content"] == "2 + 3 = 5, done."
    assert reply["message"]["tool_calls"] == [
        {
            "step": 1,
            "tool": "add",
            "arguments": {"a": 2, "b": 3},
            "result": 5,
            "is_error": False,
            "usage": {
                "tokens_in": 30,
                "tokens_out": 10,
                "tokens_total": 40,
                "cost": str(cost(30, 10)),
            },
        }
    ]
    assert reply["usage"]["cost"] == str(cost(30, 10) + cost(60, 20))
    assert reply["usage"]["calls"] == 2
    first, second = (request.body for request in fake.requests)
    assert [t["function"]["name"] for t in first["tools"]] == ["add", "forecast"]
    assert first["messages"][0] == {
        "role": "system",
        "content": "Use the tools.\n\nContext:\nNumbers are integers.\n\nSay 'done'.",
    }
    assert second["messages"][-1] == {"role": "tool", "tool_call_id": "call_0", "content": "5"}

    rows = await usage_rows(db, account.user_id)
    assert [(r.type, r.model, r.tokens_in, r.tokens_out, r.tokens_total, r.cost) for r in rows] == [
        ("agent", "gpt-agent", 30, 10, 40, cost(30, 10)),
        ("agent", "gpt-agent", 60, 20, 80, cost(60, 20)),
    ]
    assert [(r.meta or {})["step"] for r in rows] == [1, 2]
    assert {((r.meta or {})["thread_id"], (r.meta or {})["agent_id"]) for r in rows} == {
        (thread_id, agent_id)
    }

    # A PATCH that sends the hidden value back keeps the stored secret.
    patched = await client.patch(
        f"/api/v1/agents/{agent_id}",
        json={"tools": agent.json()["tools"], "name": "Calc"},
        headers=account.bearer,
    )
    assert patched.status_code == 200, patched.text
    async with db.read() as session:
        stored = await session.get(Agent, agent_id)
    assert stored is not None
    # At rest the row holds the placeholder; the value is sealed in the vault, and kept.
    assert stored.tools[1]["headers"] == {"Authorization": "********"}
    async with db.write() as session:
        opened = await AgentRepo(
            session, owner_id=account.user_id, vault=Vault.from_settings(settings)
        ).tools_with_secrets(agent_id=agent_id)
    assert opened[1]["headers"] == {"Authorization": HEADER_SECRET}
    renamed = dict(agent.json()["tools"][1], name="other")
    refused = await client.patch(
        f"/api/v1/agents/{agent_id}", json={"tools": [renamed]}, headers=account.bearer
    )
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "tools.0.headers.Authorization"

    listed = await client.get("/api/v1/agents", headers=account.bearer)
    history = await client.get(f"/api/v1/threads/{thread_id}/messages", headers=account.bearer)
    assert_no_secret(agent.text, patched.text, listed.text, response.text, history.text)


async def test_a_reply_streams_as_server_sent_events_and_is_stored(
    client: httpx.AsyncClient, fake: FakeServer, db: Database
) -> None:
    fake.reset()
    fake.reply_text = "Streaming works, piece by piece."
    account = await sign_up(client)
    thread_id = await new_thread(client, account, model="gpt-thread")

    response = await client.post(
        f"/api/v1/threads/{thread_id}/messages",
        params={"stream": "true"},
        json={"content": "Stream it."},
        headers=account.bearer,
    )

    assert response.status_code == 201
    assert response.headers["content-type"].startswith("text/event-stream")
    stream = events(response.text)
    deltas = [data["text"] for kind, data in stream if kind == "delta"]
    assert len(deltas) == 3
    assert "".join(deltas) == "Streaming works, piece by piece."
    kind, final = stream[-1]
    assert kind == "message"
    assert final["message"]["content"] == "Streaming works, piece by piece."
    assert final["usage"]["tokens_total"] == fake.tokens_in + fake.tokens_out
    assert fake.requests[0].body["stream"] is True

    # Accept: text/event-stream asks for the same; with tools, tool calls come as events.
    fake.script_replies(
        {"tool_calls": [{"name": "lookup", "arguments": {"q": "x"}}]},
        {"text": "Could not look it up."},
    )
    agent = await client.post(
        "/api/v1/agents",
        json={
            "name": "Looker",
            "model": "gpt-agent",
            "tools": [{"kind": "http", "name": "lookup", "url": "http://127.0.0.1:9/{{ q }}"}],
        },
        headers=account.bearer,
    )
    tooled = await new_thread(client, account, agent_id=agent.json()["id"])
    answered = await client.post(
        f"/api/v1/threads/{tooled}/messages",
        json={"content": "Look up x."},
        headers={**account.bearer, "Accept": "text/event-stream"},
    )
    kinds = [kind for kind, _ in events(answered.text)]
    # With tools too the answer streams: in pieces after the tool call, then the message.
    assert kinds[0] == "tool_call"
    assert kinds[-1] == "message"
    assert kinds[1:-1] == ["delta"] * 3
    said = "".join(data["text"] for kind, data in events(answered.text) if kind == "delta")
    assert said == "Could not look it up."
    step = events(answered.text)[0][1]
    assert (step["tool"], step["is_error"]) == ("lookup", True)
    assert "refusing to connect" in step["result"]["error"]

    history = await client.get(
        f"/api/v1/threads/{thread_id}/messages", params={"order": "oldest"}, headers=account.bearer
    )
    assert [(m["role"], m["content"]) for m in history.json()["items"]] == [
        ("user", "Stream it."),
        ("assistant", "Streaming works, piece by piece."),
    ]
    rows = await usage_rows(db, account.user_id)
    # The streamed reply and the tool thread's two calls, each priced from its tokens.
    assert [(r.tokens_in, r.tokens_out, r.cost) for r in rows] == [
        (fake.tokens_in, fake.tokens_out, cost(fake.tokens_in, fake.tokens_out))
    ] * 3
    assert_no_secret(response.text, answered.text)


async def test_a_provider_failure_stores_no_message(
    client: httpx.AsyncClient, fake: FakeServer, db: Database
) -> None:
    fake.reset()
    account = await sign_up(client)
    thread_id = await new_thread(client, account, model="gpt-thread")

    fake.fail_next("400")
    plain = await client.post(
        f"/api/v1/threads/{thread_id}/messages", json={"content": "Hi"}, headers=account.bearer
    )
    assert plain.status_code == 502
    assert plain.headers["content-type"] == "application/problem+json"
    assert plain.json()["provider"] == "openai"

    # Streamed, failing before anything was sent: the same answer.
    fake.fail_next("400")
    streamed = await client.post(
        f"/api/v1/threads/{thread_id}/messages?stream=true",
        json={"content": "Hi"},
        headers=account.bearer,
    )
    assert streamed.status_code == 502
    assert streamed.headers["content-type"] == "application/problem+json"

    # Failing after a tool step was streamed: an error event ends the stream.
    agent = await client.post(
        "/api/v1/agents",
        json={
            "name": "Fails",
            "model": "gpt-agent",
            "tools": [{"kind": "http", "name": "lookup", "url": "http://127.0.0.1:9/"}],
        },
        headers=account.bearer,
    )
    tooled = await new_thread(client, account, agent_id=agent.json()["id"])
    fake.fail_next("ok", "400")
    fake.script_replies({"tool_calls": [{"name": "lookup", "arguments": {}}], "tokens_in": 9})
    late = await client.post(
        f"/api/v1/threads/{tooled}/messages?stream=true",
        json={"content": "Go"},
        headers=account.bearer,
    )
    assert late.status_code == 201
    kinds = events(late.text)
    assert [kind for kind, _ in kinds] == ["tool_call", "error"]
    assert kinds[-1][1]["status"] == 502

    async with db.read() as session:
        stored = (
            await session.scalars(select(Message).where(Message.thread_id.in_([thread_id, tooled])))
        ).all()
    assert stored == []
    # Only the model call that answered was paid for, and only it is on record.
    rows = await usage_rows(db, account.user_id)
    assert [(r.tokens_in, (r.meta or {})["thread_id"]) for r in rows] == [(9, tooled)]
    assert_no_secret(plain.text, streamed.text, late.text)


async def test_soft_deleted_agents_and_threads_and_their_messages_are_gone(
    client: httpx.AsyncClient, fake: FakeServer, db: Database
) -> None:
    fake.reset()
    account = await sign_up(client)
    agent = await client.post(
        "/api/v1/agents", json={"name": "A", "model": "gpt-agent"}, headers=account.bearer
    )
    agent_id = agent.json()["id"]
    with_agent = await new_thread(client, account, agent_id=agent_id)
    alone = await new_thread(client, account, model="gpt-thread")
    said = await client.post(
        f"/api/v1/threads/{alone}/messages", json={"content": "Hi"}, headers=account.bearer
    )
    assert said.status_code == 201

    deleted = await client.delete(f"/api/v1/threads/{alone}", headers=account.bearer)
    assert deleted.status_code == 204
    for method, path in [
        ("GET", f"/api/v1/threads/{alone}"),
        ("GET", f"/api/v1/threads/{alone}/messages"),
        ("POST", f"/api/v1/threads/{alone}/messages"),
        ("PATCH", f"/api/v1/threads/{alone}"),
        ("DELETE", f"/api/v1/threads/{alone}"),
    ]:
        gone = await client.request(
            method, path, json={"content": "x", "name": "x"}, headers=account.bearer
        )
        assert gone.status_code == 404, (method, path, gone.text)
    threads = await client.get("/api/v1/threads", headers=account.bearer)
    assert [t["id"] for t in threads.json()["items"]] == [with_agent]
    by_agent = await client.get(
        "/api/v1/threads", params={"agent_id": agent_id}, headers=account.bearer
    )
    assert [t["id"] for t in by_agent.json()["items"]] == [with_agent]

    # Deleting the agent deletes its threads; a new thread cannot name it.
    assert (await client.delete(f"/api/v1/agents/{agent_id}", headers=account.bearer)).status_code
    assert (
        await client.get(f"/api/v1/agents/{agent_id}", headers=account.bearer)
    ).status_code == 404
    assert (
        await client.get(f"/api/v1/threads/{with_agent}", headers=account.bearer)
    ).status_code == 404
    assert (await client.get("/api/v1/agents", headers=account.bearer)).json()["items"] == []
    assert (await client.get("/api/v1/threads", headers=account.bearer)).json()["items"] == []
    refused = await client.post(
        "/api/v1/threads", json={"agent_id": agent_id}, headers=account.bearer
    )
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "agent_id"
    # The rows stay (soft delete): the history is still in the database.
    async with db.read() as session:
        kept = (await session.scalars(select(Message).where(Message.thread_id == alone))).all()
    assert len(kept) == 2


async def test_agents_and_threads_are_validated(
    client: httpx.AsyncClient, fake: FakeServer, db: Database
) -> None:
    account = await sign_up(client)
    other = await sign_up(client, "other")
    async with db.write() as session:
        await AiModelRepo(session).upsert(
            provider="openai",
            model="gpt-off",
            input_price_per_mtok=0,
            output_price_per_mtok=0,
            enabled=False,
        )
    foreign = await client.post(
        "/api/v1/agents", json={"name": "theirs", "model": "gpt-agent"}, headers=other.bearer
    )

    async def refused(path: str, body: dict[str, Any], field: str) -> None:
        response = await client.post(path, json=body, headers=account.bearer)
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert any(error["field"].startswith(field) for error in response.json()["errors"]), (
            response.text
        )

    await refused("/api/v1/agents", {"name": "a", "model": "m", "provider": "acme"}, "provider")
    await refused("/api/v1/agents", {"name": "a", "model": "gpt-off"}, "model")
    await refused("/api/v1/agents", {"name": "a"}, "model")
    await refused(
        "/api/v1/agents", {"name": "a", "model": "m", "tools": [{"kind": "shell"}]}, "tools"
    )
    await refused(
        "/api/v1/agents",
        {"name": "a", "model": "m", "tools": [{"kind": "mcp", "server": "intg_nope"}]},
        "tools.0",
    )
    await refused(
        "/api/v1/agents",
        {
            "name": "a",
            "model": "m",
            "tools": [{"kind": "workflow", "name": "w", "workflow_id": "wf_none"}],
        },
        "tools.0",
    )
    http = {"kind": "http", "name": "twice", "url": "https://example.com/"}
    await refused("/api/v1/agents", {"name": "a", "model": "m", "tools": [http, http]}, "tools")
    await refused("/api/v1/threads", {"name": "t"}, "")
    await refused("/api/v1/threads", {"agent_id": foreign.json()["id"]}, "agent_id")
    mine = await client.post(
        "/api/v1/agents", json={"name": "mine", "model": "gpt-agent"}, headers=account.bearer
    )
    await refused("/api/v1/threads", {"agent_id": mine.json()["id"], "model": "x"}, "")
    await refused("/api/v1/threads", {"model": "gpt-off"}, "model")
    thread_id = await new_thread(client, account, agent_id=mine.json()["id"])
    switched = await client.patch(
        f"/api/v1/threads/{thread_id}", json={"model": "gpt-thread"}, headers=account.bearer
    )
    assert switched.status_code == 422
    changed = await client.patch(
        f"/api/v1/agents/{mine.json()['id']}",
        json={"context": "Facts.", "model": "gpt-thread"},
        headers=account.bearer,
    )
    assert (changed.json()["context"], changed.json()["model"]) == ("Facts.", "gpt-thread")
    cleared = await client.patch(
        f"/api/v1/agents/{mine.json()['id']}", json={"context": None}, headers=account.bearer
    )
    assert (cleared.json()["context"], cleared.json()["model"]) == (None, "gpt-thread")
