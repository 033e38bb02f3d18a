"""Secrets in agents' tools rest sealed in the vault, on SQLite and PostgreSQL.

HTTP tool headers and an inline MCP server's env and headers never appear in ``agents.tools``
(which holds ``********``) nor in plain text anywhere in the database; a thread turn still
sends the real value (to a real local server that records it); rows written before sealing
existed are sealed when the API starts; and deleting the agent forgets its secrets.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from apikit import make_settings, sign_up
from appthread import AppThread
from fastapi import FastAPI
from providers.fake_servers import API_KEY, FakeServer
from sqlalchemy import select, text
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from flowloom.api import create_app
from flowloom.ids import new_id
from flowloom.settings import Settings
from flowloom.storage.database import Database
from flowloom.storage.repos.agents import AgentRepo, agent_secret_name
from flowloom.storage.repos.ai_models import AiModelRepo
from flowloom.storage.tables import Agent, Credential
from flowloom.storage.vault import Vault

HTTP_SECRET = "http-tool-key-SEALED-5501"
MCP_HEADER_SECRET = "Bearer mcp-header-SEALED-7702"
MCP_ENV_SECRET = "mcp-env-SEALED-8803"
LEGACY_SECRET = "legacy-plain-SEALED-9904"


class Recorder:
    """A local HTTP service an agent's tool calls; it records the headers it got."""

    def __init__(self) -> None:
        self.seen: list[dict[str, str]] = []

        async def lookup(request: Request) -> Response:
            self.seen.append(dict(request.headers))
            return JSONResponse({"answer": 42})

        self.thread = AppThread(Starlette(routes=[Route("/lookup", lookup)]), what="tool server")
        self.port = 0


@pytest.fixture(scope="module")
def recorder() -> Iterator[Recorder]:
    server = Recorder()
    server.port = server.thread.start()
    try:
        yield server
    finally:
        server.thread.stop()


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory, fake: FakeServer) -> Settings:
    return make_settings(
        tmp_path_factory.mktemp("data"),
        openai_api_key=API_KEY,
        openai_base_url=fake.openai_base_url,
        provider_max_attempts=1,
        allow_private_http=True,
    )


@pytest.fixture(scope="module", autouse=True)
async def model(db: Database) -> None:
    async with db.write() as session:
        await AiModelRepo(session).upsert(
            provider="openai", model="gpt-sealed", input_price_per_mtok=1, output_price_per_mtok=1
        )


def tools(recorder: Recorder) -> list[dict[str, Any]]:
    return [
        {
            "kind": "http",
            "name": "lookup",
            "url": f"http://127.0.0.1:{recorder.port}/lookup",
            "headers": {"X-Api-Key": HTTP_SECRET},
        },
        {
            "kind": "mcp",
            "server": {
                "transport": "http",
                "url": "https://mcp.example.test/mcp",
                "headers": {"Authorization": MCP_HEADER_SECRET},
                "env": {"TOKEN": MCP_ENV_SECRET},
            },
        },
    ]


async def database_text(db: Database) -> str:
    """Everything in the agents and credentials tables, as text."""
    async with db.read() as session:
        agents = (await session.execute(text("SELECT * FROM agents"))).all()
        credentials = (await session.execute(text("SELECT * FROM credentials"))).all()
    return repr(agents) + repr(credentials)


async def test_tool_secrets_are_sealed_at_rest(
    client: httpx.AsyncClient, db: Database, recorder: Recorder
) -> None:
    account = await sign_up(client, "sealer")

    created = await client.post(
        "/api/v1/agents",
        json={"name": "Sealed", "model": "gpt-sealed", "tools": tools(recorder)},
        headers=account.bearer,
    )

    assert created.status_code == 201, created.text
    agent_id = created.json()["id"]
    async with db.read() as session:
        row = await session.get(Agent, agent_id)
        sealed = await session.scalar(
            select(Credential).where(
                Credential.user_id == account.user_id,
                Credential.name == agent_secret_name(agent_id),
            )
        )
    assert row is not None
    assert row.tools[0]["headers"] == {"X-Api-Key": "********"}
    assert row.tools[1]["server"]["headers"] == {"Authorization": "********"}
    assert row.tools[1]["server"]["env"] == {"TOKEN": "********"}
    assert sealed is not None
    stored = await database_text(db)
    for secret in (HTTP_SECRET, MCP_HEADER_SECRET, MCP_ENV_SECRET, "mcp-header-SEALED"):
        assert secret not in stored
        assert secret not in created.text
    # The vault's row is the agent's own: not among the user's credentials, not reachable.
    listed = await client.get("/api/v1/credentials", headers=account.bearer)
    assert agent_id not in listed.text
    reached = await client.get(
        f"/api/v1/credentials/{agent_secret_name(agent_id)}", headers=account.bearer
    )
    assert reached.status_code == 404
    refused = await client.post(
        "/api/v1/credentials",
        json={"name": "agent:mine", "value": "x", "kind": "secret"},
        headers=account.bearer,
    )
    assert refused.status_code == 422


