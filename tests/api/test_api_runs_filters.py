"""The run history across workflows, filtered: by workflow, status, trigger kind and a time
range, a page at a time; every bad filter answers 422 naming it; another user's runs never."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from apikit import Account, create_workflow, example, sign_up
from greeting import GREETING


async def _run(client: httpx.AsyncClient, account: Account, workflow_id: str) -> str:
    started = await client.post(
        f"/api/v1/workflows/{workflow_id}/runs?wait=true", json={}, headers=account.bearer
    )
    assert started.status_code == 200, started.text
    return str(started.json()["id"])


async def _walk(
    client: httpx.AsyncClient, account: Account, **filters: Any
) -> tuple[list[str], int]:
    """Every run the filters let through, a page of two at a time; and how many pages."""
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params = {**filters, "limit": 2, **({"cursor": cursor} if cursor else {})}
        answer = await client.get("/api/v1/runs", params=params, headers=account.bearer)
        assert answer.status_code == 200, answer.text
        seen += [run["id"] for run in answer.json()["items"]]
        pages += 1
        cursor = answer.json()["next_cursor"]
        if cursor is None:
            return seen, pages


async def test_filters_combine_and_page_newest_first(client: httpx.AsyncClient) -> None:
    account = await sign_up(client)
    sorter = await create_workflow(client, account, example("sort_numbers"), name="sorter")
    greeter = await create_workflow(client, account, GREETING, name="greeter")
    hook = await client.post(
        f"/api/v1/workflows/{greeter['id']}/triggers",
        json={"kind": "webhook", "respond": "output"},
        headers=account.bearer,
    )
    assert hook.status_code == 201, hook.text
    manual = [await _run(client, account, sorter["id"]) for _ in range(3)]
    before_hooks = datetime.now(UTC)
    hooked = []
    for name in ("Ada", "Grace", "Edsger"):
        called = await client.post(
            hook.json()["url"],
            json={"name": name},
            headers={"X-Flowloom-Token": hook.json()["token"]},
        )
        assert called.status_code == 200, called.text
        hooked.append(called.json()["run_id"])
    greeted = await _run(client, account, greeter["id"])

    by_workflow, pages = await _walk(client, account, workflow_id=sorter["id"])
    by_trigger, _ = await _walk(client, account, trigger="webhook")
    by_both, _ = await _walk(client, account, trigger="manual", workflow_id=greeter["id"])
    since, _ = await _walk(client, account, since=before_hooks.isoformat())
    until, _ = await _walk(client, account, until=before_hooks.isoformat())
    failed, _ = await _walk(client, account, status="FAILED")
    completed, _ = await _walk(client, account, status="COMPLETED", trigger="webhook")

    assert by_workflow == manual[::-1]
    assert pages == 2
    assert by_trigger == hooked[::-1]
    assert by_both == [greeted]
    assert since == [greeted, *hooked[::-1]]
    assert until == manual[::-1]
    assert failed == []
    assert completed == hooked[::-1]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"status": "DONE"}, "status"),
        ({"status": "completed"}, "status"),
        ({"trigger": "carrier-pigeon"}, "trigger"),
        ({"since": "yesterday"}, "since"),
        ({"until": "2026-13-45T00:00:00"}, "until"),
        ({"since": "2026-02-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"}, "until"),
        ({"cursor": "wf_01jd4y9q6xf3k8r2m5t7v9w0ab"}, "cursor"),
        ({"limit": "0"}, "limit"),
        ({"limit": "101"}, "limit"),
        ({"workflow_id": "not-a-workflow"}, "workflow_id"),
    ],
)
async def test_a_bad_filter_is_a_422_naming_it(
    client: httpx.AsyncClient, params: dict[str, str], field: str
) -> None:
    account = await sign_up(client)

    answer = await client.get("/api/v1/runs", params=params, headers=account.bearer)

    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert field in [error["field"] for error in answer.json()["errors"]]


async def test_another_users_runs_are_never_listed_even_by_their_workflow(
    new_client: Any,
) -> None:
    async with new_client() as alice_client, new_client() as bob_client:
        alice = await sign_up(alice_client, "alice")
        bob = await sign_up(bob_client, "bob")
        theirs = await create_workflow(alice_client, alice, example("sort_numbers"))
        await _run(alice_client, alice, theirs["id"])

        filtered = await bob_client.get(
            "/api/v1/runs", params={"workflow_id": theirs["id"]}, headers=bob.bearer
        )
        everything = await bob_client.get("/api/v1/runs", headers=bob.bearer)

    assert filtered.status_code == 200
    assert filtered.json() == {"items": [], "next_cursor": None}
    assert everything.json() == {"items": [], "next_cursor": None}


async def test_a_time_without_a_zone_is_utc(client: httpx.AsyncClient) -> None:
    account = await sign_up(client)
    workflow = await create_workflow(client, account, example("sort_numbers"))
    run_id = await _run(client, account, workflow["id"])
    a_minute_ago = (datetime.now(UTC) - timedelta(minutes=1)).replace(tzinfo=None)

    answer = await client.get(
        "/api/v1/runs",
        params={"since": a_minute_ago.isoformat(), "until": "2999-01-01T00:00:00"},
        headers=account.bearer,
    )

    assert answer.status_code == 200, answer.text
    assert [run["id"] for run in answer.json()["items"]] == [run_id]


async def test_a_listed_run_is_the_run_its_own_page_shows(client: httpx.AsyncClient) -> None:
    account = await sign_up(client)
    greeter = await create_workflow(client, account, GREETING, name="greeter")
    finished = await _run(client, account, greeter["id"])
    started = await client.post(
        f"/api/v1/workflows/{greeter['id']}/runs",
        json={"inputs": {"name": "Ünïcode"}},
        headers=account.bearer,
    )
    assert started.status_code == 202, started.text

    listed = await client.get("/api/v1/runs", headers=account.bearer)
    assert listed.status_code == 200, listed.text
    items = listed.json()["items"]
    assert {item["id"] for item in items} == {finished, started.json()["id"]}
    for item in items:
        detail = await client.get(f"/api/v1/runs/{item['id']}", headers=account.bearer)
        assert detail.status_code == 200, detail.text
        assert set(detail.json()) - {"nodes", "usage"} == set(item)
        shown = {key: value for key, value in detail.json().items() if key in item}
        if item["id"] != finished:  # still going: compare what cannot have moved
            for moving in ("status", "started_at", "finished_at", "duration_ms", "outputs"):
                shown.pop(moving), item.pop(moving)
        assert item == shown
    done = next(item for item in items if item["id"] == finished)
    assert done["status"] == "COMPLETED"
    assert done["created_at"].endswith("Z")
    assert done["used_pinned"] is False
