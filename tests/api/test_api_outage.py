"""Every route while the database is away: 503 problem+json, never 500; runs finish after.

On PostgreSQL the app reaches the server through a TCP proxy that the test cuts (every
connection dropped, new ones refused) and restores; on SQLite another connection holds the
write lock past a short busy timeout (reads go on under WAL, writes cannot). Every route of the
app is called during the outage, with real ids where it takes them; then the run that was in
flight must reach COMPLETED on its own once the database is back, with no node left RUNNING.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from apikit import PASSWORD, client_for, create_workflow, delay_definition, make_settings, sign_up
from fastapi import FastAPI
from outagekit import Outage

from flowloom.api import create_app

_SKIPPED = re.compile(r"/events$")
"""Streams: they answer 200 at once and report through the stream."""


@pytest.fixture
async def app(outage: Outage, tmp_path: Path) -> AsyncIterator[FastAPI]:
    application = create_app(make_settings(tmp_path / "data"), db=outage.db)
    async with application.router.lifespan_context(application):
        yield application


def _routes(app: FastAPI, ids: dict[str, str]) -> list[tuple[str, str]]:
    """Every operation the app documents, its path filled in from ``ids`` (else a dummy id)."""
    found = []
    for template, operations in app.openapi()["paths"].items():
        if _SKIPPED.search(template):
            continue
        path = re.sub(r"\{(\w+)(:\w+)?\}", lambda m: ids.get(m.group(1), "x_0"), template)
        found.extend((method.upper(), path) for method in sorted(operations))
    found.append(("GET", "/metrics"))
    return found


async def _call(
    client: httpx.AsyncClient, method: str, path: str, headers: dict[str, str]
) -> httpx.Response:
    body: Any = {} if method in ("POST", "PUT", "PATCH") else None
    return await asyncio.wait_for(client.request(method, path, json=body, headers=headers), 30)


async def test_every_route_answers_503_problem_json_while_the_database_is_away_and_the_run_finishes(
    app: FastAPI, outage: Outage
) -> None:
    async with client_for(app) as client:
        account = await sign_up(client)
        workflow = await create_workflow(client, account, delay_definition(1.0))
        started = await client.post(
            f"/api/v1/workflows/{workflow['id']}/runs", json={}, headers=account.bearer
        )
        assert started.status_code == 202, started.text
        run_id = started.json()["id"]
        ids = {
            "workflow_id": workflow["id"],
            "run_id": run_id,
            "node_id": "wait",
            "version": "1",
            "user_id": account.user_id,
        }
        headers = {**account.bearer, "X-CSRF-Token": account.csrf}

        await asyncio.to_thread(outage.cut)
        statuses: dict[str, int] = {}
        for method, path in _routes(app, ids):
            response = await _call(client, method, path, headers)
            statuses[f"{method} {path}"] = response.status_code
            if response.status_code >= 500:
                assert response.status_code == 503, (method, path, response.text)
                assert response.headers["content-type"] == "application/problem+json"
                assert response.json()["status"] == 503
        health = await client.get("/healthz")
        # The run's timer (1 s) comes due while the database is away.
        await asyncio.sleep(1.2)

        unavailable = sorted(call for call, status in statuses.items() if status == 503)
        if outage.kind == "postgresql":
            assert health.status_code == 503
            # Everything that needs the database (all but the public catalogue) says so.
            assert len(unavailable) >= len(statuses) - 5, sorted(
                call for call, status in statuses.items() if status != 503
            )
        else:
            # Reads go on under WAL; what writes says it cannot.
            # (Most other writes in this sweep carry no valid body, and answer 422 first.)
            assert f"POST /api/v1/workflows/{workflow['id']}/runs" in unavailable
        created = await client.post(
            "/api/v1/workflows",
            json={"name": "during", "definition": delay_definition(1.0)},
            headers=account.bearer,
        )
        signed_in = await client.post(
            "/api/v1/auth/login", json={"email": account.email, "password": PASSWORD}
        )
        for response in (created, signed_in):
            assert response.status_code == 503, response.text
            assert response.headers["content-type"] == "application/problem+json"

        began = time.monotonic()
        await asyncio.to_thread(outage.restore)
        while True:
            run = (await client.get(f"/api/v1/runs/{run_id}", headers=account.bearer)).json()
            if run["status"] in ("COMPLETED", "FAILED", "CANCELLED"):
                break
            assert time.monotonic() - began < 10, f"run still {run['status']} 10 s after restore"
            await asyncio.sleep(0.05)
        recovery_s = time.monotonic() - began
        assert run["status"] == "COMPLETED", run
        assert all(node["status"] != "RUNNING" for node in run["nodes"]), run["nodes"]
        print(
            f"{outage.kind}: {len(unavailable)} of {len(statuses)} routes answered 503;"
            f" the run finished {recovery_s:.2f} s after the database came back; others:"
            f" {sorted((call, status) for call, status in statuses.items() if status != 503)}"
        )
        assert (await client.get("/healthz")).status_code == 200
