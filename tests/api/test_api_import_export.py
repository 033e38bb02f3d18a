"""Workflows out and back in: an export read back by import is the same workflow; a file is
checked before saving with every problem at once (its shape and its definition's); a strict
import of a broken file saves nothing; another user's workflow does not export."""

from __future__ import annotations

from typing import Any

import httpx
from apikit import create_workflow, example, sign_up


async def test_an_export_imports_back_as_the_same_workflow(client: httpx.AsyncClient) -> None:
    account = await sign_up(client)
    original = await create_workflow(client, account, example("sort_numbers"), name="Sorter")

    exported = await client.get(
        f"/api/v1/workflows/{original['id']}/export", headers=account.bearer
    )
    checked = await client.post(
        "/api/v1/workflows/import/check",
        json={"document": exported.json(), "name": "Sorter again"},
        headers=account.bearer,
    )
    imported = await client.post(
        "/api/v1/workflows/import",
        params={"strict": "true"},
        json=checked.json()["export"],
        headers=account.bearer,
    )

    assert exported.status_code == 200
    assert "attachment" in exported.headers["content-disposition"]
    assert exported.json()["format"] == "flowloom.workflow"
    assert checked.status_code == 200, checked.text
    assert checked.json()["valid"] is True
    assert checked.json()["problems"] == []
    assert checked.json()["nodes"] == 3
    assert checked.json()["edges"] == 2
    assert imported.status_code == 201, imported.text
    assert imported.json()["name"] == "Sorter again"
    assert imported.json()["id"] != original["id"]
    assert imported.json()["definition"] == original["definition"]
    assert imported.json()["valid"] is True


async def test_a_bare_definition_imports_under_the_name_given(client: httpx.AsyncClient) -> None:
    account = await sign_up(client)

    unnamed = await client.post(
        "/api/v1/workflows/import/check",
        json={"document": example("hello_template")},
        headers=account.bearer,
    )
    named = await client.post(
        "/api/v1/workflows/import/check",
        json={"document": example("hello_template"), "name": "Hello"},
        headers=account.bearer,
    )

    assert unnamed.json()["valid"] is False
    assert [p["field"] for p in unnamed.json()["problems"]] == ["name"]
    assert named.json()["valid"] is True
    assert named.json()["export"]["name"] == "Hello"
    assert named.json()["export"]["definition"] == example("hello_template")


async def test_every_problem_of_a_file_is_listed_before_saving(client: httpx.AsyncClient) -> None:
    account = await sign_up(client)
    broken: dict[str, Any] = {
        "format": "flowloom.workflow",
        "format_version": 7,
        "name": "Broken",
        "definition": {
            "schema_version": 1,
            "nodes": [
                {"id": "a", "type": "text.value", "data": {"config": {"text": "x"}}},
                {"id": "b", "type": "no.such.type", "data": {"config": {}}},
            ],
            "edges": [
                {"id": "e1", "source": "a", "sourceHandle": "text", "target": "ghost",
                 "targetHandle": "value"},
            ],
        },
    }  # fmt: skip

    checked = await client.post(
        "/api/v1/workflows/import/check", json={"document": broken}, headers=account.bearer
    )
    strict = await client.post(
        "/api/v1/workflows/import",
        params={"strict": "true"},
        json={**broken, "format_version": 1},
        headers=account.bearer,
    )
    listed = await client.get("/api/v1/workflows", headers=account.bearer)

    assert checked.status_code == 200
    body = checked.json()
    assert body["valid"] is False
    assert body["export"] is None
    fields = [p["field"] for p in body["problems"] if p["field"]]
    nodes = [p["node_id"] for p in body["problems"] if p["node_id"]]
    assert "format_version" in fields
    assert "b" in nodes
    assert any("ghost" in p["message"] for p in body["problems"])
    assert strict.status_code == 422
    assert strict.headers["content-type"] == "application/problem+json"
    assert listed.json()["items"] == []


async def test_a_file_that_is_not_a_workflow_is_a_problem_not_a_crash(
    client: httpx.AsyncClient,
) -> None:
    account = await sign_up(client)

    odd = await client.post(
        "/api/v1/workflows/import/check",
        json={"document": {"definition": "nodes go here", "name": ""}},
        headers=account.bearer,
    )
    not_an_object = await client.post(
        "/api/v1/workflows/import/check", json={"document": [1, 2]}, headers=account.bearer
    )

    assert odd.status_code == 200
    assert {p["field"] for p in odd.json()["problems"]} >= {"name", "definition"}
    assert not_an_object.status_code == 422
    assert [e["field"] for e in not_an_object.json()["errors"]] == ["document"]


async def test_another_users_workflow_does_not_export(new_client: Any) -> None:
    async with new_client() as alice_client, new_client() as bob_client:
        alice = await sign_up(alice_client, "alice")
        bob = await sign_up(bob_client, "bob")
        theirs = await create_workflow(alice_client, alice, example("sort_numbers"))

        answer = await bob_client.get(
            f"/api/v1/workflows/{theirs['id']}/export", headers=bob.bearer
        )

    assert answer.status_code == 404
    assert answer.headers["content-type"] == "application/problem+json"
