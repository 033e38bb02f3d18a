"""Runs over HTTP: wait=true answers with outputs, 202 then SSE until run.completed, history
pages, node-by-node reads, cancel, approvals, idempotency, input limits."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
from apikit import (
    approval_definition,
    create_workflow,
    delay_definition,
    example,
    sign_up,
)


async def test_run_with_wait_answers_the_finished_run_with_outputs(
    client: httpx.AsyncClient,
) -> None:
    account = await sign_up(client)
    workflow = await create_workflow(client, account, example("hello_template"), name="Hello")

    response = await client.post(
        f"/api/v1/workflows/{workflow['id']}/runs",
        params={"wait": "true"},
        json={"inputs": {"name": "Ada"}},
        headers=account.bearer,
    )

    assert response.status_code == 200, response.text
    run = response.json()
    assert run["status"] == "COMPLETED"
    assert run["outputs"]["lines"]["text"].startswith("Hello, Ada! Today's 3 topics:\ngraphs")
    assert run["workflow_version"] == 1
    nodes = {n["node_id"]: n for n in run["nodes"]}
    assert set(nodes) == {"start", "greet", "lines"}
    greet = nodes["greet"]
    assert greet["type"] == "text.template"
    assert greet["status"] == "SUCCEEDED"
    assert greet["attempt"] == 1
    assert greet["inputs"] == {"name": "Ada", "topics": ["graphs", "nodes", "edges"]}
    assert greet["outputs"]["text"] == "Hello, Ada! Today's 3 topics:"
    assert greet["started_at"] is not None
    assert greet["finished_at"] is not None
    assert greet["duration_ms"] >= 0
    assert response.headers["location"] == f"/api/v1/runs/{run['id']}"


def _parse_sse(text: str) -> list[tuple[str, dict[str, Any]]]:
    events = []
    for block in text.strip().split("\n\n"):
        kind, data = "message", ""
        for line in block.splitlines():
            if line.startswith("event: "):
                kind = line.removeprefix("event: ")
            elif line.startswith("data: "):
                data = line.removeprefix("data: ")
        if data:
            events.append((kind, json.loads(data)))
    return events


async def test_202_then_the_event_stream_shows_nodes_until_the_run_completes(
    client: httpx.AsyncClient,
) -> None:
    account = await sign_up(client)
    # A short inline delay keeps the run going while the stream connects.
    definition = delay_definition(seconds=0.3)
    workflow = await create_workflow(client, account, definition)

    started = await client.post(
        f"/api/v1/workflows/{workflow['id']}/runs", json={}, headers=account.bearer
    )
    assert started.status_code == 202
    run_id = started.json()["id"]
    assert started.json()["status"] in ("PENDING", "RUNNING")

    async with client.stream(
        "GET", f"/api/v1/runs/{run_id}/events", headers=account.bearer
    ) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        body = ""
        async for chunk in stream.aiter_text():
            body += chunk
    events = _parse_sse(body)

    kinds = [kind for kind, _ in events]
    assert kinds[0] == "snapshot"
    assert events[0][1]["id"] == run_id
    assert kinds[-1] == "run.completed"
    # Every node that had not finished at the snapshot shows up as it succeeds.
    finished_at_snapshot = {
        n["node_id"] for n in events[0][1]["nodes"] if n["status"] == "SUCCEEDED"
    }
    succeeded = {data["node_id"] for kind, data in events if kind == "node.succeeded"}
    assert succeeded | finished_at_snapshot == {"value", "wait"}
    assert "wait" in succeeded


async def test_the_event_stream_of_a_finished_run_is_its_snapshot(
    client: httpx.AsyncClient,
) -> None:
    account = await sign_up(client)
    workflow = await create_workflow(client, account, example("sort_numbers"))
    done = await client.post(
        f"/api/v1/workflows/{workflow['id']}/runs?wait=true", json={}, headers=account.bearer
    )

    response = await client.get(f"/api/v1/runs/{done.json()['id']}/events", headers=account.bearer)

    events = _parse_sse(response.text)
    assert [kind for kind, _ in events] == ["snapshot"]
    assert events[0][1]["status"] == "COMPLETED"


async def test_history_pages_newest_first_across_workflows(client: httpx.AsyncClient) -> None:
    account = await sign_up(client)
    first = await create_workflow(client, account, example("sort_numbers"), name="one")
    second = await create_workflow(client, account, example("hello_template"), name="two")
    started = []
    for i in range(7):
        workflow = first if i % 2 else second
        response = await client.post(
            f"/api/v1/workflows/{workflow['id']}/runs?wait=true", json={}, headers=account.bearer
        )
        started.append(response.json()["id"])

    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get("/api/v1/runs", params=params, headers=account.bearer)).json()
        seen += [run["id"] for run in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    of_first = await client.get(
        f"/api/v1/workflows/{first['id']}/runs", params={"limit": 100}, headers=account.bearer
    )
    completed = await client.get(
        "/api/v1/runs", params={"status": "COMPLETED", "limit": 100}, headers=account.bearer
    )

    assert seen == list(reversed(started))
    assert pages == 3
    assert [r["id"] for r in of_first.json()["items"]] == [started[i] for i in (5, 3, 1)]
    assert len(completed.json()["items"]) == 7


async def test_cancel_stops_a_waiting_run(client: httpx.AsyncClient) -> None:
    account = await sign_up(client)
    workflow = await create_workflow(client, account, delay_definition(seconds=3600))
    started = await client.post(
        f"/api/v1/workflows/{workflow['id']}/runs?wait=true", json={}, headers=account.bearer
    )
    assert started.json()["status"] == "WAITING"
    run_id = started.json()["id"]

    cancelled = await client.post(f"/api/v1/runs/{run_id}/cancel", headers=account.bearer)
    again = await client.post(f"/api/v1/runs/{run_id}/cancel", headers=account.bearer)

    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "CANCELLED"
    assert {n["node_id"]: n["status"] for n in cancelled.json()["nodes"]}["wait"] == "CANCELLED"
    assert again.status_code == 200


async def test_cancelling_a_completed_run_is_a_conflict(client: httpx.AsyncClient) -> None:
    account = await sign_up(client)
    workflow = await create_workflow(client, account, example("sort_numbers"))
    done = await client.post(
        f"/api/v1/workflows/{workflow['id']}/runs?wait=true", json={}, headers=account.bearer
    )

    response = await client.post(f"/api/v1/runs/{done.json()['id']}/cancel", headers=account.bearer)

    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"


async def test_an_approval_waits_for_its_answer(client: httpx.AsyncClient) -> None:
    account = await sign_up(client)
    workflow = await create_workflow(client, account, approval_definition())
    waiting = await client.post(
        f"/api/v1/workflows/{workflow['id']}/runs?wait=true", json={}, headers=account.bearer
    )
    run_id = waiting.json()["id"]
    ask = {n["node_id"]: n for n in waiting.json()["nodes"]}["ask"]

    wrong_node = await client.post(
        f"/api/v1/runs/{run_id}/nodes/value/answer",
        json={"approved": True},
        headers=account.bearer,
    )
    answered = await client.post(
        f"/api/v1/runs/{run_id}/nodes/ask/answer?wait=true",
        json={"approved": True, "comment": "looks good"},
        headers=account.bearer,
    )

    assert waiting.json()["status"] == "WAITING"
    assert ask["status"] == "WAITING"
    assert ask["wait"]["kind"] == "approval"
    assert ask["wait"]["payload"]["value"] == "ship it"
    assert wrong_node.status_code == 409
    assert answered.status_code == 200
    assert answered.json()["status"] == "COMPLETED"
    approved = answered.json()["outputs"]["ask"]["approved"]
    assert approved == {"approved": True, "comment": "looks good", "value": "ship it"}


async def test_an_idempotency_key_answers_with_the_first_run(client: httpx.AsyncClient) -> None:
    account = await sign_up(client)
    workflow = await create_workflow(client, account, example("sort_numbers"))
    url = f"/api/v1/workflows/{workflow['id']}/runs?wait=true"

    first = await client.post(url, json={"idempotency_key": "order-17"}, headers=account.bearer)
    second = await client.post(url, json={"idempotency_key": "order-17"}, headers=account.bearer)

    assert first.json()["id"] == second.json()["id"]
    history = await client.get("/api/v1/runs", headers=account.bearer)
    assert len(history.json()["items"]) == 1


async def test_node_scope_runs_one_node(client: httpx.AsyncClient) -> None:
    account = await sign_up(client)
    workflow = await create_workflow(client, account, example("hello_template"))
    url = f"/api/v1/workflows/{workflow['id']}/runs?wait=true"
    await client.post(url, json={}, headers=account.bearer)

    one = await client.post(url, json={"scope": "NODE", "node_id": "greet"}, headers=account.bearer)
    no_target = await client.post(url, json={"scope": "NODE"}, headers=account.bearer)

    assert one.status_code == 200, one.text
    assert [n["node_id"] for n in one.json()["nodes"]] == ["greet"]
    assert one.json()["scope"] == "NODE"
    assert no_target.status_code == 422


async def test_oversized_inputs_are_refused_and_nothing_runs(client: httpx.AsyncClient) -> None:
    account = await sign_up(client)
    workflow = await create_workflow(client, account, example("hello_template"))

    response = await client.post(
        f"/api/v1/workflows/{workflow['id']}/runs",
        json={"inputs": {"name": "x" * 300_000}},
        headers=account.bearer,
    )
    history = await client.get("/api/v1/runs", headers=account.bearer)

    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "inputs"
    assert history.json()["items"] == []


async def test_runs_started_with_a_key_record_it(client: httpx.AsyncClient) -> None:
    account = await sign_up(client)
    key = await client.post(
        "/api/v1/api-keys",
        json={"name": "runner", "scopes": ["runs:execute", "workflows:read"]},
        headers=account.bearer,
    )
    workflow = await create_workflow(client, account, example("sort_numbers"))
    auth = {"Authorization": f"Bearer {key.json()['key']}"}
    client.cookies.clear()

    run = await client.post(
        f"/api/v1/workflows/{workflow['id']}/runs?wait=true", json={}, headers=auth
    )

    assert run.status_code == 200
    assert run.json()["trigger_kind"] == "api"
    listed = await client.get("/api/v1/api-keys", headers=account.bearer)
    assert listed.json()["items"][0]["last_used_at"] is not None


async def test_many_runs_at_once_all_complete(client: httpx.AsyncClient) -> None:
    account = await sign_up(client)
    workflow = await create_workflow(client, account, example("sort_numbers"))

    responses = await asyncio.gather(
        *(
            client.post(
                f"/api/v1/workflows/{workflow['id']}/runs?wait=true",
                json={},
                headers=account.bearer,
            )
            for _ in range(20)
        )
    )

    assert {r.json()["status"] for r in responses} == {"COMPLETED"}
