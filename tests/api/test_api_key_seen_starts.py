"""A run's start with an API key read valid lately (``api_keys.SeenKeys``): on PostgreSQL the key
is not read again, and the statement that writes the run checks it instead (``KeyGuard``), so a
key revoked, switched off, expired, replaced past its grace, stripped of the scope, or whose
owner was disabled, starts nothing from the next request on, and answers as an unread key
would (401 or 403, before any other answer). SQLite reads the key every time."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
from apikit import Account, create_workflow, example, sign_up
from sqlalchemy import update

from flowloom.storage.database import Database
from flowloom.storage.repos import api_keys
from flowloom.storage.tables import ApiKey, User
from flowloom.storage.tables.base import utcnow


@pytest.fixture(autouse=True)
def seen_long(monkeypatch: pytest.MonkeyPatch) -> None:
    """A key read stays seen through each test, however slow the machine."""
    monkeypatch.setattr(api_keys, "SEEN_FOR_S", 300.0)


async def keyed(client: httpx.AsyncClient, scopes: list[str] | None = None) -> dict[str, Any]:
    """A new account, a key of it (``scopes``), and a workflow to start; the client then
    sends the key only."""
    account = await sign_up(client, "starter")
    created = await client.post(
        "/api/v1/api-keys",
        json={"name": "runner", "scopes": scopes or ["runs:execute", "workflows:read"]},
        headers=account.bearer,
    )
    assert created.status_code == 201, created.text
    workflow = await create_workflow(client, account, example("sort_numbers"))
    client.cookies.clear()
    return {
        "account": account,
        "key_id": created.json()["id"],
        "auth": {"Authorization": f"Bearer {created.json()['key']}"},
        "start": f"/api/v1/workflows/{workflow['id']}/runs",
    }


def guarded_starts(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The starts that carry a ``KeyGuard`` from now on (where its SQL goes)."""
    starts: list[int] = []
    sql = api_keys.KeyGuard.pg_sql

    def counted(guard: api_keys.KeyGuard, first: int) -> str:
        starts.append(first)
        return sql(guard, first)

    monkeypatch.setattr(api_keys.KeyGuard, "pg_sql", counted)
    return starts


