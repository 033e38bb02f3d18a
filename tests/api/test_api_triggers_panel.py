"""What the triggers panel reads: a schedule in words with its next five fire times (also
before it is saved), the time zones to pick from, and a webhook's last calls; bad input 422
naming the field, another user's trigger 404."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from apikit import Account, create_workflow, sign_up
from fastapi import FastAPI
from greeting import GREETING
from sqlalchemy import update

from flowloom.api.state import AppState
from flowloom.storage.tables import WorkflowTrigger


async def _workflow(client: httpx.AsyncClient, name: str = "user") -> tuple[Account, str]:
    account = await sign_up(client, name)
    workflow = await create_workflow(client, account, GREETING, name="greeting")
    return account, str(workflow["id"])


def _times(values: list[str]) -> list[datetime]:
    return [datetime.fromisoformat(v.replace("Z", "+00:00")) for v in values]


async def test_a_schedule_reads_in_words_with_its_next_five_fire_times(
    client: httpx.AsyncClient,
) -> None:
    account, workflow_id = await _workflow(client)

    made = await client.post(
        f"/api/v1/workflows/{workflow_id}/triggers",
        json={"kind": "schedule", "cron": "30 9 * * 1-5", "timezone": "Europe/Paris"},
        headers=account.bearer,
    )
    switched_off = await client.patch(
        f"/api/v1/triggers/{made.json()['id']}", json={"enabled": False}, headers=account.bearer
    )

    assert made.status_code == 201, made.text
    schedule = made.json()
    assert schedule["description"] == "At 09:30, on Monday through Friday"
    upcoming = _times(schedule["upcoming"])
    assert len(upcoming) == 5
    assert upcoming == sorted(upcoming)
    assert upcoming[0] == _times([schedule["next_fire_at"]])[0]
    for fire in upcoming:
        local = fire.astimezone(ZoneInfo("Europe/Paris"))
        assert (local.hour, local.minute) == (9, 30)
        assert local.weekday() < 5
    assert switched_off.json()["upcoming"] == []
    assert switched_off.json()["description"] == "At 09:30, on Monday through Friday"


async def test_a_preview_answers_before_saving_and_names_what_is_wrong(
    client: httpx.AsyncClient,
) -> None:
    account = await sign_up(client)

    preview = await client.get(
        "/api/v1/schedule-preview",
        params={"cron": "0 */6 * * *", "timezone": "Asia/Tokyo"},
        headers=account.bearer,
    )
    bad_cron = await client.get(
        "/api/v1/schedule-preview", params={"cron": "every day"}, headers=account.bearer
    )
    bad_zone = await client.get(
        "/api/v1/schedule-preview",
        params={"cron": "0 9 * * *", "timezone": "Mars/Olympus"},
        headers=account.bearer,
    )
    never = await client.get(
        "/api/v1/schedule-preview", params={"cron": "0 0 30 2 *"}, headers=account.bearer
    )

    assert preview.status_code == 200, preview.text
    assert preview.json()["description"] == "Every 6 hours, on the hour"
    hours = [t.astimezone(ZoneInfo("Asia/Tokyo")).hour for t in _times(preview.json()["upcoming"])]
    assert len(hours) == 5
    assert all(hour % 6 == 0 for hour in hours)
    for answer, field in ((bad_cron, "cron"), (bad_zone, "timezone"), (never, "cron")):
        assert answer.status_code == 422, answer.text
        assert answer.headers["content-type"] == "application/problem+json"
        assert [e["field"] for e in answer.json()["errors"]] == [field]


async def test_the_time_zones_are_iana_names(client: httpx.AsyncClient) -> None:
    anonymous = await client.get("/api/v1/timezones")
    account = await sign_up(client)

    answer = await client.get("/api/v1/timezones", headers=account.bearer)

    zones = answer.json()["items"]
    assert {"UTC", "Europe/Paris", "America/New_York", "Asia/Tokyo"} <= set(zones)
    assert zones == sorted(zones)
    assert anonymous.status_code == 401


async def test_a_webhooks_last_calls_are_the_runs_it_started(
    client: httpx.AsyncClient,
) -> None:
    account, workflow_id = await _workflow(client)
    hook = (
        await client.post(
            f"/api/v1/workflows/{workflow_id}/triggers",
            json={"kind": "webhook", "respond": "output"},
            headers=account.bearer,
        )
    ).json()
    other = (
        await client.post(
            f"/api/v1/workflows/{workflow_id}/triggers",
            json={"kind": "webhook"},
            headers=account.bearer,
        )
    ).json()
    called = []
    for name in ("Ada", "Grace", "Edsger"):
        answer = await client.post(
            hook["url"], json={"name": name}, headers={"X-Flowloom-Token": hook["token"]}
        )
        called.append(answer.json()["run_id"])
    by_hand = await client.post(
        f"/api/v1/workflows/{workflow_id}/runs?wait=true",
        json={"inputs": {"name": "Barbara"}},
        headers=account.bearer,
    )
    assert by_hand.status_code == 200

    calls = await client.get(
        f"/api/v1/triggers/{hook['id']}/calls", params={"limit": 2}, headers=account.bearer
    )
    others = await client.get(f"/api/v1/triggers/{other['id']}/calls", headers=account.bearer)

    assert calls.status_code == 200, calls.text
    assert [run["id"] for run in calls.json()["items"]] == called[::-1][:2]
    assert {run["status"] for run in calls.json()["items"]} == {"COMPLETED"}
    assert others.json()["items"] == []


@pytest.mark.parametrize("limit", ["0", "51", "many"])
async def test_a_bad_limit_of_calls_is_422(client: httpx.AsyncClient, limit: str) -> None:
    account, workflow_id = await _workflow(client)
    hook = await client.post(
        f"/api/v1/workflows/{workflow_id}/triggers",
        json={"kind": "webhook"},
        headers=account.bearer,
    )

    answer = await client.get(
        f"/api/v1/triggers/{hook.json()['id']}/calls",
        params={"limit": limit},
        headers=account.bearer,
    )

    assert answer.status_code == 422
    assert [e["field"] for e in answer.json()["errors"]] == ["limit"]


async def test_another_users_trigger_calls_are_not_found(new_client: Any) -> None:
    async with new_client() as alice_client, new_client() as bob_client:
        alice, workflow_id = await _workflow(alice_client, "alice")
        bob = await sign_up(bob_client, "bob")
        hook = await alice_client.post(
            f"/api/v1/workflows/{workflow_id}/triggers",
            json={"kind": "webhook"},
            headers=alice.bearer,
        )

        answer = await bob_client.get(
            f"/api/v1/triggers/{hook.json()['id']}/calls", headers=bob.bearer
        )

    assert answer.status_code == 404
    assert answer.headers["content-type"] == "application/problem+json"


async def test_a_test_call_starts_the_webhooks_run_and_is_listed_as_a_call(
    client: httpx.AsyncClient,
) -> None:
    account, workflow_id = await _workflow(client)
    hook = (
        await client.post(
            f"/api/v1/workflows/{workflow_id}/triggers",
            json={"kind": "webhook"},
            headers=account.bearer,
        )
    ).json()

    started = await client.post(
        f"/api/v1/triggers/{hook['id']}/test",
        json={"inputs": {"name": "Ada"}},
        headers=account.bearer,
    )
    run_id = started.json()["run_id"]
    finished = await client.get(f"/api/v1/runs/{run_id}", headers=account.bearer)
    for _ in range(100):
        if finished.json()["status"] == "COMPLETED":
            break
        await asyncio.sleep(0.05)
        finished = await client.get(f"/api/v1/runs/{run_id}", headers=account.bearer)
    calls = await client.get(f"/api/v1/triggers/{hook['id']}/calls", headers=account.bearer)
    await client.patch(
        f"/api/v1/triggers/{hook['id']}", json={"enabled": False}, headers=account.bearer
    )
    while_off = await client.post(
        f"/api/v1/triggers/{hook['id']}/test", json={}, headers=account.bearer
    )

    assert started.status_code == 202, started.text
    assert finished.json()["status"] == "COMPLETED"
    assert finished.json()["trigger_kind"] == "webhook"
    assert finished.json()["outputs"]["greet"]["text"] == "hello Ada"
    assert [run["id"] for run in calls.json()["items"]] == [run_id]
    assert while_off.status_code == 409
    assert while_off.headers["content-type"] == "application/problem+json"


async def test_refused_calls_and_missed_fires_are_the_triggers_events(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    account, workflow_id = await _workflow(client)
    hook = (
        await client.post(
            f"/api/v1/workflows/{workflow_id}/triggers",
            json={"kind": "webhook"},
            headers=account.bearer,
        )
    ).json()
    schedule = (
        await client.post(
            f"/api/v1/workflows/{workflow_id}/triggers",
            json={"kind": "schedule", "cron": "* * * * *"},
            headers=account.bearer,
        )
    ).json()
    wrong = await client.post(hook["url"], json={}, headers={"X-Flowloom-Token": "not it"})
    # The server was "down" for an hour: the fire times since are missed, not replayed.
    state: AppState = app.state.flowloom
    async with state.db.write() as session:
        await session.execute(
            update(WorkflowTrigger)
            .where(WorkflowTrigger.id == schedule["id"])
            .values(next_fire_at=datetime.now(UTC) - timedelta(hours=1))
        )
    missed: list[dict[str, Any]] = []
    async with asyncio.timeout(15):
        while not missed:
            await asyncio.sleep(0.1)
            answer = await client.get(
                f"/api/v1/triggers/{schedule['id']}/events", headers=account.bearer
            )
            missed = answer.json()["items"]
    refused: list[dict[str, Any]] = []
    async with asyncio.timeout(5):
        while not refused:
            answer = await client.get(
                f"/api/v1/triggers/{hook['id']}/events", headers=account.bearer
            )
            refused = answer.json()["items"]
            await asyncio.sleep(0.05)

    assert wrong.status_code == 404
    (event,) = refused
    assert event["kind"] == "refused"
    assert event["reason"] == "wrong token"
    (fires,) = missed
    assert fires["kind"] == "missed"
    # The stored fire time an hour ago, the 60 minutes since, and one more when a minute turns
    # between the update above and the schedule loop's look (it may come seconds later).
    assert 60 <= fires["missed"] <= 62
    assert fires["first_missed_at"] < fires["last_missed_at"]
