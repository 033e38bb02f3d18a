"""Owner scoping, generated from the app's route table: a second user gets 404 (or 403) on
every route that names the first user's objects, and sees none of them in any listing.

A new route with a path parameter not listed in ``objects`` fails the test until it is added,
so every route is covered as the API grows.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx
from apikit import approval_definition, create_workflow, sign_up
from fastapi import FastAPI

ClientFactory = Callable[[], AbstractAsyncContextManager[httpx.AsyncClient]]

# Routes whose path parameters do not name an object somebody owns.
PUBLIC_PARAMETERS = {"type_name"}

# What a route might plausibly be sent, so that body validation passes and the ownership
# check is what answers.
BODIES: dict[str, Any] = {
    "PATCH /api/v1/workflows/{workflow_id}": {"name": "stolen"},
    "POST /api/v1/workflows/{workflow_id}/runs": {},
    "POST /api/v1/runs/{run_id}/nodes/{node_id}/answer": {"approved": True},
    "POST /api/v1/workflows/{workflow_id}/triggers": {"kind": "webhook"},
    "PATCH /api/v1/triggers/{trigger_id}": {"enabled": False},
    "POST /api/v1/workflows/{workflow_id}/debug-sessions": {},
    "PATCH /api/v1/node-templates/{template_id}": {"name": "stolen"},
    "PUT /api/v1/credentials/{credential_name}/value": {"value": "stolen"},
    "PATCH /api/v1/workflows/{workflow_id}/positions": {"positions": {"ask": {"x": 1, "y": 2}}},
    "PATCH /api/v1/integrations/{integration_id}": {"name": "stolen"},
    "PATCH /api/v1/agents/{agent_id}": {"name": "stolen"},
    "PATCH /api/v1/threads/{thread_id}": {"name": "stolen"},
    "POST /api/v1/threads/{thread_id}/messages": {"content": "hello"},
}


async def test_another_users_objects_answer_404_on_every_route(
    app: FastAPI, new_client: ClientFactory
) -> None:
    async with new_client() as alice_client:
        alice = await sign_up(alice_client, "alice")
        workflow = await create_workflow(alice_client, alice, approval_definition())
        run = await alice_client.post(
            f"/api/v1/workflows/{workflow['id']}/runs?wait=true", json={}, headers=alice.bearer
        )
        assert run.json()["status"] == "WAITING"
        key = await alice_client.post(
            "/api/v1/api-keys", json={"name": "k", "scopes": ["admin"]}, headers=alice.bearer
        )
        hook = await alice_client.post(
            f"/api/v1/workflows/{workflow['id']}/triggers",
            json={"kind": "webhook"},
            headers=alice.bearer,
        )
        debug = await alice_client.post(
            f"/api/v1/workflows/{workflow['id']}/debug-sessions",
            json={"breakpoints": ["ask"]},
            headers=alice.bearer,
        )
        alice_sessions = await alice_client.get("/api/v1/auth/sessions", headers=alice.bearer)
        secret = await alice_client.post(
            "/api/v1/credentials", json={"name": "alice-key", "value": "s3"}, headers=alice.bearer
        )
        assert secret.status_code == 201
        template = await alice_client.post(
            "/api/v1/node-templates",
            json={"name": "t", "node_type": "text.value", "config": {"text": "x"}},
            headers=alice.bearer,
        )
        integration = await alice_client.post(
            "/api/v1/integrations",
            json={"name": "i", "transport": "http", "url": "https://mcp.example.com/mcp"},
            headers=alice.bearer,
        )
        agent = await alice_client.post(
            "/api/v1/agents", json={"name": "a", "model": "gpt-x"}, headers=alice.bearer
        )
        thread = await alice_client.post(
            "/api/v1/threads", json={"agent_id": agent.json()["id"]}, headers=alice.bearer
        )
        oauth = await alice_client.post(
            "/api/v1/oauth/connections",
            json={
                "name": "o",
                "client_id": "c",
                "authorization_url": "https://auth.example.com/authorize",
                "token_url": "https://auth.example.com/token",
            },
            headers=alice.bearer,
        )
    objects = {
        "workflow_id": workflow["id"],
        "run_id": run.json()["id"],
        "key_id": key.json()["id"],
        "version": "1",
        "node_id": "ask",
        "trigger_id": hook.json()["id"],
        # A webhook answers to its token, not to who is signed in: Bob holds none.
        "hook_path": hook.json()["url"].rsplit("/", 1)[1],
        "debug_session_id": debug.json()["id"],
        "session_id": alice_sessions.json()["items"][0]["id"],
        "template_id": template.json()["id"],
        "credential_name": "alice-key",
        # Blobs are checked against their artifact rows (tests/api/test_api_blobs_positions.py
        # serves a real one to its owner and refuses it to another user).
        "sha256": "0" * 64,
        "integration_id": integration.json()["id"],
        "agent_id": agent.json()["id"],
        "thread_id": thread.json()["id"],
        "connection_id": oauth.json()["id"],
        # A memory entry's key is looked up within its workflow, which is Alice's.
        "key": "note",
        # Admin routes: the instance's objects, refused with 403 to anyone but an admin.
        "user_id": alice.user_id,
        "model_id": "aim_00000000000000000000000000",
        "package_id": "pkg_00000000000000000000000000",
    }

    checked = []
    async with new_client() as bob_client:
        bob = await sign_up(bob_client, "bob")
        # The OpenAPI document lists every route the app serves, with its path parameters.
        for template, operations in app.openapi()["paths"].items():
            params = set(re.findall(r"{(\w+)}", template)) - PUBLIC_PARAMETERS
            if not params:
                continue
            missing = params - set(objects)
            assert not missing, f"{template}: add an object for {missing} to objects"
            path = template.format(**objects)
            for method in sorted(m.upper() for m in operations):
                body = BODIES.get(f"{method} {template}")
                response = await bob_client.request(method, path, json=body, headers=bob.bearer)
                assert response.status_code in (403, 404), (
                    f"{method} {template}: {response.status_code} {response.text}"
                )
                assert response.headers["content-type"] == "application/problem+json"
                checked.append(f"{method} {template}")

        listings = [
            "/api/v1/workflows",
            "/api/v1/runs",
            "/api/v1/api-keys",
            "/api/v1/audit-log",
            "/api/v1/debug-sessions",
            "/api/v1/node-templates",
            "/api/v1/integrations",
            "/api/v1/agents",
            "/api/v1/threads",
            "/api/v1/credentials",
            "/api/v1/oauth/connections",
        ]
        for listing in listings:
            response = await bob_client.get(listing, headers=bob.bearer)
            assert response.status_code == 200
            if listing == "/api/v1/audit-log":
                # Bob's own trail names what he asked for, and says he was refused it.
                for entry in response.json()["items"]:
                    if entry["object_id"] in objects.values():
                        assert entry["details"]["status"] in (403, 404), entry
                continue
            for value in objects.values():
                if value.startswith(
                    ("wf_", "run_", "key_", "dbg_", "ntpl_", "intg_", "trg_", "agnt_", "thrd_")
                ):
                    assert value not in response.text, listing
        theirs = await bob_client.get("/api/v1/credentials", headers=bob.bearer)
        assert "alice-key" not in theirs.text
        by_filter = await bob_client.get(
            "/api/v1/runs", params={"workflow_id": workflow["id"]}, headers=bob.bearer
        )
        assert by_filter.json()["items"] == []

    assert len(checked) >= 15
    # Nothing Bob tried changed Alice's objects.
    async with new_client() as alice_client:
        still = await alice_client.get(f"/api/v1/workflows/{workflow['id']}", headers=alice.bearer)
        run_now = await alice_client.get(f"/api/v1/runs/{run.json()['id']}", headers=alice.bearer)
        key_now = await alice_client.get(
            f"/api/v1/api-keys/{key.json()['id']}", headers=alice.bearer
        )
    assert still.json()["name"] == "flow"
    assert run_now.json()["status"] == "WAITING"
    assert key_now.json()["revoked_at"] is None
    async with new_client() as alice_client:
        hook_now = await alice_client.get(
            f"/api/v1/triggers/{hook.json()['id']}", headers=alice.bearer
        )
    assert hook_now.json()["enabled"] is True