async def test_a_turn_sends_the_sealed_value_and_a_patch_keeps_it(
    client: httpx.AsyncClient, fake: FakeServer, db: Database, recorder: Recorder
) -> None:
    fake.reset()
    recorder.seen.clear()
    account = await sign_up(client, "turner")
    created = await client.post(
        "/api/v1/agents",
        json={"name": "Caller", "model": "gpt-sealed", "tools": tools(recorder)[:1]},
        headers=account.bearer,
    )
    agent_id = created.json()["id"]
    # Sending the hidden value back keeps the sealed one.
    patched = await client.patch(
        f"/api/v1/agents/{agent_id}",
        json={"tools": created.json()["tools"], "name": "Caller 2"},
        headers=account.bearer,
    )
    assert patched.status_code == 200, patched.text
    thread = await client.post(
        "/api/v1/threads", json={"agent_id": agent_id}, headers=account.bearer
    )
    fake.script_replies(
        {"tool_calls": [{"name": "lookup", "arguments": {}}]},
        {"text": "It is 42."},
    )

    reply = await client.post(
        f"/api/v1/threads/{thread.json()['id']}/messages",
        json={"content": "Look it up"},
        headers=account.bearer,
    )

    assert reply.status_code == 201, reply.text
    assert [seen["x-api-key"] for seen in recorder.seen] == [HTTP_SECRET]
    assert HTTP_SECRET not in reply.text
    assert HTTP_SECRET not in await database_text(db)


async def test_deleting_the_agent_forgets_its_secrets(
    client: httpx.AsyncClient, db: Database, recorder: Recorder
) -> None:
    account = await sign_up(client, "forgetter")
    created = await client.post(
        "/api/v1/agents",
        json={"name": "Gone", "model": "gpt-sealed", "tools": tools(recorder)},
        headers=account.bearer,
    )
    agent_id = created.json()["id"]

    deleted = await client.delete(f"/api/v1/agents/{agent_id}", headers=account.bearer)

    assert deleted.status_code == 204
    async with db.read() as session:
        left = await session.scalar(
            select(Credential).where(Credential.name == agent_secret_name(agent_id))
        )
    assert left is None


async def test_plain_values_of_earlier_rows_are_sealed_when_the_api_starts(
    client: httpx.AsyncClient, db: Database, settings: Settings, recorder: Recorder
) -> None:
    account = await sign_up(client, "legacy")
    legacy_tools = tools(recorder)
    legacy_tools[0]["headers"] = {"X-Api-Key": LEGACY_SECRET}
    agent_id = new_id("agt")
    async with db.write() as session:
        session.add(
            Agent(
                id=agent_id,
                user_id=account.user_id,
                name="Old",
                instructions="",
                provider="openai",
                model="gpt-sealed",
                tools=legacy_tools,
            )
        )
    assert LEGACY_SECRET in await database_text(db)

    restarted: FastAPI = create_app(settings, db=db)
    async with restarted.router.lifespan_context(restarted):
        pass

    assert LEGACY_SECRET not in await database_text(db)
    assert MCP_ENV_SECRET not in await database_text(db)
    async with db.write() as session:
        opened = await AgentRepo(
            session, owner_id=account.user_id, vault=Vault.from_settings(settings)
        ).tools_with_secrets(agent_id=agent_id)
    assert opened[0]["headers"] == {"X-Api-Key": LEGACY_SECRET}
    assert opened[1]["server"]["env"] == {"TOKEN": MCP_ENV_SECRET}
    shown = await client.get(f"/api/v1/agents/{agent_id}", headers=account.bearer)
    assert json.loads(shown.text)["tools"][0]["headers"] == {"X-Api-Key": "********"}
