"""Triggers over HTTP: create webhooks and schedules, read, list, switch off and on, replace a
token, delete; 422 naming the field for a bad cron or time zone; owner scoping and key scopes;
and the server's own schedule loop firing a due schedule."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from apikit import Account, create_workflow, sign_up
from fastapi import FastAPI
from greeting import GREETING
from sqlalchemy import update

from flowloom.api.state import AppState
from flowloom.storage.tables import WorkflowTrigger


async def setup(client: httpx.AsyncClient, name: str = "user") -> tuple[Account, str]:
    account = await sign_up(client, name)
    workflow = await create_workflow(client, account, GREETING, name="greeting")
    return account, str(workflow["id"])


async def add(
    client: httpx.AsyncClient, account: Account, workflow_id: str, **body: Any
) -> httpx.Response:
    return await client.post(
        f"/api/v1/workflows/{workflow_id}/triggers", json=body, headers=account.bearer
    )


def field_errors(response: httpx.Response) -> list[str]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    return [error["field"] for error in response.json()["errors"]]


async def test_a_webhook_is_made_with_its_token_shown_once(client: httpx.AsyncClient) -> None:
    account, workflow_id = await setup(client)
    made = await add(client, account, workflow_id, kind="webhook", respond="output")
    assert made.status_code == 201, made.text
    hook = made.json()
    assert (hook["kind"], hook["enabled"]) == ("webhook", True)
    assert hook["token"].startswith("flh_")
    assert hook["url"].startswith("/api/v1/hooks/")
    assert (hook["respond"], hook["timeout_s"]) == ("output", 30.0)
    assert (hook["cron"], hook["timezone"]) == (None, None)
    assert made.headers["location"] == f"/api/v1/triggers/{hook['id']}"

    read = await client.get(f"/api/v1/triggers/{hook['id']}", headers=account.bearer)
    assert read.status_code == 200
    assert "token" not in read.json()
    assert hook["token"] not in read.text
    listed = await client.get(f"/api/v1/workflows/{workflow_id}/triggers", headers=account.bearer)
    assert [t["id"] for t in listed.json()["items"]] == [hook["id"]]
    assert hook["token"] not in listed.text

    audit = await client.get("/api/v1/audit-log", headers=account.bearer)
    created = [e for e in audit.json()["items"] if e["action"] == "trigger.create"]
    assert [e["object_id"] for e in created] == [hook["id"]]
    assert hook["token"] not in audit.text


async def test_a_schedule_gets_its_next_fire_time_in_its_time_zone(
    client: httpx.AsyncClient,
) -> None:
    account, workflow_id = await setup(client)
    made = await add(
        client,
        account,
        workflow_id,
        kind="schedule",
        cron="0 9 * * *",
        timezone="Europe/Paris",
        inputs={"name": "morning"},
    )
    assert made.status_code == 201, made.text
    schedule = made.json()
    assert (schedule["token"], schedule["url"]) == (None, None)
    assert schedule["inputs"] == {"name": "morning"}
    fire = datetime.fromisoformat(schedule["next_fire_at"])
    assert fire > datetime.now(UTC)
    assert fire - datetime.now(UTC) <= timedelta(days=1)
    assert fire.astimezone(UTC).hour in (7, 8)  # nine in Paris, summer or winter
    assert (fire.minute, fire.second) == (0, 0)


async def test_bad_schedules_are_422_naming_the_field(client: httpx.AsyncClient) -> None:
    account, workflow_id = await setup(client)
    bad_cron = await add(client, account, workflow_id, kind="schedule", cron="61 * * * *")
    assert field_errors(bad_cron) == ["cron"]
    assert "61 * * * *" in bad_cron.json()["detail"]
    assert field_errors(await add(client, account, workflow_id, kind="schedule", cron="* * *")) == [
        "cron"
    ]
    assert field_errors(await add(client, account, workflow_id, kind="schedule")) == ["cron"]
    unknown_zone = await add(
        client, account, workflow_id, kind="schedule", cron="* * * * *", timezone="Mars/Base"
    )
    assert field_errors(unknown_zone) == ["timezone"]
    assert "Mars/Base" in unknown_zone.json()["detail"]
    assert field_errors(
        await add(client, account, workflow_id, kind="webhook", cron="* * * * *")
    ) == ["cron"]
    assert field_errors(
        await add(client, account, workflow_id, kind="schedule", cron="* * * * *", respond="run")
    ) == ["respond"]
    assert field_errors(await add(client, account, workflow_id, kind="email")) == ["kind"]
    assert field_errors(
        await add(client, account, workflow_id, kind="webhook", respond="later")
    ) == ["respond"]
    listed = await client.get(f"/api/v1/workflows/{workflow_id}/triggers", headers=account.bearer)
    assert listed.json()["items"] == []


async def test_switching_a_schedule_off_and_on_again(client: httpx.AsyncClient) -> None:
    account, workflow_id = await setup(client)
    made = (await add(client, account, workflow_id, kind="schedule", cron="*/10 * * * *")).json()
    url = f"/api/v1/triggers/{made['id']}"

    off = await client.patch(url, json={"enabled": False}, headers=account.bearer)
    assert off.status_code == 200, off.text
    assert off.json()["enabled"] is False
    assert off.json()["next_fire_at"] is None

    on = await client.patch(url, json={"enabled": True}, headers=account.bearer)
    assert on.json()["enabled"] is True
    assert datetime.fromisoformat(on.json()["next_fire_at"]) > datetime.now(UTC)

    moved = await client.patch(
        url, json={"cron": "0 12 * * *", "timezone": "Asia/Tokyo"}, headers=account.bearer
    )
    assert moved.status_code == 200, moved.text
    assert (moved.json()["cron"], moved.json()["timezone"]) == ("0 12 * * *", "Asia/Tokyo")
    assert datetime.fromisoformat(moved.json()["next_fire_at"]).astimezone(UTC).hour == 3

    bad = await client.patch(url, json={"timezone": "Nowhere/Land"}, headers=account.bearer)
    assert field_errors(bad) == ["timezone"]
    webhook_only = await client.patch(url, json={"respond": "output"}, headers=account.bearer)
    assert field_errors(webhook_only) == ["respond"]
    still = await client.get(url, headers=account.bearer)
    assert still.json()["timezone"] == "Asia/Tokyo"


async def test_a_webhooks_token_can_be_replaced_and_the_trigger_deleted(
    client: httpx.AsyncClient,
) -> None:
    account, workflow_id = await setup(client)
    hook = (await add(client, account, workflow_id, kind="webhook")).json()
    replaced = await client.post(f"/api/v1/triggers/{hook['id']}/token", headers=account.bearer)
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["token"].startswith("flh_")
    assert replaced.json()["token"] != hook["token"]

    switched = await client.patch(
        f"/api/v1/triggers/{hook['id']}", json={"respond": "output"}, headers=account.bearer
    )
    assert switched.json()["respond"] == "output"
    assert field_errors(
        await client.patch(
            f"/api/v1/triggers/{hook['id']}", json={"cron": "* * * * *"}, headers=account.bearer
        )
    ) == ["cron"]

    gone = await client.delete(f"/api/v1/triggers/{hook['id']}", headers=account.bearer)
    assert gone.status_code == 204
    again = await client.get(f"/api/v1/triggers/{hook['id']}", headers=account.bearer)
    assert again.status_code == 404


async def test_another_users_triggers_and_workflows_answer_404(
    client: httpx.AsyncClient,
) -> None:
    alice, workflow_id = await setup(client, "alice")
    hook = (await add(client, alice, workflow_id, kind="webhook")).json()
    bob, _ = await setup(client, "bob")
    assert (await add(client, bob, workflow_id, kind="webhook")).status_code == 404
    listed = await client.get(f"/api/v1/workflows/{workflow_id}/triggers", headers=bob.bearer)
    assert listed.status_code == 404
    for method in ("GET", "PATCH", "DELETE"):
        response = await client.request(
            method, f"/api/v1/triggers/{hook['id']}", json={"enabled": False}, headers=bob.bearer
        )
        assert response.status_code == 404, (method, response.text)
    still = await client.get(f"/api/v1/triggers/{hook['id']}", headers=alice.bearer)
    assert still.json()["enabled"] is True


async def test_api_key_scopes_decide_who_reads_and_who_writes(
    client: httpx.AsyncClient,
) -> None:
    account, workflow_id = await setup(client)
    reader = await client.post(
        "/api/v1/api-keys",
        json={"name": "reader", "scopes": ["workflows:read"]},
        headers=account.bearer,
    )
    headers = {"Authorization": f"Bearer {reader.json()['key']}"}
    refused = await client.post(
        f"/api/v1/workflows/{workflow_id}/triggers", json={"kind": "webhook"}, headers=headers
    )
    assert refused.status_code == 403
    listed = await client.get(f"/api/v1/workflows/{workflow_id}/triggers", headers=headers)
    assert listed.status_code == 200


async def test_deleting_the_workflow_takes_its_triggers_out_of_reach(
    client: httpx.AsyncClient,
) -> None:
    account, workflow_id = await setup(client)
    hook = (await add(client, account, workflow_id, kind="webhook")).json()
    deleted = await client.delete(f"/api/v1/workflows/{workflow_id}", headers=account.bearer)
    assert deleted.status_code in (200, 204)
    read = await client.get(f"/api/v1/triggers/{hook['id']}", headers=account.bearer)
    assert read.status_code == 404
    called = await client.post(hook["url"], headers={"X-Flowloom-Token": hook["token"]})
    assert called.status_code == 404


async def test_the_server_fires_a_due_schedule_by_itself(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    account, workflow_id = await setup(client)
    made = await add(
        client,
        account,
        workflow_id,
        kind="schedule",
        cron="0 0 1 1 *",
        inputs={"name": "new year"},
    )
    trigger_id = made.json()["id"]
    # Pretend its fire time came a moment ago, rather than waiting for New Year.
    state: AppState = app.state.flowloom
    async with state.db.write() as session:
        await session.execute(
            update(WorkflowTrigger)
            .where(WorkflowTrigger.id == trigger_id)
            .values(next_fire_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    runs: list[dict[str, Any]] = []
    async with asyncio.timeout(15):
        while not runs:
            await asyncio.sleep(0.1)
            page = await client.get(f"/api/v1/workflows/{workflow_id}/runs", headers=account.bearer)
            runs = page.json()["items"]
    (run,) = runs
    assert run["trigger_kind"] == "schedule"
    assert run["inputs"] == {"name": "new year"}
    after = await client.get(f"/api/v1/triggers/{trigger_id}", headers=account.bearer)
    assert after.json()["last_fired_at"] is not None
    assert datetime.fromisoformat(after.json()["next_fire_at"]).month == 1
