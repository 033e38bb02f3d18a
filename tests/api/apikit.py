"""What the API tests share: settings, clients, and the steps of signing up and in."""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from flowloom.settings import Settings
from flowloom.storage.database import Database

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "correct horse battery staple"


def make_settings(data_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "secret_key": secrets.token_urlsafe(32),
        "external_auth_issuer": "https://id.example.test",
        "external_auth_audience": "flowloom-tests",
        "external_auth_shared_key": "shared-key-for-tests-" + "x" * 32,
        "external_auth_provider": "testid",
        **overrides,
    }
    return Settings(**values)


@asynccontextmanager
async def client_for(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://flowloom.test") as client:
        yield client


def unique_email(name: str = "user") -> str:
    return f"{name}-{secrets.token_hex(4)}@example.com"


@dataclass
class Account:
    email: str
    user_id: str
    token: str
    csrf: str

    @property
    def bearer(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def sign_up(client: httpx.AsyncClient, name: str = "user") -> Account:
    """Register and sign in; the client keeps the session cookie."""
    email = unique_email(name)
    registered = await client.post(
        "/api/v1/auth/register", json={"email": email, "password": PASSWORD}
    )
    assert registered.status_code == 201, registered.text
    signed_in = await client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert signed_in.status_code == 200, signed_in.text
    body = signed_in.json()
    return Account(email, body["user"]["id"], body["access_token"], body["csrf_token"])


def example(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((ROOT / "examples" / f"{name}.json").read_text())
    return data


def approval_definition() -> dict[str, Any]:
    """value -> approval -> (approved: upper-cased text; rejected: nothing)."""
    return {
        "schema_version": 1,
        "nodes": [
            {"id": "value", "type": "text.value", "data": {"config": {"text": "ship it"}}},
            {"id": "ask", "type": "human.approval", "data": {"config": {"prompt": "Ship?"}}},
        ],
        "edges": [
            {
                "id": "e1",
                "source": "value",
                "sourceHandle": "text",
                "target": "ask",
                "targetHandle": "value",
            }
        ],
    }


def delay_definition(seconds: float = 30) -> dict[str, Any]:
    return {
        "schema_version": 1,
        "nodes": [
            {"id": "value", "type": "text.value", "data": {"config": {"text": "x"}}},
            {"id": "wait", "type": "flow.delay", "data": {"config": {"seconds": seconds}}},
        ],
        "edges": [
            {
                "id": "e1",
                "source": "value",
                "sourceHandle": "text",
                "target": "wait",
                "targetHandle": "value",
            }
        ],
    }


async def create_workflow(
    client: httpx.AsyncClient,
    account: Account,
    definition: dict[str, Any],
    name: str = "flow",
    **params: Any,
) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/workflows",
        json={"name": name, "definition": definition},
        headers=account.bearer,
        params=params,
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def count_transactions(db: Database, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """From now on, each transaction ``db`` opens appends ``"read"`` or ``"write"`` to the
    list returned (in the order they open)."""
    opened: list[str] = []

    def counted(kind: str, opens: Callable[[], Any]) -> Callable[[], Any]:
        @asynccontextmanager
        async def opening() -> AsyncIterator[AsyncSession]:
            opened.append(kind)
            async with opens() as session:
                yield session

        return opening

    monkeypatch.setattr(db, "read", counted("read", db.read))
    monkeypatch.setattr(db, "write", counted("write", db.write))
    return opened
