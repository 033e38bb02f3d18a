"""Integrations over HTTP: register MCP servers, list their tools, test them, run them from a
workflow; secrets never come back, and another user's integration is not found."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from apikit import Account, sign_up
from sqlalchemy import select, update

from flowloom.storage.database import Database
from flowloom.storage.enums import UserRole
from flowloom.storage.tables import Credential, Integration, User

SERVER = str(Path(__file__).parents[1] / "integrations" / "mcp_test_server.py")
ENV_SECRET = "env-value-do-not-show-8731"
HEADER_SECRET = "Bearer hdr-value-do-not-show-5519"
SECRETS = (ENV_SECRET, HEADER_SECRET, "hdr-value-do-not-show-5519")


async def make_admin(db: Database, account: Account) -> None:
    async with db.write() as session:
        await session.execute(
            update(User).where(User.id == account.user_id).values(role=UserRole.ADMIN)
        )


def stdio_body(name: str = "tools", **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "transport": "stdio",
        "command": sys.executable,
        "args": [SERVER],
        "env": {"API_TOKEN": ENV_SECRET},
        **extra,
    }


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text


async def test_an_http_server_is_registered_listed_changed_and_deleted(
    client: httpx.AsyncClient, db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    alice = await sign_up(client, "alice")
    answers: list[str] = []
    body = {
        "name": "remote",
        "transport": "http",
        "url": "https://mcp.example.com/mcp",
        "headers": {"Authorization": HEADER_SECRET},
    }
    created = await client.post("/api/v1/integrations", json=body, headers=alice.bearer)
    answers.append(created.text)
    assert created.status_code == 201, created.text
    integration = created.json()
    assert created.headers["location"] == f"/api/v1/integrations/{integration['id']}"
    assert integration["id"].startswith("intg_")
    assert (integration["kind"], integration["transport"]) == ("mcp_http", "http")
    assert integration["url"] == "https://mcp.example.com/mcp"
    assert integration["header_names"] == ["Authorization"]
    assert integration["env_names"] == []

    listed = await client.get("/api/v1/integrations", headers=alice.bearer)
    read = await client.get(f"/api/v1/integrations/{integration['id']}", headers=alice.bearer)
    answers += [listed.text, read.text]
    assert [item["id"] for item in listed.json()["items"]] == [integration["id"]]
    assert read.json() == integration

    patched = await client.patch(
        f"/api/v1/integrations/{integration['id']}",
        json={"name": "renamed", "headers": {"X-Api-Key": HEADER_SECRET}, "timeout_s": 5},
        headers=alice.bearer,
    )
    answers.append(patched.text)
    assert patched.status_code == 200, patched.text
    assert patched.json()["name"] == "renamed"
    assert patched.json()["header_names"] == ["X-Api-Key"]
    assert patched.json()["timeout_s"] == 5
    assert patched.json()["url"] == "https://mcp.example.com/mcp"

    async with db.read() as session:
        row = await session.get(Integration, integration["id"])
        sealed = (
            await session.scalars(select(Credential).where(Credential.user_id == alice.user_id))
        ).all()
    assert row is not None
    assert_no_secret(str(row.config))
    assert len(sealed) == 1
    assert all(secret.encode() not in sealed[0].ciphertext for secret in SECRETS)

    refused = await client.post(
        "/api/v1/integrations",
        json={"name": "x", "transport": "http", "url": "https://h.example.com/mcp?key=abc"},
        headers=alice.bearer,
    )
    assert refused.status_code == 422
    assert "put tokens in headers" in refused.json()["detail"]

    deleted = await client.delete(f"/api/v1/integrations/{integration['id']}", headers=alice.bearer)
    assert deleted.status_code == 204
    gone = await client.get(f"/api/v1/integrations/{integration['id']}", headers=alice.bearer)
    assert gone.status_code == 404
    async with db.read() as session:
        left = (
            await session.scalars(select(Credential).where(Credential.user_id == alice.user_id))
        ).all()
    assert left == []  # the secrets are forgotten with the integration
    again = await client.post(
        "/api/v1/integrations", json={**body, "name": "renamed"}, headers=alice.bearer
    )
    assert again.status_code == 201  # a deleted integration's name is free again
    assert_no_secret(*answers, caplog.text)


async def test_stdio_servers_are_for_administrators_and_their_tools_are_listed(
    client: httpx.AsyncClient, db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    user = await sign_up(client, "plain")
    refused = await client.post("/api/v1/integrations", json=stdio_body(), headers=user.bearer)
    assert refused.status_code == 403
    assert "only administrators" in refused.json()["detail"]

    admin = await sign_up(client, "admin")
    await make_admin(db, admin)
    created = await client.post("/api/v1/integrations", json=stdio_body(), headers=admin.bearer)
    assert created.status_code == 201, created.text
    integration_id = created.json()["id"]
    assert created.json()["env_names"] == ["API_TOKEN"]
    assert created.json()["args"] == [SERVER]

    tools = await client.get(f"/api/v1/integrations/{integration_id}/tools", headers=admin.bearer)
    assert tools.status_code == 200, tools.text
    by_name = {tool["name"]: tool for tool in tools.json()["items"]}
    assert by_name["add"]["description"] == "Add two integers."
    assert by_name["add"]["input_schema"]["required"] == ["a", "b"]

    tested = await client.post(f"/api/v1/integrations/{integration_id}/test", headers=admin.bearer)
    assert tested.status_code == 200
    assert tested.json()["ok"] is True
    assert tested.json()["tools"] == len(by_name)
    assert tested.json()["message"] == f"MCP server 'tools' answered with {len(by_name)} tool(s)"

    # A server that dies at start reports why; its stderr (which echoes the token) is redacted.
    broken = await client.patch(
        f"/api/v1/integrations/{integration_id}",
        json={"env": {"MCP_TEST_LEAK": ENV_SECRET}},
        headers=admin.bearer,
    )
    assert broken.json()["env_names"] == ["MCP_TEST_LEAK"]
    failed = await client.post(f"/api/v1/integrations/{integration_id}/test", headers=admin.bearer)
    assert failed.status_code == 200
    assert failed.json()["ok"] is False
    assert "closed the connection while connecting" in failed.json()["message"]
    assert "cannot log in with token ***" in failed.json()["message"]
    no_tools = await client.get(
        f"/api/v1/integrations/{integration_id}/tools", headers=admin.bearer
    )
    assert no_tools.status_code == 502
    assert no_tools.headers["content-type"] == "application/problem+json"

    moved = await client.patch(
        f"/api/v1/integrations/{integration_id}",
        json={"command": "/no/such/server", "env": {}},
        headers=admin.bearer,
    )
    assert moved.json()["command"] == "/no/such/server"
    assert moved.json()["env_names"] == []
    missing = await client.post(f"/api/v1/integrations/{integration_id}/test", headers=admin.bearer)
    assert missing.json() == {
        "ok": False,
        "message": "MCP server 'tools' could not be started: No such file or directory",
        "tools": None,
        "duration_ms": missing.json()["duration_ms"],
    }
    assert_no_secret(created.text, tools.text, tested.text, failed.text, no_tools.text, caplog.text)


async def test_a_private_url_is_refused_when_tested(client: httpx.AsyncClient) -> None:
    alice = await sign_up(client, "alice")
    created = await client.post(
        "/api/v1/integrations",
        json={"name": "local", "transport": "http", "url": "http://127.0.0.1:9/mcp"},
        headers=alice.bearer,
    )
    tested = await client.post(
        f"/api/v1/integrations/{created.json()['id']}/test", headers=alice.bearer
    )
    assert tested.status_code == 422
    assert "loopback addresses are not allowed" in tested.json()["detail"]


async def test_another_users_integration_is_not_found(
    client: httpx.AsyncClient, db: Database
) -> None:
    owner = await sign_up(client, "owner")
    await make_admin(db, owner)
    created = await client.post("/api/v1/integrations", json=stdio_body(), headers=owner.bearer)
    integration_id = created.json()["id"]
    other = await sign_up(client, "other")
    await make_admin(db, other)
    path = f"/api/v1/integrations/{integration_id}"
    attempts = [
        await client.get(path, headers=other.bearer),
        await client.patch(path, json={"name": "mine"}, headers=other.bearer),
        await client.delete(path, headers=other.bearer),
        await client.get(f"{path}/tools", headers=other.bearer),
        await client.post(f"{path}/test", headers=other.bearer),
    ]
    assert [response.status_code for response in attempts] == [404] * 5
    listed = await client.get("/api/v1/integrations", headers=other.bearer)
    assert listed.json()["items"] == []
    still = await client.get(path, headers=owner.bearer)
    assert still.json()["name"] == "tools"


async def test_a_workflow_calls_a_registered_server_through_mcp_tool(
    client: httpx.AsyncClient, db: Database
) -> None:
    admin = await sign_up(client, "runner")
    await make_admin(db, admin)
    created = await client.post("/api/v1/integrations", json=stdio_body(), headers=admin.bearer)
    definition = {
        "schema_version": 1,
        "nodes": [
            {
                "id": "sum",
                "type": "mcp.tool",
                "data": {
                    "config": {
                        "server": created.json()["id"],
                        "tool": "add",
                        "arguments": {"a": "{{ n }}", "b": 1},
                        "variables": ["n"],
                        "n": 41,
                    }
                },
            },
        ],
        "edges": [],
    }
    workflow = await client.post(
        "/api/v1/workflows",
        json={"name": "mcp", "definition": definition},
        headers=admin.bearer,
        params={"strict": "true"},
    )
    assert workflow.status_code == 201, workflow.text
    run = await client.post(
        f"/api/v1/workflows/{workflow.json()['id']}/runs?wait=true", json={}, headers=admin.bearer
    )
    assert run.json()["status"] == "COMPLETED", run.text
    outputs = run.json()["outputs"]
    assert outputs["sum"] == {"result": 42, "text": "42", "is_error": False}
    assert_no_secret(run.text, workflow.text)
