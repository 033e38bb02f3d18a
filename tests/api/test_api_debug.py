"""Debug sessions over HTTP: pause at a breakpoint, step one node, continue to the end, stop,
read a session back; bad breakpoints and releasing an unpaused session refused."""

from __future__ import annotations

import httpx
from apikit import create_workflow, example, sign_up


async def test_breakpoint_step_and_continue_walk_the_run_to_its_end(
    client: httpx.AsyncClient,
) -> None:
    account = await sign_up(client)
    workflow = await create_workflow(client, account, example("hello_template"))

    started = await client.post(
        f"/api/v1/workflows/{workflow['id']}/debug-sessions",
        json={"breakpoints": ["greet"], "inputs": {"name": "Ada"}},
        headers=account.bearer,
    )
    assert started.status_code == 201, started.text
    session = started.json()
    assert (session["paused_node_id"], session["mode"], session["status"]) == (
        "greet",
        "continue",
        "active",
    )
    nodes = {n["node_id"]: n for n in session["run"]["nodes"]}
    assert nodes["start"]["status"] == "SUCCEEDED"
    assert nodes["greet"]["status"] == "WAITING"
    assert nodes["greet"]["wait"]["kind"] == "breakpoint"
    assert session["run"]["status"] == "WAITING"

    stepped = await client.post(
        f"/api/v1/debug-sessions/{session['id']}/step", headers=account.bearer
    )
    assert stepped.status_code == 200, stepped.text
    after_step = stepped.json()
    nodes = {n["node_id"]: n for n in after_step["run"]["nodes"]}
    assert nodes["greet"]["status"] == "SUCCEEDED"
    assert after_step["mode"] == "step"
    assert after_step["paused_node_id"] == "lines", "step pauses before the next node"

    finished = await client.post(
        f"/api/v1/debug-sessions/{session['id']}/continue", headers=account.bearer
    )
    assert finished.status_code == 200, finished.text
    done = finished.json()
    assert done["run"]["status"] == "COMPLETED"
    assert done["run"]["outputs"]["lines"]["text"].startswith("Hello, Ada!")
    assert (done["status"], done["paused_node_id"]) == ("finished", None)

    again = await client.post(
        f"/api/v1/debug-sessions/{session['id']}/continue", headers=account.bearer
    )
    assert again.status_code == 409
    assert "not paused" in again.json()["detail"]

    read = await client.get(f"/api/v1/debug-sessions/{session['id']}", headers=account.bearer)
    assert read.json()["breakpoints"] == ["greet"]
    listed = await client.get(
        "/api/v1/debug-sessions", params={"workflow_id": workflow["id"]}, headers=account.bearer
    )
    assert [item["id"] for item in listed.json()["items"]] == [session["id"]]


async def test_stop_cancels_the_paused_run(client: httpx.AsyncClient) -> None:
    account = await sign_up(client)
    workflow = await create_workflow(client, account, example("hello_template"))
    started = await client.post(
        f"/api/v1/workflows/{workflow['id']}/debug-sessions",
        json={"breakpoints": ["lines"]},
        headers=account.bearer,
    )
    session = started.json()
    assert session["paused_node_id"] == "lines"

    stopped = await client.post(
        f"/api/v1/debug-sessions/{session['id']}/stop", headers=account.bearer
    )

    assert stopped.status_code == 200, stopped.text
    body = stopped.json()
    assert body["status"] == "stopped"
    assert body["run"]["status"] == "CANCELLED"
    nodes = {n["node_id"]: n["status"] for n in body["run"]["nodes"]}
    assert nodes["lines"] == "CANCELLED"


async def test_a_breakpoint_on_an_unknown_node_is_refused_and_nothing_starts(
    client: httpx.AsyncClient,
) -> None:
    account = await sign_up(client)
    workflow = await create_workflow(client, account, example("hello_template"))
    refused = await client.post(
        f"/api/v1/workflows/{workflow['id']}/debug-sessions",
        json={"breakpoints": ["greet", "nowhere"]},
        headers=account.bearer,
    )
    assert refused.status_code == 422
    problem = refused.json()
    assert problem["problems"][0]["node_id"] == "nowhere"
    runs = await client.get(f"/api/v1/workflows/{workflow['id']}/runs", headers=account.bearer)
    assert runs.json()["items"] == []
    sessions = await client.get("/api/v1/debug-sessions", headers=account.bearer)
    assert sessions.json()["items"] == []
