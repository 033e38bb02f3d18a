"""A workflow with a webhook, made through the API, for the webhook tests."""

from __future__ import annotations

from typing import Any

import httpx
from apikit import Account, create_workflow, sign_up
from greeting import GREETING


async def make_hook(
    client: httpx.AsyncClient, definition: dict[str, Any] = GREETING, **options: Any
) -> tuple[Account, str, dict[str, Any]]:
    account = await sign_up(client)
    workflow = await create_workflow(client, account, definition, name="hooked")
    made = await client.post(
        f"/api/v1/workflows/{workflow['id']}/triggers",
        json={"kind": "webhook", **options},
        headers=account.bearer,
    )
    assert made.status_code == 201, made.text
    return account, str(workflow["id"]), made.json()
