"""Rotating an API key: a new secret for the same key id, prefix and scopes; the old secret
works through the grace period (``api_key_rotation_grace_s``) and is refused after it. Time is
moved on by the clock the check takes (``now=``) and by ending the grace in the database, never
by sleeping."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from apikit import Account, make_settings, sign_up
from sqlalchemy import update

from flowloom.settings import Settings
from flowloom.storage.database import Database
from flowloom.storage.repos.api_keys import ApiKeyRepo, authenticate_api_key
from flowloom.storage.tables import ApiKey
from flowloom.storage.tables.base import utcnow

GRACE_S = 3600
PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    data: Path = tmp_path_factory.mktemp("data")
    return make_settings(data, api_key_rotation_grace_s=GRACE_S)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def new_key(client: httpx.AsyncClient, account: Account) -> dict[str, object]:
    created = await client.post(
        "/api/v1/api-keys",
        json={"name": "deploy", "scopes": ["workflows:read", "runs:execute"]},
        headers=account.bearer,
    )
    assert created.status_code == 201, created.text
    body: dict[str, object] = created.json()
    return body


async def test_rotation_keeps_id_and_scopes_and_the_old_secret_through_the_grace(
    db: Database, client: httpx.AsyncClient
) -> None:
    account = await sign_up(client, "rotator")
    created = await new_key(client, account)
    old = str(created["key"])

    rotated = await client.post(f"/api/v1/api-keys/{created['id']}/rotate", headers=account.bearer)
    assert rotated.status_code == 200, rotated.text
    body = rotated.json()
    new = body["key"]
    assert new != old
    assert (body["id"], body["prefix"], body["scopes"]) == (
        created["id"],
        created["prefix"],
        created["scopes"],
    )
    until = body["previous_valid_until"]
    assert until is not None
    # Both secrets work now, as the same key.
    for secret in (old, new):
        me = await client.get("/api/v1/workflows", headers=bearer(secret))
        assert me.status_code == 200, me.text
    # The secret is never shown again.
    listed = await client.get(f"/api/v1/api-keys/{created['id']}", headers=account.bearer)
    assert old not in listed.text
    assert new not in listed.text
    assert "key" not in listed.json()

    # Just inside the grace the old one passes; just after, it is refused (the check's clock).
    now = utcnow()
    inside = await authenticate_api_key(
        db, plaintext=old, now=now + timedelta(seconds=GRACE_S - 60)
    )
    after = await authenticate_api_key(db, plaintext=old, now=now + timedelta(seconds=GRACE_S + 1))
    assert inside is not None
    assert inside.id == created["id"]
    assert after is None
    assert await authenticate_api_key(db, plaintext=new, now=now + timedelta(days=2)) is not None

    # The grace ends (as it would an hour later): the old secret gets 401 over HTTP.
    async with db.write() as session:
        await session.execute(
            update(ApiKey)
            .where(ApiKey.id == created["id"])
            .values(previous_valid_until=utcnow() - timedelta(seconds=1))
        )
    refused = await client.get("/api/v1/workflows", headers=bearer(old))
    assert refused.status_code == 401
    assert refused.headers["content-type"] == PROBLEM
    assert (await client.get("/api/v1/workflows", headers=bearer(new))).status_code == 200


async def test_a_second_rotation_ends_the_first_secret_at_once(client: httpx.AsyncClient) -> None:
    account = await sign_up(client, "twice")
    created = await new_key(client, account)
    first = str(created["key"])
    second = (
        await client.post(f"/api/v1/api-keys/{created['id']}/rotate", headers=account.bearer)
    ).json()["key"]
    third = (
        await client.post(f"/api/v1/api-keys/{created['id']}/rotate", headers=account.bearer)
    ).json()["key"]
    statuses = [
        (await client.get("/api/v1/workflows", headers=bearer(k))).status_code
        for k in (first, second, third)
    ]
    assert statuses == [401, 200, 200]


async def test_revoking_ends_both_secrets(client: httpx.AsyncClient) -> None:
    account = await sign_up(client, "revoker")
    created = await new_key(client, account)
    old = str(created["key"])
    new = (
        await client.post(f"/api/v1/api-keys/{created['id']}/rotate", headers=account.bearer)
    ).json()["key"]
    await client.delete(f"/api/v1/api-keys/{created['id']}", headers=account.bearer)
    for secret in (old, new):
        assert (await client.get("/api/v1/workflows", headers=bearer(secret))).status_code == 401
    again = await client.post(f"/api/v1/api-keys/{created['id']}/rotate", headers=account.bearer)
    assert again.status_code == 409
    assert "revoked" in again.json()["detail"]


async def test_another_users_key_is_not_found_and_keys_cannot_rotate_with_narrow_scope(
    client: httpx.AsyncClient,
) -> None:
    owner = await sign_up(client, "owner")
    stranger = await sign_up(client, "stranger")
    created = await new_key(client, owner)
    theirs = await client.post(f"/api/v1/api-keys/{created['id']}/rotate", headers=stranger.bearer)
    assert theirs.status_code == 404
    assert theirs.headers["content-type"] == PROBLEM
    # A key without the admin scope may not manage keys, its own included.
    narrow = await client.post(
        f"/api/v1/api-keys/{created['id']}/rotate", headers=bearer(str(created["key"]))
    )
    assert narrow.status_code == 403


async def test_zero_grace_refuses_the_old_secret_at_once(
    db: Database, client: httpx.AsyncClient
) -> None:
    account = await sign_up(client, "nograce")
    created = await new_key(client, account)
    async with db.write() as session:
        _, new = await ApiKeyRepo(session, owner_id=account.user_id).rotate(
            key_id=str(created["id"]), grace=timedelta(0)
        )
    assert await authenticate_api_key(db, plaintext=str(created["key"])) is None
    assert await authenticate_api_key(db, plaintext=new) is not None


async def test_rotate_is_in_the_openapi_document(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/api/v1/openapi.json")).json()["paths"]
    answer = paths["/api/v1/api-keys/{key_id}/rotate"]["post"]["responses"]["200"]
    assert "ApiKeyRotated" in str(answer)
