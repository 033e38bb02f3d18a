"""User sync from the identity provider's Svix-signed webhooks, linking an identity to a
password account by proving both, and the sign-in options the UI's button reads."""

from __future__ import annotations

import base64
import json
import secrets
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from apikit import PASSWORD, make_settings, sign_up, unique_email
from svix.webhooks import Webhook

from flowloom.settings import Settings

SECRET = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
URL = "/api/v1/auth/webhooks/clerk"


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return make_settings(
        tmp_path_factory.mktemp("data"),
        clerk_webhook_secret=SECRET,
        external_auth_sign_in_url="https://id.example.test/sign-in",
    )


def delivery(
    event: str, data: dict[str, Any], *, at: float | None = None, secret: str = SECRET
) -> tuple[bytes, dict[str, str]]:
    body = json.dumps({"type": event, "object": "event", "data": data}).encode()
    message_id = f"msg_{secrets.token_hex(10)}"
    stamp = int(at if at is not None else time.time())
    # Signed by the svix library itself, as the identity provider's sender signs.
    signature = Webhook(secret).sign(message_id, datetime.fromtimestamp(stamp, UTC), body.decode())
    return body, {
        "svix-id": message_id,
        "svix-timestamp": str(stamp),
        # A rotated-away secret's signature beside the real one, as during a rotation.
        "svix-signature": f"v1,bm90IGl0 {signature}",
        "content-type": "application/json",
    }


def clerk_user(subject: str, email: str) -> dict[str, Any]:
    return {
        "id": subject,
        "primary_email_address_id": "idn_primary",
        "email_addresses": [
            {"id": "idn_other", "email_address": f"other-{email}"},
            {"id": "idn_primary", "email_address": email},
        ],
    }


def identity_token(settings: Settings, subject: str, email: str) -> str:
    now = int(time.time())
    claims = {
        "iss": settings.external_auth_issuer,
        "aud": settings.external_auth_audience,
        "iat": now,
        "exp": now + 300,
        "sub": subject,
        "email": email,
    }
    assert settings.external_auth_shared_key is not None
    return jwt.encode(claims, settings.external_auth_shared_key.get_secret_value(), "HS256")


async def test_created_updated_deleted_sync_the_account(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    subject, email = f"user_{secrets.token_hex(6)}", unique_email("synced")
    body, headers = delivery("user.created", clerk_user(subject, email))
    created = await client.post(URL, content=body, headers=headers)
    assert created.status_code == 200, created.text
    assert created.json()["outcome"] == "created"
    user_id = created.json()["user_id"]

    # The same delivery again is a replay.
    replayed = await client.post(URL, content=body, headers=headers)
    assert replayed.status_code == 409
    assert replayed.headers["content-type"] == "application/problem+json"

    # Signing in with the provider finds the synced account, not a new one.
    signed_in = await client.post(
        "/api/v1/auth/external", json={"token": identity_token(settings, subject, email)}
    )
    assert signed_in.status_code == 200, signed_in.text
    assert signed_in.json()["user"]["id"] == user_id
    session = {"Authorization": f"Bearer {signed_in.json()['access_token']}"}

    new_email = unique_email("renamed")
    body, headers = delivery("user.updated", clerk_user(subject, new_email))
    updated = await client.post(URL, content=body, headers=headers)
    assert updated.json()["outcome"] == "updated"
    me = await client.get("/api/v1/auth/me", headers=session)
    assert me.json()["email"] == new_email

    body, headers = delivery("user.deleted", {"id": subject, "deleted": True})
    deleted = await client.post(URL, content=body, headers=headers)
    assert deleted.json() == {
        "event": "user.deleted",
        "outcome": "disabled",
        "user_id": user_id,
        "detail": None,
    }
    assert (await client.get("/api/v1/auth/me", headers=session)).status_code == 401


async def test_unsigned_forged_and_stale_deliveries_are_refused(client: httpx.AsyncClient) -> None:
    data = clerk_user(f"user_{secrets.token_hex(6)}", unique_email("forged"))
    body, headers = delivery("user.created", data)
    for broken, why in (
        ({k: v for k, v in headers.items() if k != "svix-signature"}, "not signed"),
        ({**headers, "svix-signature": "v1,AAAA"}, "no signature"),
        ({**headers, "svix-timestamp": "soon"}, "not a number"),
    ):
        refused = await client.post(URL, content=body, headers=broken)
        assert refused.status_code == 401, refused.text
        assert why in refused.json()["detail"]
    tampered = await client.post(URL, content=body.replace(b"forged", b"forgeD"), headers=headers)
    assert tampered.status_code == 401
    other_secret = "whsec_" + base64.b64encode(b"another secret entirely!").decode()
    body, wrong = delivery("user.created", data, secret=other_secret)
    assert (await client.post(URL, content=body, headers=wrong)).status_code == 401
    body, stale = delivery("user.created", data, at=time.time() - 3600)
    refused = await client.post(URL, content=body, headers=stale)
    assert refused.status_code == 401
    assert "signed more than 300 s ago" in refused.json()["detail"]
    body, early = delivery("user.created", data, at=time.time() + 3600)
    refused = await client.post(URL, content=body, headers=early)
    assert "in the future" in refused.json()["detail"]


async def test_a_password_account_is_linked_only_when_both_are_proven(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    account = await sign_up(client, "haspassword")
    subject = f"user_{secrets.token_hex(6)}"
    body, headers = delivery("user.created", clerk_user(subject, account.email))
    synced = await client.post(URL, content=body, headers=headers)
    assert synced.json()["outcome"] == "email_taken"

    token = identity_token(settings, subject, account.email)
    unproven = await client.post("/api/v1/auth/external", json={"token": token})
    assert unproven.status_code == 409
    assert "send that account's password" in unproven.json()["detail"]
    wrong = await client.post(
        "/api/v1/auth/external", json={"token": token, "password": "not the password"}
    )
    assert wrong.status_code == 401
    linked = await client.post("/api/v1/auth/external", json={"token": token, "password": PASSWORD})
    assert linked.status_code == 200, linked.text
    assert linked.json()["user"]["id"] == account.user_id
    # From now on the identity alone signs in to that account.
    again = await client.post("/api/v1/auth/external", json={"token": token})
    assert again.json()["user"]["id"] == account.user_id


async def test_the_sign_in_options_name_the_provider(client: httpx.AsyncClient) -> None:
    options = await client.get("/api/v1/auth/providers")
    assert options.status_code == 200
    assert options.json()["external"] == {
        "provider": "testid",
        "sign_in_url": "https://id.example.test/sign-in",
    }


async def test_without_a_secret_the_webhook_is_not_there(tmp_path: Path) -> None:
    from apikit import client_for

    from flowloom.api.app import create_app

    app = create_app(make_settings(tmp_path, database_url=f"sqlite:///{tmp_path / 'x.db'}"))
    async with app.router.lifespan_context(app), client_for(app) as plain:
        body, headers = delivery("user.created", clerk_user("user_x", unique_email()))
        answer = await plain.post(URL, content=body, headers=headers)
        assert answer.status_code == 404
        assert (await plain.get("/api/v1/auth/providers")).json()["external"] is None
