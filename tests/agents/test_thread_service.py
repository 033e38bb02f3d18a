"""The agent loop and the thread service below the API: the real OpenAI SDK against the local
fake server, a real engine running workflow tools, on SQLite and PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import AsyncExitStack
from decimal import Decimal
from typing import Any

import pytest
from providers.fake_servers import API_KEY, FakeServer, running_server
from sqlalchemy import select

from flowloom.agents import LoopOptions, StepFailed, open_toolbox, run_agent_loop
from flowloom.agents.threads import ThreadService
from flowloom.engine import Engine
from flowloom.ids import new_id
from flowloom.nodes.agent import HttpTool
from flowloom.providers import (
    ChatMessage,
    ChatResponse,
    ProviderConfig,
    ProviderRefused,
    RetryPolicy,
    SettingsProviderResolver,
)
from flowloom.storage.database import Database
from flowloom.storage.repos.agents import AgentRepo, ThreadRepo, join_model
from flowloom.storage.repos.users import UserRepo
from flowloom.storage.repos.workflows import WorkflowRepo
from flowloom.storage.tables import WorkflowRun
from flowloom.testing import make_context


@pytest.fixture(scope="module")
def server() -> Iterator[FakeServer]:
    with running_server() as running:
        yield running


def resolver(server: FakeServer) -> SettingsProviderResolver:
    return SettingsProviderResolver(
        {"openai": ProviderConfig(API_KEY, server.openai_base_url)},
        retry=RetryPolicy(attempts=1),
    )


async def new_user(db: Database) -> str:
    async with db.write() as session:
        return (await UserRepo(session).create(email=f"{new_id('usr')}@example.com")).id


GREETER = {
    "schema_version": 1,
    "nodes": [
        {
            "id": "start",
            "type": "trigger.manual",
            "data": {"config": {"fields": [{"name": "name", "type": "string"}]}},
        },
        {
            "id": "greet",
            "type": "text.template",
            "data": {"config": {"template": "Hello, {{ name }}!", "variables": ["name"]}},
        },
    ],
    "edges": [
        {
            "id": "e1",
            "source": "start",
            "sourceHandle": "name",
            "target": "greet",
            "targetHandle": "name",
        }
    ],
}


async def test_the_loop_streams_text_when_no_tools_are_on_offer(server: FakeServer) -> None:
    server.reset()
    server.reply_text = "One, two, three."
    provider = await resolver(server).resolve("openai")
    pieces: list[str] = []
    recorded: list[tuple[int, int]] = []

    async def on_delta(text: str) -> None:
        pieces.append(text)

    async def record(response: ChatResponse, step: int) -> Decimal:
        recorded.append((step, response.usage.tokens_total))
        return Decimal("0.5")

    async with AsyncExitStack() as stack:
        toolbox = await open_toolbox(make_context(), [], stack)
        outcome = await run_agent_loop(
            provider,
            [ChatMessage("user", "Count.")],
            toolbox,
            LoopOptions(model="gpt-loop", instructions="Count to three."),
            record=record,
            on_delta=on_delta,
        )

    assert len(pieces) == 3
    assert "".join(pieces) == outcome.text == "One, two, three."
    assert recorded == [(1, server.tokens_in + server.tokens_out)]
    assert outcome.totals.to_json()["cost"] == "0.5"
    assert server.requests[0].body["stream"] is True
    assert server.requests[0].body["messages"][0] == {
        "role": "system",
        "content": "Count to three.",
    }


async def test_a_failing_model_call_says_which_step_failed(server: FakeServer) -> None:
    server.reset()
    server.fail_next("ok", "400")
    server.script_replies({"tool_calls": [{"name": "lookup", "arguments": {}}]})
    provider = await resolver(server).resolve("openai")
    steps: list[dict[str, Any]] = []

    async def record(response: ChatResponse, step: int) -> Decimal:
        return Decimal(0)

    async def on_step(entry: dict[str, Any]) -> None:
        steps.append(entry)

    tool = HttpTool(kind="http", name="lookup", url="http://127.0.0.1:9/")
    async with AsyncExitStack() as stack:
        toolbox = await open_toolbox(make_context(), [tool], stack)
        with pytest.raises(StepFailed) as failed:
            await run_agent_loop(
                provider,
                [ChatMessage("user", "Go.")],
                toolbox,
                LoopOptions(model="gpt-loop"),
                record=record,
                on_step=on_step,
            )
    assert failed.value.step == 2
    assert isinstance(failed.value.error, ProviderRefused)
    assert [(s["tool"], s["is_error"]) for s in steps] == [("lookup", True)]


async def test_a_workflow_tool_runs_as_a_run_of_its_own(db: Database, server: FakeServer) -> None:
    server.reset()
    owner = await new_user(db)
    async with db.write() as session:
        workflow = await WorkflowRepo(session, owner_id=owner).create(
            name="greeter", definition=GREETER
        )
        agent = await AgentRepo(session, owner_id=owner).create(
            name="greeter",
            instructions="Greet with the tool.",
            provider="openai",
            model="gpt-agent",
            tools=[
                {
                    "kind": "workflow",
                    "name": "greet",
                    "workflow_id": workflow.id,
                    "parameters": {"type": "object", "properties": {"name": {"type": "string"}}},
                }
            ],
        )
        thread = await ThreadRepo(session, owner_id=owner).create(name="t", agent_id=agent.id)
    server.script_replies(
        {"tool_calls": [{"name": "greet", "arguments": {"name": "Ada"}}]},
        {"text": "Hello, Ada!"},
    )
    providers = resolver(server)
    engine = Engine(db, providers=providers)
    try:
        service = ThreadService(db, providers=providers, engine=engine)
        reply = await service.post(owner_id=owner, thread_id=thread.id, content="Greet Ada.")
    finally:
        await engine.close()

    assert reply.message.content == "Hello, Ada!"
    assert reply.message.tool_calls is not None
    [call] = reply.message.tool_calls
    assert call["result"] == {"greet": {"text": "Hello, Ada!"}}
    async with db.read() as session:
        run = await session.scalar(
            select(WorkflowRun).where(WorkflowRun.workflow_id == workflow.id)
        )
    assert run is not None
    assert run.trigger_kind == "api"
    assert (run.trigger_data or {})["thread_id"] == thread.id


async def test_the_history_window_never_starts_with_a_reply(
    db: Database, server: FakeServer
) -> None:
    server.reset()
    owner = await new_user(db)
    async with db.write() as session:
        thread = await ThreadRepo(session, owner_id=owner).create(
            name="t", model=join_model("openai", "gpt-thread")
        )
    service = ThreadService(db, providers=resolver(server), history_messages=3)
    for content in ("one", "two", "three"):
        server.script_replies({"text": f"re: {content}"})
        await service.post(owner_id=owner, thread_id=thread.id, content=content)

    # The last three messages before "three" were re: one, two, re: two; the reply is dropped.
    assert [m["content"] for m in server.requests[-1].body["messages"]] == [
        "two",
        "re: two",
        "three",
    ]


def test_the_loop_imports_neither_storage_nor_the_api() -> None:
    code = (
        "import sys, flowloom.agents; "
        "print(sorted(m for m in sys.modules "
        "if m.startswith(('flowloom.api', 'flowloom.storage', 'flowloom.agents.threads'))))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
