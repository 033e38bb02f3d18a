"""Administration over HTTP: only accounts with the admin role get in (everybody else 403 on
every admin route, generated from the route table), and every change leaves an audit entry."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from decimal import Decimal
from typing import Any

import httpx
import jwt
import pytest
from apikit import PASSWORD, Account, sign_up, unique_email
from fastapi import FastAPI
from sqlalchemy import select

from flowloom.storage.database import Database
from flowloom.storage.repos.billing import set_role
from flowloom.storage.tables import AuditEntry

ClientFactory = Callable[[], AbstractAsyncContextManager[httpx.AsyncClient]]
JSON = "application/problem+json"


async def make_admin(db: Database, client: httpx.AsyncClient) -> Account:
    account = await sign_up(client, "admin")
    async with db.write() as session:
        await set_role(session, user_id=account.user_id, role="admin")
    return account


async def audit_actions(db: Database, admin: Account) -> list[str]:
    async with db.read() as session:
        rows = await session.scalars(
            select(AuditEntry.action)
            .where(AuditEntry.user_id == admin.user_id, AuditEntry.action.like("admin.%"))
            .order_by(AuditEntry.id)
        )
        return list(rows)


async def test_every_admin_route_refuses_a_normal_user(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    user = await sign_up(client, "plain")
    checked = []
    for template, operations in app.openapi()["paths"].items():
        if not template.startswith("/api/v1/admin"):
            continue
        path = re.sub(r"{\w+}", "x", template)
        for method in operations:
            response = await client.request(method.upper(), path, headers=user.bearer, json={})
            assert response.status_code == 403, f"{method} {template}: {response.text}"
            assert response.headers["content-type"] == JSON
            checked.append(f"{method} {template}")
    assert len(checked) >= 15


async def test_an_admins_api_key_needs_the_admin_scope(
    db: Database, client: httpx.AsyncClient
) -> None:
    admin = await make_admin(db, client)
    keys = {}
    for scopes in (["workflows:read"], ["admin"]):
        created = await client.post(
            "/api/v1/api-keys", json={"name": "k", "scopes": scopes}, headers=admin.bearer
        )
        keys[scopes[0]] = created.json()["key"]
    narrow = await client.get(
        "/api/v1/admin/settings", headers={"Authorization": f"Bearer {keys['workflows:read']}"}
    )
    broad = await client.get(
        "/api/v1/admin/settings", headers={"Authorization": f"Bearer {keys['admin']}"}
    )
    assert (narrow.status_code, broad.status_code) == (403, 200)


async def test_settings_are_typed_and_close_registration(
    db: Database, client: httpx.AsyncClient, new_client: ClientFactory, app: FastAPI
) -> None:
    admin = await make_admin(db, client)
    assert (await client.get("/api/v1/admin/settings", headers=admin.bearer)).json() == {
        "registration_open": True,
        "default_package": None,
        "retain_runs_days": None,
        "retain_node_outputs_days": None,
        "retain_usage_days": None,
        "retain_audit_days": None,
        "retain_generations_days": None,
        "retain_validation_days": None,
    }
    for body, field in [
        ({"retain_usage_days": 10}, "retain_usage_days"),
        ({"retain_runs_days": 0}, "retain_runs_days"),
        ({"colour": "blue"}, "colour"),
        ({"registration_open": "nope"}, "registration_open"),
        ({"default_package": "no-such-plan"}, "default_package"),
    ]:
        refused = await client.patch("/api/v1/admin/settings", json=body, headers=admin.bearer)
        assert refused.status_code == 422, refused.text
        assert refused.json()["errors"][0]["field"] == field

    known = identity_token(app, sub=f"known-{unique_email()}", email=unique_email())
    async with new_client() as linked:
        assert (await linked.post("/api/v1/auth/external", json={"token": known})).is_success
    closed = await client.patch(
        "/api/v1/admin/settings", json={"registration_open": False}, headers=admin.bearer
    )
    assert closed.json()["registration_open"] is False
    try:
        async with new_client() as stranger:
            response = await stranger.post(
                "/api/v1/auth/register", json={"email": unique_email(), "password": PASSWORD}
            )
            assert response.status_code == 403
            # Nor does a new identity from the identity provider make an account...
            newcomer = identity_token(app, sub=f"new-{unique_email()}", email=unique_email())
            external = await stranger.post("/api/v1/auth/external", json={"token": newcomer})
            assert external.status_code == 403
            # ...while an identity already linked to an account still signs in.
            again = await stranger.post("/api/v1/auth/external", json={"token": known})
            assert again.status_code == 200
    finally:
        await client.patch(
            "/api/v1/admin/settings", json={"registration_open": None}, headers=admin.bearer
        )
    assert await audit_actions(db, admin) == ["admin.settings.update", "admin.settings.update"]


async def test_ai_models_keep_exact_prices(db: Database, client: httpx.AsyncClient) -> None:
    admin = await make_admin(db, client)
    body: dict[str, Any] = {
        "provider": "openai",
        "model": "gpt-admin",
        "input_price_per_mtok": "0.15",
        "output_price_per_mtok": "0.6",
    }
    created = await client.post("/api/v1/admin/ai-models", json=body, headers=admin.bearer)
    assert created.status_code == 201, created.text
    model = created.json()
    assert Decimal(model["input_price_per_mtok"]) == Decimal("0.15")
    again = await client.post("/api/v1/admin/ai-models", json=body, headers=admin.bearer)
    assert again.status_code == 409

    negative = await client.post(
        "/api/v1/admin/ai-models",
        json={**body, "model": "m2", "output_price_per_mtok": "-1"},
        headers=admin.bearer,
    )
    assert negative.status_code == 422
    assert negative.json()["errors"][0]["field"] == "output_price_per_mtok"

    changed = await client.patch(
        f"/api/v1/admin/ai-models/{model['id']}",
        json={"output_price_per_mtok": "0.000000001"},
        headers=admin.bearer,
    )
    assert Decimal(changed.json()["output_price_per_mtok"]) == Decimal("0.000000001")
    assert Decimal(changed.json()["input_price_per_mtok"]) == Decimal("0.15")
    null_price = await client.patch(
        f"/api/v1/admin/ai-models/{model['id']}",
        json={"input_price_per_mtok": None},
        headers=admin.bearer,
    )
    assert null_price.status_code == 422

    disabled = await client.delete(f"/api/v1/admin/ai-models/{model['id']}", headers=admin.bearer)
    assert disabled.json()["enabled"] is False
    listed = await client.get("/api/v1/admin/ai-models", headers=admin.bearer)
    assert [m["enabled"] for m in listed.json()["items"] if m["id"] == model["id"]] == [False]
    missing = await client.delete("/api/v1/admin/ai-models/aim_nope", headers=admin.bearer)
    assert missing.status_code == 404
    assert await audit_actions(db, admin) == [
        "admin.ai_model.create",
        "admin.ai_model.update",
        "admin.ai_model.disable",
    ]


async def test_packages_with_subscribers_are_deactivated_not_deleted(
    db: Database, client: httpx.AsyncClient, new_client: ClientFactory
) -> None:
    admin = await make_admin(db, client)
    async with new_client() as other:
        member = await sign_up(other, "member")
    created = await client.post(
        "/api/v1/admin/packages",
        json={"name": "team", "price": "19.99", "max_runs_per_month": 500},
        headers=admin.bearer,
    )
    assert created.status_code == 201, created.text
    package = created.json()
    bad = await client.post(
        "/api/v1/admin/packages",
        json={"name": "bad", "max_tokens_per_month": -5},
        headers=admin.bearer,
    )
    assert bad.json()["errors"][0]["field"] == "max_tokens_per_month"

    subscribed = await client.put(
        f"/api/v1/admin/users/{member.user_id}/subscription",
        json={"package_id": package["id"]},
        headers=admin.bearer,
    )
    assert subscribed.status_code == 200, subscribed.text
    assert subscribed.json()["package"]["name"] == "team"
    listed = await client.get("/api/v1/admin/packages", headers=admin.bearer)
    assert [p["subscribers"] for p in listed.json()["items"] if p["id"] == package["id"]] == [1]

    refused = await client.delete(f"/api/v1/admin/packages/{package['id']}", headers=admin.bearer)
    assert refused.status_code == 409
    assert refused.headers["content-type"] == JSON
    deactivated = await client.patch(
        f"/api/v1/admin/packages/{package['id']}", json={"active": False}, headers=admin.bearer
    )
    assert deactivated.json()["active"] is False

    unused = await client.post(
        "/api/v1/admin/packages", json={"name": "unused"}, headers=admin.bearer
    )
    gone = await client.delete(
        f"/api/v1/admin/packages/{unused.json()['id']}", headers=admin.bearer
    )
    assert gone.status_code == 204
    assert await audit_actions(db, admin) == [
        "admin.package.create",
        "admin.user.subscribe",
        "admin.package.update",
        "admin.package.create",
        "admin.package.delete",
    ]


async def test_the_default_package_cannot_be_deactivated(
    db: Database, client: httpx.AsyncClient
) -> None:
    admin = await make_admin(db, client)
    package = await client.post(
        "/api/v1/admin/packages", json={"name": "free"}, headers=admin.bearer
    )
    await client.patch(
        "/api/v1/admin/settings", json={"default_package": "free"}, headers=admin.bearer
    )
    try:
        refused = await client.patch(
            f"/api/v1/admin/packages/{package.json()['id']}",
            json={"active": False},
            headers=admin.bearer,
        )
        assert refused.status_code == 409
    finally:
        await client.patch(
            "/api/v1/admin/settings", json={"default_package": None}, headers=admin.bearer
        )


async def test_users_roles_and_credits(
    db: Database, client: httpx.AsyncClient, new_client: ClientFactory
) -> None:
    admin = await make_admin(db, client)
    async with new_client() as other:
        member = await sign_up(other, "member")
    found = await client.get(
        "/api/v1/admin/users", params={"email": member.email}, headers=admin.bearer
    )
    assert [u["id"] for u in found.json()["items"]] == [member.user_id]

    granted = await client.post(
        f"/api/v1/admin/users/{member.user_id}/credits",
        json={"amount": 5, "reason": "support ticket"},
        headers=admin.bearer,
    )
    assert granted.json() == {"user_id": member.user_id, "credits": 5}
    too_many = await client.post(
        f"/api/v1/admin/users/{member.user_id}/credits",
        json={"amount": -6},
        headers=admin.bearer,
    )
    assert too_many.status_code == 409

    promoted = await client.patch(
        f"/api/v1/admin/users/{member.user_id}", json={"role": "admin"}, headers=admin.bearer
    )
    assert promoted.json()["role"] == "admin"
    # The member is an admin now, and sees the admin routes.
    async with new_client() as other:
        seen = await other.get("/api/v1/admin/settings", headers=member.bearer)
    assert seen.status_code == 200
    detail = await client.get(f"/api/v1/admin/users/{member.user_id}", headers=admin.bearer)
    assert (detail.json()["credits"], detail.json()["runs_this_month"]) == (5, 0)
    bad_role = await client.patch(
        f"/api/v1/admin/users/{member.user_id}", json={"role": "root"}, headers=admin.bearer
    )
    assert bad_role.json()["errors"][0]["field"] == "role"
    unknown = await client.post(
        "/api/v1/admin/users/usr_nope/credits", json={"amount": 1}, headers=admin.bearer
    )
    assert unknown.status_code == 404
    assert await audit_actions(db, admin) == ["admin.user.credits", "admin.user.role"]


@pytest.mark.parametrize("path", ["/api/v1/admin/settings", "/api/v1/admin/users"])
async def test_signed_out_callers_get_401(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path)
    assert response.status_code == 401


def identity_token(app: FastAPI, **claims: object) -> str:
    """A token of the identity provider the test settings trust (HS256 shared key)."""
    settings = app.state.flowloom.settings
    now = int(time.time())
    payload = {
        "iss": settings.external_auth_issuer,
        "aud": settings.external_auth_audience,
        "iat": now,
        "exp": now + 300,
        **claims,
    }
    return jwt.encode(payload, settings.external_auth_shared_key.get_secret_value(), "HS256")