def key_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The prefixes of the keys read from now on."""
    reads: list[str] = []
    read = api_keys._key_row

    async def counted(db: Database, prefix: str) -> Any:
        reads.append(prefix)
        return await read(db, prefix)

    monkeypatch.setattr(api_keys, "_key_row", counted)
    return reads


async def runs_of(client: httpx.AsyncClient, account: Account) -> int:
    listed = await client.get("/api/v1/runs", headers=account.bearer)
    assert listed.status_code == 200, listed.text
    return len(listed.json()["items"])


async def test_starts_take_a_key_read_lately_unread_on_postgresql(
    db: Database, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    got = await keyed(client)
    reads = key_reads(monkeypatch)
    guarded = guarded_starts(monkeypatch)

    for _ in range(3):
        started = await client.post(
            got["start"], params={"wait": "true"}, json={}, headers=got["auth"]
        )
        assert started.status_code == 200, started.text
        assert started.json()["status"] == "COMPLETED"
        assert started.json()["trigger_kind"] == "api"

    assert len(reads) == (3 if db.is_sqlite else 1)
    assert len(guarded) == (0 if db.is_sqlite else 2)
    # Any other request reads the key.
    listed = await client.get("/api/v1/runs", headers=got["auth"])
    assert listed.status_code == 200
    assert len(reads) == (4 if db.is_sqlite else 2)
    assert len(listed.json()["items"]) == 3


def _revoked() -> dict[str, Any]:
    return {"revoked_at": utcnow(), "active": False}


KEY_CHANGES: dict[str, tuple[Callable[[], dict[str, Any]], int]] = {
    "revoked": (_revoked, 401),
    "switched off": (lambda: {"active": False}, 401),
    "expired": (lambda: {"expires_at": utcnow() - timedelta(seconds=1)}, 401),
    "secret replaced": (lambda: {"secret_sha256": "0" * 64}, 401),
    "scope taken away": (lambda: {"scopes": ["workflows:read"]}, 403),
}


@pytest.mark.parametrize("change", list(KEY_CHANGES))
async def test_a_key_changed_since_it_was_read_starts_nothing(
    db: Database, client: httpx.AsyncClient, change: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    got = await keyed(client)
    first = await client.post(got["start"], json={}, headers=got["auth"])
    assert first.status_code == 202, first.text
    values, status = KEY_CHANGES[change]
    async with db.write() as session:
        await session.execute(update(ApiKey).where(ApiKey.id == got["key_id"]).values(values()))
    guarded = guarded_starts(monkeypatch)

    refused = await client.post(got["start"], json={}, headers=got["auth"])

    assert refused.status_code == status, refused.text
    assert len(guarded) == (0 if db.is_sqlite else 1)  # the start's statement refused it
    assert await runs_of(client, got["account"]) == 1
    again = await client.post(got["start"], json={}, headers=got["auth"])
    assert again.status_code == status
    assert await runs_of(client, got["account"]) == 1


async def test_a_disabled_owner_starts_nothing(db: Database, client: httpx.AsyncClient) -> None:
    got = await keyed(client)
    first = await client.post(got["start"], json={}, headers=got["auth"])
    assert first.status_code == 202, first.text
    async with db.write() as session:
        owner = got["account"].user_id
        await session.execute(update(User).where(User.id == owner).values(is_active=False))

    refused = await client.post(got["start"], json={}, headers=got["auth"])

    assert refused.status_code == 401, refused.text
    async with db.write() as session:
        owner = got["account"].user_id
        await session.execute(update(User).where(User.id == owner).values(is_active=True))
    assert await runs_of(client, got["account"]) == 1


async def test_a_key_whose_rate_changed_is_read_again_and_starts(
    db: Database, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    got = await keyed(client)
    first = await client.post(got["start"], json={}, headers=got["auth"])
    assert first.status_code == 202, first.text
    async with db.write() as session:
        await session.execute(
            update(ApiKey).where(ApiKey.id == got["key_id"]).values(rate_limit="1000/s")
        )
    reads = key_reads(monkeypatch)

    started = await client.post(got["start"], json={}, headers=got["auth"])

    assert started.status_code == 202, started.text
    assert await runs_of(client, got["account"]) == 2
    # Refused by the start's statement on PostgreSQL, then read; SQLite reads it anyway.
    assert len(reads) == 1


@pytest.mark.parametrize("failure", ["inputs too big", "no such workflow", "bad version"])
async def test_a_failed_start_of_a_key_no_longer_valid_answers_401_first(
    db: Database, client: httpx.AsyncClient, failure: str
) -> None:
    got = await keyed(client)
    first = await client.post(got["start"], json={}, headers=got["auth"])
    assert first.status_code == 202, first.text
    async with db.write() as session:
        await session.execute(update(ApiKey).where(ApiKey.id == got["key_id"]).values(_revoked()))
    url, body = got["start"], {}
    if failure == "inputs too big":
        body = {"inputs": {"name": "x" * 300_000}}
    elif failure == "no such workflow":
        url = "/api/v1/workflows/wf_01m98s5b35eypsytcs57kbn53d/runs"
    else:
        body = {"version": 99}

    refused = await client.post(url, json=body, headers=got["auth"])

    assert refused.status_code == 401, refused.text
    assert await runs_of(client, got["account"]) == 1


async def test_a_failed_start_of_a_valid_key_answers_its_own_error(
    client: httpx.AsyncClient,
) -> None:
    got = await keyed(client)
    first = await client.post(got["start"], json={}, headers=got["auth"])
    assert first.status_code == 202, first.text

    missing = await client.post(
        "/api/v1/workflows/wf_01m98s5b35eypsytcs57kbn53d/runs", json={}, headers=got["auth"]
    )

    assert missing.status_code == 404, missing.text


async def test_the_replaced_secret_starts_through_the_grace_and_not_after(
    db: Database, client: httpx.AsyncClient
) -> None:
    got = await keyed(client)
    account = got["account"]
    first = await client.post(got["start"], json={}, headers=got["auth"])
    assert first.status_code == 202, first.text
    rotated = await client.post(f"/api/v1/api-keys/{got['key_id']}/rotate", headers=account.bearer)
    assert rotated.status_code == 200, rotated.text
    client.cookies.clear()

    in_grace = await client.post(got["start"], json={}, headers=got["auth"])
    assert in_grace.status_code == 202, in_grace.text
    async with db.write() as session:
        await session.execute(
            update(ApiKey)
            .where(ApiKey.id == got["key_id"])
            .values(previous_valid_until=utcnow() - timedelta(seconds=1))
        )
    after = await client.post(got["start"], json={}, headers=got["auth"])
    new = await client.post(
        got["start"], json={}, headers={"Authorization": f"Bearer {rotated.json()['key']}"}
    )

    assert after.status_code == 401, after.text
    assert new.status_code == 202, new.text
    assert await runs_of(client, account) == 3


async def test_a_key_is_read_again_once_it_was_seen_long_enough_ago(
    db: Database, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    got = await keyed(client)
    first = await client.post(got["start"], json={}, headers=got["auth"])
    assert first.status_code == 202, first.text
    reads = key_reads(monkeypatch)
    monkeypatch.setattr(api_keys, "SEEN_FOR_S", 0.0)

    again = await client.post(got["start"], json={}, headers=got["auth"])

    assert again.status_code == 202, again.text
    assert len(reads) == 1
